package ruler

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// renderer answers /api/v1/rules and /api/v1/alerts with Prometheus's own
// API handlers over the TenantView in the request's context, so that the
// JSON, the filters (type, rule_name[], rule_group[], file[], match[],
// exclude_alerts) and the parameter errors are Prometheus's. It is safe
// for concurrent use.
type renderer struct {
	router *route.Router
}

type viewKey struct{}

// newRenderer builds Prometheus's API with nothing but the rules retriever
// and the Alertmanagers retriever: only rules and alerts are ever called.
func newRenderer(logger *slog.Logger) *renderer {
	view := func(ctx context.Context) *TenantView {
		if v, ok := ctx.Value(viewKey{}).(*TenantView); ok && v != nil {
			return v
		}
		return &TenantView{}
	}
	api := v1.NewAPI(
		nil, nil, nil, nil, nil, nil,
		func(ctx context.Context) v1.AlertmanagerRetriever { return view(ctx) },
		func() config.Config { return config.Config{} },
		nil, v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		nil, "", false, false, 0,
		logger,
		func(ctx context.Context) v1.RulesRetriever { return view(ctx) },
		0, 0, 0, false,
		regexp.MustCompile("^(?:)$"), // no CORS: the handlers are only called in-process
		func() (v1.RuntimeInfo, error) { return v1.RuntimeInfo{}, nil },
		&v1.PrometheusVersion{},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		nil, nil, nil, false, nil, false, false, false, 0, false, false, nil, nil,
		v1.OpenAPIOptions{}, nil, false, time.Minute,
	)
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))
	return &renderer{router: router}
}

// render answers GET /api/v1/{endpoint}?{query} over view (nil: no groups)
// and returns the status and the JSON body.
func (r *renderer) render(ctx context.Context, view *TenantView, endpoint string, query url.Values) (int, []byte) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, viewKey{}, view), http.MethodGet,
		"/api/v1/"+endpoint+"?"+query.Encode(), nil)
	if err != nil {
		return http.StatusInternalServerError, nil // Cannot happen: the path is ours.
	}
	w := &bufferWriter{header: http.Header{}}
	r.router.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, w.body.Bytes()
}

// bufferWriter is an http.ResponseWriter into memory.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }

func (w *bufferWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
