package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/features"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// Deps are the querier's runtime dependencies.
type Deps struct {
	// Source answers every read; arguspb.NewSeriesSourceClient(conn) fits.
	// Either Source or Replicas with Sources is required.
	Source seriesSource
	// Replicas, when set, makes every read fan out to the instances of the
	// ring's read set (*ring.KV, *ring.Static), tolerating the failures the
	// replication factor allows, and merge their replicas.
	Replicas readSetter
	// Sources gives the series source of an instance address; required with
	// Replicas.
	Sources SourceFactory
	// Local, with Replicas, is the ingester of this process: the read set's
	// instance whose ID is LocalID is read through it, without gRPC
	// (local.go), and Sources is not asked for it.
	Local   LocalSource
	LocalID string
	// Limits gives each tenant's query limits (limits.Overrides fits):
	// -querier.timeout, -querier.max-fetched-series-per-query,
	// -querier.max-fetched-chunks-per-query and -querier.max-query-length.
	// They are looked up once per request and tenant. nil means no limit at
	// all, not even a timeout besides the request context's own: for tests
	// and embedding; cmd passes its Overrides.
	Limits tenantLimits
	// Logger receives the engine's and the API's logs, with the component
	// already attached; nil discards them.
	Logger *slog.Logger
	// Registerer receives the querier's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Gatherer backs /api/v1/status/self_metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Rules, if set, gives the rule groups of the tenant in the context for
	// /api/v1/rules and /api/v1/alerts (the ruler's); nil serves none.
	Rules func(context.Context) v1.RulesRetriever
	// Alertmanagers, if set, gives the Alertmanagers of the tenant in the
	// context for /api/v1/alertmanagers; nil serves none.
	Alertmanagers func(context.Context) v1.AlertmanagerRetriever
	// Flags is what /api/v1/status/flags shows: every flag of the process
	// by name (without the dash) with its value in force, as Prometheus
	// lists all of its own. nil shows the querier's own flags only. The map
	// is read, never changed, for the life of the querier.
	Flags map[string]string
}

// Querier answers PromQL and the Prometheus HTTP API over one SeriesSource.
// All methods are safe for concurrent use. It starts no goroutines and holds
// no resources that need closing.
type Querier struct {
	queryable *queryable
	engine    *promql.Engine
	handler   http.Handler
	// inner is handler without withoutHandoff: the gRPC query API's.
	inner   http.Handler
	handoff *handoffCodec
}

// New validates cfg and builds a querier. It does no I/O and starts no
// goroutines.
func New(cfg Config, deps Deps) (*Querier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid querier config: %w", err)
	}
	if deps.Source == nil && (deps.Replicas == nil || deps.Sources == nil) {
		return nil, errors.New("querier needs a series source, or a read set and a source factory")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(deps.Registerer)
	feats := features.NewRegistry() // served by /api/v1/features
	q := &Querier{
		queryable: &queryable{
			src: deps.Source, metrics: m, replicas: deps.Replicas, sources: deps.Sources,
			local: deps.Local, localID: deps.LocalID,
			limits: deps.Limits, lookback: cfg.LookbackDelta, federation: cfg.TenantFederationEnabled,
		},
		engine:  newEngine(cfg, logger, deps.Registerer, feats),
		handoff: newHandoffCodec(),
	}
	q.inner = newAPIHandler(q.engine, q.queryable, apiDeps{
		cfg:        cfg,
		limits:     deps.Limits,
		logger:     logger,
		registerer: deps.Registerer,
		gatherer:   deps.Gatherer,
		metrics:    m,
		features:   feats,
		started:    time.Now(),
		rules:      deps.Rules,
		ams:        deps.Alertmanagers,
		handoff:    q.handoff,
		flags:      deps.Flags,
	})
	q.handler = withoutHandoff(q.inner)
	return q, nil
}

// Queryable returns the storage view of the series source, for PromQL
// engines and for anything else that reads through Prometheus's storage
// interfaces. Every call reads the tenant from its context
// (tenant.FromContext) and fails without one; a context naming several
// tenants needs Config.TenantFederationEnabled. The tenant's fetched-series,
// fetched-chunks and query-length limits apply per querier (one per query);
// its timeout is a deadline that only Handler sets.
func (q *Querier) Queryable() storage.SampleAndChunkQueryable { return q.queryable }

// Handler serves the Prometheus HTTP API at PathPrefix+"/api/v1/": mount it
// at PathPrefix+"/" without stripping the prefix, behind the auth middleware (internal/auth).
// GET and POST are accepted for query, query_range, series, labels,
// label/<name>/values, metadata, status/buildinfo and format_query. Each
// request is one query for the tenant's limits: it runs until the tenant's
// -querier.timeout, and its fetched series and chunks are counted over all
// its selectors and replicas.
func (q *Querier) Handler() http.Handler { return q.handler }

// newEngine builds a PromQL engine with the options a Prometheus 3 server
// uses by default (cmd/prometheus/main.go): @ and negative offsets on, every
// feature flag off, no query log, and the limits from cfg. Its timeout is
// engineTimeout: the tenant's timeout is the request's deadline (timeout.go).
func newEngine(cfg Config, logger *slog.Logger, reg prometheus.Registerer, feats features.Collector) *promql.Engine {
	evalInterval := cfg.DefaultEvaluationInterval.Milliseconds()
	return promql.NewEngine(promql.EngineOpts{
		Logger:             logger,
		Reg:                prefixed(reg),
		MaxSamples:         cfg.MaxSamples,
		Timeout:            engineTimeout,
		ActiveQueryTracker: newConcurrencyLimit(cfg.MaxConcurrent),
		LookbackDelta:      cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return evalInterval
		},
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		EnablePerStepStats:       false,
		EnableDelayedNameRemoval: false,
		EnableTypeAndUnitLabels:  false,
		UseStartTimestamps:       false,
		EnableQueryCost:          false,
		FeatureRegistry:          feats,
		Parser:                   parser.NewParser(parser.Options{}),
	})
}

// concurrencyLimit is a promql.QueryTracker that only bounds how many
// queries run at once, without Prometheus's memory-mapped active query log.
// It is safe for concurrent use.
type concurrencyLimit struct {
	slots chan struct{}
}

func newConcurrencyLimit(n int) *concurrencyLimit {
	return &concurrencyLimit{slots: make(chan struct{}, n)}
}

func (l *concurrencyLimit) GetMaxConcurrent() int { return cap(l.slots) }

// Insert blocks until a slot is free or ctx is done.
func (l *concurrencyLimit) Insert(ctx context.Context, _ string) (int, error) {
	select {
	case l.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (l *concurrencyLimit) Delete(int) { <-l.slots }

func (*concurrencyLimit) Close() error { return nil }
