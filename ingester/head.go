package ingester

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// tenantOptions are what a tenant head needs from its Ingester.
type tenantOptions struct {
	id          string
	cfg         *Config
	logger      *slog.Logger
	metrics     *metrics
	limiter     *seriesLimiter
	now         func() time.Time
	wal         *sharedWAL
	store       tenantStore
	lastRef     *atomic.Uint64 // the ingester's series ref counter: refs are unique across tenants
	sealed      *atomic.Int64  // samples older than this are refused: the DB may have sealed their partition
	retention   func(tenant string) time.Duration
	oooWindow   func(tenant string) time.Duration // the out-of-order time window; nil: none
	removedMaxT int64
	// instanceSeries counts the series of every head of the Ingester, for
	// -ingester.instance-limits.max-series (maxSeries, 0: no limit).
	instanceSeries *atomic.Int64
	maxSeries      int
}

// tenantHead is the in-memory head of one tenant: its series and their
// postings. Its samples go to the ingester's shared WAL and its chunks to
// the ingester's DB: a tenant has no file of its own. All methods are safe
// for concurrent use.
//
// # Locks
//
// In acquisition order: the Ingester's truncMu, flushMu, appendMu,
// createMu, the WAL's cutMu, syncMu and mu, a series' mu, then the leaf locks
// (stripe locks, pendingMu, the postings' own lock, the exemplar and
// metadata stores' mu). appendMu makes "check
// ordering, write the WAL, append in memory" one step per tenant, so that
// the WAL holds every series' samples in the order the head appended them
// (see push).
type tenantHead struct {
	id        string
	cfg       *Config
	logger    *slog.Logger
	metrics   *metrics
	appended  atomic.Uint64 // argus_ingester_samples_appended_total of this tenant (tenantCollector)
	limiter   *seriesLimiter
	now       func() time.Time
	rate      rateWindow // samples appended by pushes, for UserStats
	wal       *sharedWAL
	lastRef   *atomic.Uint64
	sealed    *atomic.Int64
	retention func(tenant string) time.Duration
	oooWindow func(tenant string) time.Duration

	// gen is the head's series generation: a new one from seriesGens at
	// creation and before each GC pass removes series (refseries.go).
	gen atomic.Uint64

	// oooFloor: an out-of-order sample must be newer than it. Every chunk
	// persisted or being persisted, and every persisted max time a series
	// was created with, is at or before it (ooo.go). Raised by flushes under
	// appendMu, and by series creation.
	oooFloor atomic.Int64

	store    tenantStore
	series   *stripeSeries
	postings *headPostings // refs are added in increasing order under createMu (replay excepted: see headPostings)

	// createMu serializes series creation and removal, so that the counts
	// stay exact and two pushes cannot both take the last slot of a limit.
	createMu sync.Mutex
	counts   seriesCounts // guarded by createMu (replay writes it before the head is shared)

	appendMu sync.Mutex
	// closed is set under appendMu and createMu (close, closeIfEmpty): a
	// closed head takes no sample and creates no series.
	closed atomic.Bool

	// lastUsed is the time (Unix ms, Ingester clock) of the last push or
	// query, for closeIdleTenants.
	lastUsed atomic.Int64
	// failed is set while the tenant's storage fails (see setFailed).
	failed atomic.Pointer[tenantFailure]

	instanceSeries *atomic.Int64
	maxSeries      int

	// maxT is the newest sample time of the head, math.MinInt64 if none.
	// Written under appendMu, read anywhere.
	maxT atomic.Int64
	// removedMaxT bounds from above the max time of every persisted series
	// of the tenant that is not in the head (series removed by GC, in this
	// run or an earlier one: it is kept in the file removedMaxTFile),
	// math.MinInt64 if none. Written under appendMu and the Ingester's
	// truncMu, read anywhere.
	removedMaxT atomic.Int64
	// replayCutoff is the oldest sample time replay keeps: older ones are
	// past the tenant's retention. Set at open, read by replay only.
	replayCutoff int64

	// aliases maps the refs of series records that replay found for a label
	// set already in the head (a series removed and recreated before a crash)
	// to that series, so that checkpoints keep their records. Written by
	// replay before the head is shared, then guarded by the Ingester's
	// truncMu.
	aliases map[chunks.HeadSeriesRef]*memSeries

	// replayed are the series replay created, added to the postings in ref
	// order when it ends: the WAL holds series records in the order pushes
	// logged them, not in ref order, and postings lists must stay sorted.
	// Written by replay only, before the head is shared.
	replayed []*memSeries

	exemplars exemplarStore // exemplars.go
	meta      metadataStore // metadata.go

	flushMu sync.Mutex // serializes flushes

	// walks are the results of the last walks over every series (walks.go).
	walks walkCaches

	pendingMu sync.Mutex
	pending   []*memSeries // guarded by pendingMu: series with finished chunks to persist
}

// newTenantHead returns the empty head of a tenant. It does no I/O: a
// tenant's data is in the shared WAL, which replay routes to its head.
func newTenantHead(o tenantOptions) *tenantHead {
	h := &tenantHead{
		id:        o.id,
		cfg:       o.cfg,
		logger:    o.logger,
		metrics:   o.metrics,
		limiter:   o.limiter,
		now:       o.now,
		wal:       o.wal,
		lastRef:   o.lastRef,
		sealed:    o.sealed,
		retention: o.retention,
		oooWindow: o.oooWindow,
		store:     o.store,
		series:    newStripeSeries(),
		postings:  newHeadPostings(),
		counts:    seriesCounts{byMetric: map[string]int{}},
		aliases:   map[chunks.HeadSeriesRef]*memSeries{},

		instanceSeries: o.instanceSeries,
		maxSeries:      o.maxSeries,
	}
	if h.instanceSeries == nil {
		h.instanceSeries = new(atomic.Int64)
	}
	nowMs := o.now().UnixMilli()
	h.rate.current = floorDiv(nowMs, rateBucketMs)
	h.maxT.Store(math.MinInt64)
	h.oooFloor.Store(math.MinInt64)
	h.gen.Store(seriesGens.Add(1))
	h.removedMaxT.Store(o.removedMaxT)
	h.replayCutoff = h.retentionCutoff(nowMs)
	h.lastUsed.Store(nowMs)
	return h
}

// close marks the head closed: later pushes are refused.
func (h *tenantHead) close() {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	h.createMu.Lock()
	defer h.createMu.Unlock()
	if h.closed.Load() {
		return
	}
	h.closed.Store(true)
	h.metrics.tenantFailed.DeleteLabelValues(h.id)
	h.instanceSeries.Add(-int64(h.counts.total))
}

// retentionCutoff returns the oldest sample time inside the tenant's
// retention at nowMs, or math.MinInt64 if it keeps data for ever.
func (h *tenantHead) retentionCutoff(nowMs int64) int64 {
	if h.retention == nil {
		return math.MinInt64
	}
	p := h.retention(h.id)
	if p <= 0 {
		return math.MinInt64
	}
	return nowMs - p.Milliseconds()
}

// minValid returns the oldest sample time a push may append: the head's
// minimum valid time (Prometheus's, extended to the out-of-order window), the
// tenant's retention, and the time before which the DB may have sealed
// partitions, whichever is newest.
func (h *tenantHead) minValid(nowMs int64) int64 {
	return max(minValidWithWindow(h.maxT.Load(), h.oooWindowMs()), h.sealed.Load(), h.retentionCutoff(nowMs))
}

func (h *tenantHead) nowMs() int64 {
	return h.now().UnixMilli()
}

// getOrCreate returns the series with labels lset (of hash hash), creating
// it if absent. lset may be a scratch label set: its strings are copied to
// the head's symbols on creation.
// A new series is not in the WAL yet: the first push that logs a sample of
// it logs its series record first (memSeries.logged).
//
// With lim not nil, a series that is absent and would exceed lim is not
// created: the error is a seriesLimitError, which may reference lset (format
// it before lset is reused). The check and the creation are one step under
// createMu. Existing series are returned whatever the limits.
//
// newest is the newest sample time the caller would append: a series whose
// persisted samples reach it is not created (the error is a sampleError of
// an out-of-order sample), as none of those samples could be appended.
func (h *tenantHead) getOrCreate(hash uint64, lset labels.Labels, lim *seriesLimits, newest int64) (*memSeries, error) {
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, nil
	}
	persisted, err := h.persistedMaxT(lset)
	if err != nil {
		return nil, err
	}
	if newest <= persisted {
		return nil, sampleError{reason: rejectOutOfOrder.reason(), t: newest, ref: persisted}
	}
	raiseInt64(&h.oooFloor, persisted) // Before the series exists: no sample of it may go at or before persisted.
	h.createMu.Lock()
	defer h.createMu.Unlock()
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, nil
	}
	if h.closed.Load() {
		return nil, errHeadClosed
	}
	if h.maxSeries > 0 && h.instanceSeries.Load() >= int64(h.maxSeries) {
		return nil, instanceSeriesError(h.maxSeries)
	}
	if lim != nil {
		if err := h.counts.check(h.id, lset, lim); err != nil {
			return nil, err
		}
	}
	// Taken under createMu: the tenant's refs grow in the order its series
	// are added to the postings.
	ref := chunks.HeadSeriesRef(h.lastRef.Add(1))
	s := newMemSeries(ref, h.series.syms.encode(lset), persisted, h.nowMs()) // encode copies the strings
	h.addSeries(hash, s, lset)
	return s, nil
}

// addSeries adds the new series s, of labels lset, to the maps, the
// postings and the counts. The caller holds createMu.
func (h *tenantHead) addSeries(hash uint64, s *memSeries, lset labels.Labels) {
	h.series.setIfAbsent(hash, s)
	h.postings.Add(promstorage.SeriesRef(s.ref), h.series.syms, s.syms)
	h.counts.add(h.series.syms.metricName(s.syms))
	h.instanceSeries.Add(1)
}

// persistedMaxT returns the max time of the persisted samples of lset, which
// is not in the head, or math.MinInt64 if it has none that matters.
//
// Only a series removed from the head can have persisted samples, and they
// are at most removedMaxT. If that is older than the head's minimum valid
// time, every sample older than it is rejected as too old anyway, so the
// DB need not be read (a read costs a bbolt transaction and garbage
// that fragments the heap of a head creating many series). The persisted max
// time of a label set changes only by flushing a head series, and there is
// none for lset, so reading it before createMu is safe.
func (h *tenantHead) persistedMaxT(lset labels.Labels) (int64, error) {
	if h.removedMaxT.Load() < minValidWithWindow(h.maxT.Load(), h.oooWindowMs()) {
		return math.MinInt64, nil
	}
	t, ok, err := h.store.LastTime(lset)
	if err != nil {
		return 0, fmt.Errorf("read last persisted time: %w", err)
	}
	if !ok {
		return math.MinInt64, nil
	}
	return t, nil
}

// minValidTime is the oldest sample time a head with newest sample maxT
// accepts: Prometheus's appendable minimum, head max minus half a chunk
// range (math.MinInt64 for an empty head).
func minValidTime(maxT int64) int64 {
	if maxT < math.MinInt64+chunkRangeMs/2 {
		return math.MinInt64
	}
	return maxT - chunkRangeMs/2
}

// enqueue adds s, whose queued flag the caller just set, to the flush queue.
func (h *tenantHead) enqueue(s ...*memSeries) {
	if len(s) == 0 {
		return
	}
	h.pendingMu.Lock()
	h.pending = append(h.pending, s...)
	h.pendingMu.Unlock()
	h.metrics.pendingFlushQueue.Add(float64(len(s)))
}

// takeQueue empties the flush queue and returns what it held.
func (h *tenantHead) takeQueue() []*memSeries {
	h.pendingMu.Lock()
	q := h.pending
	h.pending = nil
	h.pendingMu.Unlock()
	h.metrics.pendingFlushQueue.Sub(float64(len(q)))
	return q
}
