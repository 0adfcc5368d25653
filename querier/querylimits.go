package querier

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// Per-tenant query limits (issue #4). Each API request is one query: the
// handler (withQueryLimits) gives its context a requestLimits, which hands
// out one tenantBudget per tenant the request reads, built from that
// tenant's limits as they are when the request first reads it. Every Series
// stream of the request counts what it decodes against the budget of its
// tenant (seriesDecoder), so that the limits hold across all the Selects of
// a query and all the replicas of the read set. See DESIGN.md.

// tenantLimits gives the limits in force for a tenant; limits.Overrides
// satisfies it. The result is shared and read-only; it is looked up once per
// request and tenant, so that a reload of the runtime config applies to the
// next request.
type tenantLimits interface {
	For(tenant string) *limits.Limits
}

// unlimited is every tenant's limits when Deps.Limits is nil: every count
// and length limit off, and no timeout (withQueryLimits sets no deadline).
var unlimited = &limits.Limits{}

// Reasons of argus_querier_queries_rejected_total, all created at zero.
const (
	reasonMaxFetchedSeries = "max_fetched_series"
	reasonMaxFetchedChunks = "max_fetched_chunks"
	reasonMaxQueryLength   = "max_query_length"
	reasonTimeout          = "timeout"
)

var rejectReasons = []string{reasonMaxFetchedSeries, reasonMaxFetchedChunks, reasonMaxQueryLength, reasonTimeout}

// The bounds that Prometheus's API passes for an omitted start or end of the
// series and labels endpoints, in Unix ms.
var (
	apiMinTime = timestamp.FromTime(v1.MinTime)
	apiMaxTime = timestamp.FromTime(v1.MaxTime)
)

// withQueryLimits applies the query limits of the request's tenant to every
// request of next: its context gets a fresh requestLimits (the per-query
// accounting) and, when limits is set, the deadline of the tenant's
// -querier.timeout, whose cause is the timeout's API error (timeout.go).
// A request that names several tenants (federation) gets the shortest of
// their timeouts, so that no tenant's data is read for longer than it
// allows. A request without a tenant passes through unchanged: its reads
// fail with tenant.ErrNoTenant.
func withQueryLimits(next http.Handler, l tenantLimits, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, done := limitQuery(r.Context(), l, m)
		defer done()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// limitQuery is withQueryLimits for one query with context ctx: it returns
// the query's context, and done, which the caller calls when the query
// ends. A context without a tenant is returned unchanged.
func limitQuery(ctx context.Context, l tenantLimits, m *metrics) (context.Context, func()) {
	orgID, err := tenant.FromContext(ctx)
	if err != nil {
		return ctx, func() {}
	}
	rl := &requestLimits{limits: l, metrics: m}
	ctx = withRequestLimits(ctx, rl)
	if l == nil {
		return ctx, func() {}
	}
	id, timeout := rl.strictestTimeout(tenant.IDs(orgID))
	cause := timeoutError(id, timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, cause)
	return ctx, func() {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), cause) {
			m.queriesRejected.WithLabelValues(reasonTimeout).Inc()
		}
		cancel()
	}
}

// strictestTimeout returns the shortest -querier.timeout of the tenants ids
// (at least one), and whose it is, from the limits of their budgets: the
// ones the request's reads then count against.
func (r *requestLimits) strictestTimeout(ids []string) (string, time.Duration) {
	id, timeout := ids[0], r.budget(ids[0]).limits.QueryTimeout
	for _, other := range ids[1:] {
		if t := r.budget(other).limits.QueryTimeout; t < timeout {
			id, timeout = other, t
		}
	}
	return id, timeout
}

// requestLimits is the accounting of one API request: a budget per tenant it
// reads. It is safe for concurrent use.
type requestLimits struct {
	limits  tenantLimits // nil: every tenant is unlimited
	metrics *metrics

	mu      sync.Mutex
	tenants map[string]*tenantBudget // guarded by mu
}

type requestLimitsKey struct{}

func withRequestLimits(ctx context.Context, r *requestLimits) context.Context {
	return context.WithValue(ctx, requestLimitsKey{}, r)
}

// requestLimitsFrom returns the accounting of ctx's request, or nil.
func requestLimitsFrom(ctx context.Context) *requestLimits {
	r, _ := ctx.Value(requestLimitsKey{}).(*requestLimits)
	return r
}

// budget returns the budget of tenantID in this request, creating it with
// the tenant's current limits on first use.
func (r *requestLimits) budget(tenantID string) *tenantBudget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.tenants[tenantID]; ok {
		return b
	}
	lim := unlimited
	if r.limits != nil {
		lim = r.limits.For(tenantID)
	}
	b := &tenantBudget{tenant: tenantID, limits: lim, metrics: r.metrics}
	if r.tenants == nil {
		r.tenants = map[string]*tenantBudget{}
	}
	r.tenants[tenantID] = b
	return b
}

type budgetKey struct{}

// withBudget returns ctx carrying the budget that the Series streams made
// with it count against.
func withBudget(ctx context.Context, b *tenantBudget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

// budgetFrom returns the budget of ctx, or nil for none.
func budgetFrom(ctx context.Context) *tenantBudget {
	b, _ := ctx.Value(budgetKey{}).(*tenantBudget)
	return b
}

// tenantBudget counts what one query fetches for one tenant against the
// tenant's limits. It is safe for concurrent use: the streams of a fan-out
// share it. The first limit exceeded sticks: every later check of the query
// fails with the same error, so that the remaining Selects and streams stop
// at once, and the rejection is counted once.
//
// Memory: the distinct series are remembered as 64-bit label hashes, at most
// MaxFetchedSeriesPerQuery+1 of them; two series whose hashes collide count
// as one.
type tenantBudget struct {
	tenant  string
	limits  *limits.Limits // shared and read-only
	metrics *metrics

	mu     sync.Mutex
	series map[uint64]struct{} // hashes of the distinct series fetched; guarded by mu
	chunks int                 // chunks fetched, replicas included; guarded by mu
	err    error               // the first limit exceeded; guarded by mu
}

// failed returns the limit error of the query so far, if any.
func (b *tenantBudget) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *tenantBudget) fail(reason string, err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failLocked(reason, err)
}

// failLocked records err as the query's limit error unless there is one
// already, and returns the one recorded. b.mu must be held.
func (b *tenantBudget) failLocked(reason string, err error) error {
	if b.err != nil {
		return b.err
	}
	b.err = err
	b.metrics.queriesRejected.WithLabelValues(reason).Inc()
	return err
}

// fetched counts one series received on a Series stream, with its chunks.
// streamSeries is how many series that stream has delivered, this one
// included: they are distinct (the protocol sends them strictly sorted), so
// a stream that alone exceeds the series limit is stopped without waiting
// for the others. The series is then counted once across streams and
// replicas, by its labels hash; its chunks are counted as received, every
// replica's. The error, eagerly formatted since lset may alias the decoder's
// memory, names the series that crossed the limit.
func (b *tenantBudget) fetched(lset labels.Labels, streamSeries, chunks int) error {
	maxSeries, maxChunks := b.limits.MaxFetchedSeriesPerQuery, b.limits.MaxFetchedChunksPerQuery
	if maxSeries <= 0 && maxChunks <= 0 {
		return nil
	}
	if maxSeries > 0 && streamSeries > maxSeries {
		return b.fail(reasonMaxFetchedSeries, b.tooManySeries(lset))
	}
	var hash uint64
	if maxSeries > 0 {
		hash = lset.Hash()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if maxSeries > 0 {
		if b.series == nil {
			b.series = make(map[uint64]struct{}, min(maxSeries+1, 1024))
		}
		b.series[hash] = struct{}{}
		if len(b.series) > maxSeries {
			return b.failLocked(reasonMaxFetchedSeries, b.tooManySeries(lset))
		}
	}
	if maxChunks > 0 {
		b.chunks += chunks
		if b.chunks > maxChunks {
			return b.failLocked(reasonMaxFetchedChunks, b.tooManyChunks(lset))
		}
	}
	return nil
}

func (b *tenantBudget) tooManySeries(lset labels.Labels) error {
	return apierror.Errorf(apierror.MaxFetchedSeriesPerQuery,
		"tenant %q: the query fetches more series than %s, the first series over the limit is %s",
		b.tenant, apierror.LimitText("querier.max-fetched-series-per-query", b.limits.MaxFetchedSeriesPerQuery), lset)
}

func (b *tenantBudget) tooManyChunks(lset labels.Labels) error {
	return apierror.Errorf(apierror.MaxFetchedChunksPerQuery,
		"tenant %q: the query fetches more chunks than %s, counting every replica's, crossed by the chunks of series %s",
		b.tenant, apierror.LimitText("querier.max-fetched-chunks-per-query", b.limits.MaxFetchedChunksPerQuery), lset)
}

// checkSelector checks the range [start, end] (Unix ms, inclusive, as in
// SelectHints) of one selector of a PromQL query against the tenant's
// -querier.max-query-length, allowing lookback more: the engine widens an
// instant selector by the lookback delta, so that a range query exactly as
// long as the limit passes. A range selector is only allowed the same
// lookback (x[30d] at an instant fails a 7d limit).
func (b *tenantBudget) checkSelector(start, end int64, lookback time.Duration) error {
	maxLen := b.limits.MaxQueryLength
	if maxLen <= 0 {
		return nil
	}
	// Prometheus's selectors are left-open, so their hints start 1ms after
	// the range the user wrote: span is that range's length.
	span := end - start + 1
	if span <= (maxLen + lookback).Milliseconds() {
		return nil
	}
	return b.fail(reasonMaxQueryLength, apierror.Errorf(apierror.MaxQueryLength,
		"tenant %q: a selector of the query spans %s, longer than %s plus the lookback delta %s",
		b.tenant, msDuration(span), apierror.LimitText("querier.max-query-length", maxLen), lookback))
}

// lookupRange checks the range [mint, maxt] (Unix ms) of a series or labels
// request against the tenant's -querier.max-query-length and returns the
// range to read. The API's bounds for an omitted start or end are not spans
// the user asked for: an omitted end counts as now, and an omitted start
// reads the limit's length back from the end (or now), so that a label
// browser that sends no range gets the latest labels rather than an error.
func (b *tenantBudget) lookupRange(mint, maxt int64, now time.Time) (int64, int64, error) {
	maxLen := b.limits.MaxQueryLength
	if maxLen <= 0 {
		return mint, maxt, nil
	}
	end := maxt
	if maxt >= apiMaxTime {
		end = now.UnixMilli()
	}
	if mint <= apiMinTime {
		return end - maxLen.Milliseconds(), maxt, nil
	}
	if span := end - mint; span > maxLen.Milliseconds() {
		return 0, 0, b.fail(reasonMaxQueryLength, apierror.Errorf(apierror.MaxQueryLength,
			"tenant %q: the request spans %s, longer than %s",
			b.tenant, msDuration(span), apierror.LimitText("querier.max-query-length", maxLen)))
	}
	return mint, maxt, nil
}

// msDuration is a span in ms as a duration, saturated at about 292 years.
func msDuration(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		ms = math.MaxInt64 / int64(time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond
}

// invalidTenantError is the error of a read whose tenant string names
// several tenants while federation is disabled, or names an invalid one.
func invalidTenantError(orgID string, err error) error {
	if err != nil {
		return apierror.Errorf(apierror.InvalidTenant, "tenant %q: %w", orgID, err)
	}
	return apierror.Errorf(apierror.InvalidTenant,
		"tenant %q names several tenants and tenant federation is disabled (-tenant-federation.enabled=false)", orgID)
}
