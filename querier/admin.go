package querier

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql/parser"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// The paths Admin serves, below PathPrefix as the rest of the API. cmd
// mounts AdminPaths behind the admin tenancy of the auth middleware and
// StatsPaths behind the one-tenant one.
const (
	DeleteSeriesPath      = PathPrefix + apiRoutePrefix + "/admin/tsdb/delete_series"
	CleanTombstonesPath   = PathPrefix + apiRoutePrefix + "/admin/tsdb/clean_tombstones"
	TSDBStatusPath        = PathPrefix + apiRoutePrefix + "/status/tsdb"
	CardinalityNamesPath  = PathPrefix + apiRoutePrefix + "/cardinality/label_names"
	CardinalityValuesPath = PathPrefix + apiRoutePrefix + "/cardinality/label_values"
)

// AdminPaths are the paths of Admin.AdminHandler; StatsPaths those of
// Admin.StatsHandler.
var (
	AdminPaths = []string{DeleteSeriesPath, CleanTombstonesPath}
	StatsPaths = []string{TSDBStatusPath, CardinalityNamesPath, CardinalityValuesPath}
)

// AdminConfig configures the admin API (deletion). The statistics
// endpoints are always on.
type AdminConfig struct {
	// Enabled turns delete_series and clean_tombstones on, as Prometheus's
	// --web.enable-admin-api does.
	Enabled bool `yaml:"enable_admin_api"`
}

// RegisterFlags registers -api.enable-admin-api on f.
func (c *AdminConfig) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&c.Enabled, "api.enable-admin-api", false,
		"Enable the admin API of the querier: POST /prometheus/api/v1/admin/tsdb/delete_series and clean_tombstones, per tenant (with -auth.type=token, only for tokens marked admin).")
}

// AdminClientFactory gives the admin client of an ingester address;
// arguspb.NewIngesterAdminClient on a cached connection fits. It must be
// safe for concurrent use.
type AdminClientFactory func(addr string) (arguspb.IngesterAdminClient, error)

// adminRing is what the admin API needs from the ring: the ingesters that
// may hold a tenant's data and the replication factor. *ring.KV and
// *ring.Static satisfy it.
type adminRing interface {
	readSetter
	ReplicationFactor() int
}

// AdminDeps are the runtime dependencies of an Admin.
type AdminDeps struct {
	Ring    adminRing
	Clients AdminClientFactory
	// Logger receives the deletions, at Info; nil discards.
	Logger *slog.Logger
}

// Admin serves the Prometheus admin API (delete_series, clean_tombstones),
// the TSDB status and the Mimir cardinality API of the tenant of each
// request, by calling every ingester of the ring. It is safe for concurrent
// use, starts no goroutine outside a request and holds nothing to close.
type Admin struct {
	cfg     AdminConfig
	ring    adminRing
	clients AdminClientFactory
	logger  *slog.Logger
}

// NewAdmin returns an Admin. It does no I/O.
func NewAdmin(cfg AdminConfig, deps AdminDeps) (*Admin, error) {
	if deps.Ring == nil || deps.Clients == nil {
		return nil, errors.New("the admin API needs a ring and an admin client factory")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Admin{cfg: cfg, ring: deps.Ring, clients: deps.Clients, logger: logger}, nil
}

// AdminHandler serves DeleteSeriesPath and CleanTombstonesPath (POST or
// PUT), for the tenant that the auth middleware put in the context. Both
// answer 204 once every ingester has done it, as Prometheus does, and a
// JSON error envelope whose error starts with its ID otherwise.
func (a *Admin) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			writeAdminError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s: POST it", r.Method, r.URL.Path))
			return
		}
		id, err := tenant.FromContext(r.Context())
		if err != nil {
			writeAdminError(w, apierror.Errorf(apierror.MissingTenant, "%v", err))
			return
		}
		if !a.cfg.Enabled {
			writeAdminError(w, apierror.Errorf(apierror.AdminAPIDisabled, "tenant %q: the admin API is disabled: start the querier with -api.enable-admin-api=true", id))
			return
		}
		var aerr *apierror.Error
		switch r.URL.Path {
		case DeleteSeriesPath:
			aerr = a.deleteSeries(r, id)
		case CleanTombstonesPath:
			aerr = a.cleanTombstones(r.Context(), id)
		default:
			http.NotFound(w, r)
			return
		}
		if aerr != nil {
			writeAdminError(w, aerr)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// deleteSeries validates every selector and the range before any ingester
// is called, so that a bad request deletes nothing; then each ingester
// records one tombstone per selector.
func (a *Admin) deleteSeries(r *http.Request, id string) *apierror.Error {
	if err := r.ParseForm(); err != nil {
		return apierror.Errorf(apierror.InvalidDeleteRequest, "tenant %q: error parsing form values: %w", id, err)
	}
	selectors := r.Form["match[]"]
	if len(selectors) == 0 {
		return apierror.Errorf(apierror.InvalidDeleteRequest, "tenant %q: no match[] parameter provided", id)
	}
	var reqs []*arguspb.DeleteSeriesRequest
	mint, maxt, err := deleteRange(r)
	if err != nil {
		return apierror.Errorf(apierror.InvalidDeleteRequest, "tenant %q: %w", id, err)
	}
	for _, s := range selectors {
		ms, err := selectorParser.ParseMetricSelector(s)
		if err != nil {
			return apierror.Errorf(apierror.InvalidDeleteRequest, "tenant %q: invalid parameter \"match[]\" %q: %w", id, s, err)
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			return apierror.Errorf(apierror.InvalidDeleteRequest,
				"tenant %q: invalid parameter \"match[]\" %q: every matcher matches the empty value, so it selects every series; to delete all of a tenant's series, use {__name__=~\".+\"}", id, s)
		}
		reqs = append(reqs, &arguspb.DeleteSeriesRequest{MinTimeMs: mint, MaxTimeMs: maxt, Matchers: toProtoMatchers(ms)})
	}
	err = a.everyIngester(r.Context(), id, func(ctx context.Context, c arguspb.IngesterAdminClient) error {
		for _, req := range reqs {
			if _, err := c.DeleteSeries(ctx, req); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return adminFailure(id, "delete_series", err)
	}
	a.logger.Info("series deleted", "tenant", id, "match", selectors, "start", mint, "end", maxt)
	return nil
}

// deleteRange parses start and end as Prometheus does (RFC 3339 or Unix
// seconds), defaulting to all of time, and refuses a start after the end.
func deleteRange(r *http.Request) (mint, maxt int64, err error) {
	mint, maxt = timestamp.FromTime(v1.MinTime), timestamp.FromTime(v1.MaxTime)
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start", &mint}, {"end", &maxt}} {
		s := r.Form.Get(p.name)
		if s == "" {
			continue
		}
		t, err := parseAPITime(s)
		if err != nil {
			return 0, 0, fmt.Errorf("invalid parameter %q: %w", p.name, err)
		}
		*p.dst = timestamp.FromTime(t)
	}
	if mint > maxt {
		return 0, 0, fmt.Errorf("start %d is after end %d (Unix ms)", mint, maxt)
	}
	return mint, maxt, nil
}

// parseAPITime parses a time parameter as Prometheus's API does: Unix
// seconds with up to millisecond precision, or RFC 3339.
func parseAPITime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// cleanTombstones asks every ingester to purge what tombstones cover.
// Each ingester cleans all its tenants' tombstones (the store rewrites
// whole partitions), which reads cannot tell apart.
func (a *Admin) cleanTombstones(ctx context.Context, id string) *apierror.Error {
	err := a.everyIngester(ctx, id, func(ctx context.Context, c arguspb.IngesterAdminClient) error {
		_, err := c.CleanTombstones(ctx, &arguspb.CleanTombstonesRequest{})
		return err
	})
	if err != nil {
		return adminFailure(id, "clean_tombstones", err)
	}
	return nil
}

// selectorParser parses match[] and selector parameters as Prometheus's
// API does. It is safe for concurrent use.
var selectorParser = parser.NewParser(parser.Options{})

// errIngestersDown means some ingester of the ring is not healthy, so a
// call that must reach every ingester was not sent.
var errIngestersDown = errors.New("some ingesters of the ring are not healthy")

// everyIngester calls f on every ingester of the ring, in parallel, with
// the tenant in the call's metadata, and returns every failure joined. It
// calls none if the ring has an unhealthy ingester: every replica of the
// tenant's series must take part.
func (a *Admin) everyIngester(ctx context.Context, id string, f func(context.Context, arguspb.IngesterAdminClient) error) error {
	instances, maxFailures, err := a.ring.ReadSet()
	if err != nil {
		return err
	}
	if down := a.ring.ReplicationFactor()/2 - maxFailures; down > 0 {
		return fmt.Errorf("%w (%d): nothing was sent", errIngestersDown, down)
	}
	return a.callAll(ctx, id, instances, f)
}

// callAll calls f on every one of instances in parallel, with the tenant
// in the call's metadata, and returns every failure joined, each naming
// its ingester. Callers decide which instances must answer.
func (a *Admin) callAll(ctx context.Context, id string, instances []ring.Instance, f func(context.Context, arguspb.IngesterAdminClient) error) error {
	ctx = tenant.OutgoingContext(ctx, id)
	errs := make([]error, len(instances))
	var wg sync.WaitGroup
	for i, inst := range instances {
		wg.Go(func() {
			c, err := a.clients(inst.Addr)
			if err == nil {
				err = f(ctx, c)
			}
			if err != nil {
				errs[i] = fmt.Errorf("ingester %s: %w", inst.Addr, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// adminFailure classifies the failure of a fan-out: an ingester that found
// the request invalid (a version skew, as the querier validates first) is
// a 400, anything else a 503 the client retries.
func adminFailure(id, op string, err error) *apierror.Error {
	if hasCode(err, codes.InvalidArgument) {
		return apierror.Errorf(apierror.InvalidDeleteRequest, "tenant %q: %s: %w", id, op, err)
	}
	return apierror.Errorf(apierror.AdminPartialFailure, "tenant %q: %s did not reach every ingester, retry it: %w", id, op, err)
}

// hasCode reports whether err, or one of the errors joined in it, is a
// gRPC status of code c.
func hasCode(err error, c codes.Code) bool {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		return slices.ContainsFunc(joined.Unwrap(), func(e error) bool { return hasCode(e, c) })
	}
	s, ok := status.FromError(err)
	return ok && s.Code() == c
}

// writeAdminError answers err with Prometheus's JSON error envelope.
func writeAdminError(w http.ResponseWriter, err *apierror.Error) {
	errType := "internal"
	switch code := err.ID.Status(); {
	case code == http.StatusBadRequest:
		errType = "bad_data"
	case code == http.StatusForbidden:
		errType = "forbidden"
	case code == http.StatusMethodNotAllowed:
		errType = "method_not_allowed"
	case code == http.StatusServiceUnavailable:
		errType = "unavailable"
	case code == http.StatusUnauthorized:
		errType = "unauthorized"
	}
	b, _ := json.Marshal(&v1.Response{Status: "error", ErrorType: errType, Error: err.Error()}) // Cannot fail: strings only.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.ID.Status())
	_, _ = w.Write(b) // The client is gone if this fails.
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeAdminError(w, apierror.Errorf(apierror.Internal, "encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) // The client is gone if this fails.
}
