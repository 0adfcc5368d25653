package querier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"
	"github.com/prometheus/common/version"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/features"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// PathPrefix is where cmd mounts Handler, without stripping it:
// mux.Handle(querier.PathPrefix+"/", q.Handler()). The Prometheus API is
// then at PathPrefix+"/api/v1/...", as in Mimir.
const PathPrefix = "/prometheus"

// apiRoutePrefix is the prefix of the Prometheus API routes below PathPrefix.
const apiRoutePrefix = "/api/v1"

// Remote read limits, Prometheus's defaults (--storage.remote.read-*).
const (
	remoteReadSampleLimit      = 5e7
	remoteReadConcurrencyLimit = 10
	remoteReadMaxBytesInFrame  = 1048576
)

// apiDeps is what newAPIHandler needs besides the engine and the storage.
type apiDeps struct {
	cfg        Config
	limits     tenantLimits // nil: unlimited
	logger     *slog.Logger
	registerer prometheus.Registerer // nil allowed
	gatherer   prometheus.Gatherer   // nil allowed
	metrics    *metrics
	features   features.Collector
	started    time.Time
	rules      func(context.Context) v1.RulesRetriever        // nil: no rules
	ams        func(context.Context) v1.AlertmanagerRetriever // nil: no Alertmanagers
	handoff    *handoffCodec                                  // the gRPC query API's (handoff.go)
	flags      map[string]string                              // status/flags; nil: flagsMap(cfg)
}

// newAPIHandler serves Prometheus's own web/api/v1 over engine and q at
// PathPrefix+"/api/v1". Exemplars come from q (exmeta.go) and
// /api/v1/metadata from the ingesters (withMetadata). Everything Argus has
// no counterpart for (scrape targets, rules, alertmanagers, TSDB admin and
// stats, remote write) is stubbed so that those endpoints answer empty or with an error,
// never panic. Every request runs under its tenant's query limits
// (withQueryLimits), and a query that times out reports the tenant's
// timeout (apiErrorEngine).
func newAPIHandler(engine promql.QueryEngine, q storage.SampleAndChunkQueryable, d apiDeps) http.Handler {
	api := v1.NewAPI(
		apiErrorEngine{engine},
		q,
		nil, // no appender: remote write and OTLP are disabled below
		exemplarsOf(q),
		func(context.Context) v1.ScrapePoolsRetriever { return noTargets{} },
		func(context.Context) v1.TargetRetriever { return noTargets{} },
		orNoAlertmanagers(d.ams),
		func() config.Config { return config.Config{} },
		orQuerierFlags(d.flags, d.cfg),
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f }, // always ready: readiness is cmd's /ready
		noTSDB{},
		"",    // dbDir
		false, // enableAdmin
		false, // enableSearch
		0,     // maxSearchLimit
		d.logger,
		orNoRules(d.rules),
		remoteReadSampleLimit,
		remoteReadConcurrencyLimit,
		remoteReadMaxBytesInFrame,
		false, // isAgent
		// CORS: no origin is allowed, unlike Prometheus's default ".*": a
		// multi-tenant API is reached through a gateway, not from browsers.
		regexp.MustCompile("^(?:)$"),
		runtimeInfo(d.started),
		buildInfo(),
		func() []notifications.Notification { return []notifications.Notification{} },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		gathererOrEmpty(d.gatherer),
		prefixed(d.registerer),
		nil,                 // default stats renderer
		false,               // remote write receiver
		nil,                 // remote write message types (receiver disabled)
		false, false, false, // OTLP receiver, delta-to-cumulative, native delta
		d.cfg.LookbackDelta,
		false, // type and unit labels
		false, // append metadata
		httpStatus,
		d.features,
		v1.OpenAPIOptions{Version: buildInfo().Version},
		parser.NewParser(parser.Options{}),
		false,         // query cost feature
		engineTimeout, // --query.timeout, only read by the query cost feature
	)
	api.InstallCodec(d.handoff)
	router := route.New().WithInstrumentation(func(name string, h http.HandlerFunc) http.HandlerFunc {
		return d.metrics.instrument(name, pooledCompression(name, withErrorIDs(h)))
	}).WithPrefix(PathPrefix + apiRoutePrefix)
	api.Register(router)
	var h http.Handler = router
	if qq, ok := q.(*queryable); ok {
		h = withMetadata(router, d.metrics.instrument("/metadata", withErrorIDs(metadataHandler(qq))))
	}
	return postAsGet(withPartialResponse(withQueryLimits(h, d.limits, d.metrics)))
}

// postAsGet lets clients POST a form to the read endpoints that Prometheus
// serves with GET only (label values, metadata, build info), as they can for
// query, query_range, series and labels: the form is parsed, then the request
// is served as a GET carrying it. Every other request passes through.
func postAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !getOnlyReadPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			badData(w, fmt.Errorf("error parsing form values: %w", err))
			return
		}
		g := r.Clone(r.Context()) // Clone copies the parsed form.
		g.Method = http.MethodGet
		next.ServeHTTP(w, g)
	})
}

// badData answers 400 with Prometheus's error envelope.
func badData(w http.ResponseWriter, err error) {
	msg := string(apierror.BadQuery) + ": " + err.Error()
	b, _ := json.Marshal(&v1.Response{Status: "error", ErrorType: "bad_data", Error: msg}) // Cannot fail: strings only.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b) // The client is gone if this fails.
}

func getOnlyReadPath(p string) bool {
	rest, ok := strings.CutPrefix(p, PathPrefix+apiRoutePrefix+"/")
	if !ok {
		return false
	}
	switch rest {
	case "metadata", "status/buildinfo":
		return true
	}
	name, ok := strings.CutPrefix(rest, "label/")
	return ok && name != "" && strings.Count(name, "/") == 1 && strings.HasSuffix(name, "/values") && name != "/values"
}

// buildInfo reports Argus's build, from the prometheus/common/version
// variables that cmd sets with -ldflags -X.
func buildInfo() *v1.PrometheusVersion {
	v := version.Version
	if v == "" {
		v = "unknown"
	}
	return &v1.PrometheusVersion{
		Version:   "argus-" + v,
		Revision:  version.GetRevision(),
		Branch:    version.Branch,
		BuildUser: version.BuildUser,
		BuildDate: version.BuildDate,
		GoVersion: version.GoVersion,
	}
}

// orQuerierFlags is flags, or the querier's own flags when the process
// gave none (tests, embedding).
func orQuerierFlags(flags map[string]string, cfg Config) map[string]string {
	if flags != nil {
		return flags
	}
	return flagsMap(cfg)
}

// flagsMap is what /status/flags shows without Deps.Flags: the querier's own flags. The
// per-tenant limits (-querier.timeout and the other query limits) are the
// tenant's, not the process's: the distributor's /api/v1/user_limits
// shows a tenant's.
func flagsMap(cfg Config) map[string]string {
	return map[string]string{
		"querier.max-concurrent":              strconv.Itoa(cfg.MaxConcurrent),
		"querier.max-samples":                 strconv.Itoa(cfg.MaxSamples),
		"querier.lookback-delta":              model.Duration(cfg.LookbackDelta).String(),
		"querier.default-evaluation-interval": model.Duration(cfg.DefaultEvaluationInterval).String(),
		"tenant-federation.enabled":           strconv.FormatBool(cfg.TenantFederationEnabled),
	}
}

func runtimeInfo(started time.Time) func() (v1.RuntimeInfo, error) {
	return func() (v1.RuntimeInfo, error) {
		cwd, _ := os.Getwd()
		host, _ := os.Hostname()
		return v1.RuntimeInfo{
			StartTime:      started,
			CWD:            cwd,
			Hostname:       host,
			ServerTime:     time.Now().UTC(),
			GoroutineCount: runtime.NumGoroutine(),
			GOMAXPROCS:     runtime.GOMAXPROCS(0),
			GOMEMLIMIT:     debug.SetMemoryLimit(-1),
			GOGC:           os.Getenv("GOGC"),
			GODEBUG:        os.Getenv("GODEBUG"),
		}, nil
	}
}

func gathererOrEmpty(g prometheus.Gatherer) prometheus.Gatherer {
	if g == nil {
		return prometheus.Gatherers{}
	}
	return g
}

// prefixed names the metrics that Prometheus's engine and API register
// argus_querier_prometheus_*; nil stays nil.
func prefixed(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return prometheus.WrapRegistererWithPrefix("argus_querier_", reg)
}

// errNotSupported answers the endpoints that Argus has no data for.
var errNotSupported = errors.New("not supported by the argus querier")

// noTargets has no scrape pools or targets: Argus scrapes nothing.
type noTargets struct{}

func (noTargets) ScrapePools() []string                                 { return nil }
func (noTargets) TargetsActive() map[string][]*scrape.Target            { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDropped() map[string][]*scrape.Target           { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDroppedCounts() map[string]int                  { return map[string]int{} }
func (noTargets) ScrapePoolConfig(string) (*config.ScrapeConfig, error) { return nil, errNotSupported }

// noAlertmanagers has no alertmanagers: no ruler runs in this process.
type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

// orNoRules returns f, or without one a retriever of no rules.
func orNoRules(f func(context.Context) v1.RulesRetriever) func(context.Context) v1.RulesRetriever {
	if f != nil {
		return f
	}
	return func(context.Context) v1.RulesRetriever { return noRules{} }
}

// orNoAlertmanagers returns f, or without one a retriever of none.
func orNoAlertmanagers(f func(context.Context) v1.AlertmanagerRetriever) func(context.Context) v1.AlertmanagerRetriever {
	if f != nil {
		return f
	}
	return func(context.Context) v1.AlertmanagerRetriever { return noAlertmanagers{} }
}

// noRules has no rule groups: no ruler runs in this process.
type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

// exemplarsOf returns q's exemplars if it serves any, else noExemplars.
func exemplarsOf(q storage.SampleAndChunkQueryable) storage.ExemplarQueryable {
	if eq, ok := q.(storage.ExemplarQueryable); ok {
		return eq
	}
	return noExemplars{}
}

// withMetadata serves /api/v1/metadata with md, which reads the metadata
// the ingesters store (Prometheus's own handler reads scrape targets), and
// passes every other request to next.
func withMetadata(next, md http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathPrefix+apiRoutePrefix+"/metadata" && r.Method == http.MethodGet {
			md.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noExemplars stores no exemplars.
type noExemplars struct{}

func (noExemplars) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	return noExemplars{}, nil
}

func (noExemplars) Select(int64, int64, ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	return []exemplar.QueryResult{}, nil
}

// noTSDB answers the TSDB admin and status endpoints: there is no local TSDB.
type noTSDB struct{}

func (noTSDB) CleanTombstones() error                                         { return errNotSupported }
func (noTSDB) Delete(context.Context, int64, int64, ...*labels.Matcher) error { return errNotSupported }
func (noTSDB) Snapshot(string, bool) error                                    { return errNotSupported }
func (noTSDB) Stats(string, int) (*tsdb.Stats, error)                         { return nil, errNotSupported }
func (noTSDB) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, errNotSupported
}
func (noTSDB) BlockMetas() ([]tsdb.BlockMeta, error) { return nil, errNotSupported }
