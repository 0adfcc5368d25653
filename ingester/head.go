package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/argus-tsdb/argus/storage"
)

// tenantOptions are what a tenant head needs from its Ingester.
type tenantOptions struct {
	id       string
	dir      string
	cfg      *Config
	logger   *slog.Logger
	metrics  *metrics
	limiter  *seriesLimiter
	now      func() time.Time
	failures chan<- error
	// deletions gives the tenant's tombstones, which reads mask the head with.
	deletions tombstoneReader
}

// tenantHead is the in-memory head of one tenant: its series, their postings,
// its WAL and its chunk store. All methods are safe for concurrent use.
//
// # Locks
//
// In acquisition order: truncMu, flushMu, appendMu, createMu, a series' mu,
// then the leaf locks (stripe locks, pendingMu, the postings' own lock).
// appendMu makes "check ordering, write the WAL, append in memory" one step
// per tenant, so that the WAL holds every series' samples in the order the
// head appended them (see push).
type tenantHead struct {
	id       string
	dir      string
	walDir   string
	cfg      *Config
	logger   *slog.Logger
	metrics  *metrics
	appended prometheus.Counter // argus_ingester_samples_appended_total of this tenant
	inMemory prometheus.Gauge   // argus_ingester_memory_series of this tenant
	limiter  *seriesLimiter
	now      func() time.Time
	failures chan<- error
	rate     rateWindow // samples appended by pushes, for UserStats

	store     *storage.ChunkStore
	deletions tombstoneReader // the tombstones reads mask the head with (tombstones.go)
	series    *stripeSeries
	postings  *index.MemPostings // refs are added in increasing order (under createMu), so lists stay sorted without in-place swaps

	// createMu serializes series creation and removal, so that the counts
	// stay exact and two pushes cannot both take the last slot of a limit.
	createMu sync.Mutex
	lastRef  chunks.HeadSeriesRef // guarded by createMu
	counts   seriesCounts         // guarded by createMu (replay writes it before the head is shared)

	appendMu sync.Mutex
	wal      *wlog.WL // every call guarded by appendMu: WL.Sync races a segment switch
	walDirty bool     // guarded by appendMu: records written since the last fsync
	walErr   error    // guarded by appendMu: a WAL write failed; pushes are refused
	closed   bool     // guarded by appendMu

	// maxT is the newest sample time of the head, math.MinInt64 if none.
	// Written under appendMu, read anywhere.
	maxT atomic.Int64
	// removedMaxT bounds from above the max time of every persisted series
	// that is not in the head (series removed by GC, in this run or an
	// earlier one: it is kept in the file removedMaxTFile), math.MinInt64 if
	// none. Written under appendMu and truncMu, read anywhere.
	removedMaxT atomic.Int64

	truncMu sync.Mutex // serializes WAL truncations
	// aliases maps the refs of series records that replay found for a label
	// set already in the head (a series removed and recreated before a crash)
	// to that series, so that checkpoints keep their records. Written by
	// replay before the head is shared, then guarded by truncMu.
	aliases map[chunks.HeadSeriesRef]*memSeries

	flushMu sync.Mutex // serializes flushes

	pendingMu sync.Mutex
	pending   []*memSeries // guarded by pendingMu: series with finished chunks to persist
}

// openTenantHead opens (creating if needed) the tenant directory, its chunk
// store and its WAL, replaying the WAL into a new head.
func openTenantHead(ctx context.Context, o tenantOptions) (*tenantHead, error) {
	walDir := filepath.Join(o.dir, "wal")
	if err := os.MkdirAll(walDir, 0o777); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	store, err := storage.Open(filepath.Join(o.dir, "chunks.db"), storage.Options{})
	if err != nil {
		return nil, fmt.Errorf("open chunk store: %w", err)
	}
	h := &tenantHead{
		id:        o.id,
		dir:       o.dir,
		walDir:    walDir,
		cfg:       o.cfg,
		logger:    o.logger,
		metrics:   o.metrics,
		appended:  o.metrics.samplesAppended.WithLabelValues(o.id),
		inMemory:  o.metrics.memorySeries.WithLabelValues(o.id),
		limiter:   o.limiter,
		now:       o.now,
		failures:  o.failures,
		store:     store,
		deletions: o.deletions,
		series:    newStripeSeries(),
		postings:  index.NewMemPostings(),
		counts:    seriesCounts{byMetric: map[string]int{}},
		aliases:   map[chunks.HeadSeriesRef]*memSeries{},
	}
	h.rate.current = floorDiv(o.now().UnixMilli(), rateBucketMs)
	h.maxT.Store(math.MinInt64)
	removed, err := readRemovedMaxT(o.dir)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	h.removedMaxT.Store(removed)
	if err := h.replay(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("replay wal: %w", err), store.Close())
	}
	return h, nil
}

// close closes the WAL and the chunk store without persisting anything.
func (h *tenantHead) close() error {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	if h.wal != nil {
		if err := h.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close wal: %w", err))
		}
	}
	if err := h.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close chunk store: %w", err))
	}
	h.metrics.memorySeries.DeleteLabelValues(h.id)
	return errors.Join(errs...)
}

func (h *tenantHead) nowMs() int64 {
	return h.now().UnixMilli()
}

// getOrCreate returns the series with labels lset (of hash hash), creating
// it if absent. lset may be a scratch label set: it is copied on creation.
// A new series is not in the WAL yet: the first push that logs a sample of
// it logs its series record first (memSeries.logged).
//
// With lim not nil, a series that is absent and would exceed lim is not
// created: the error is a seriesLimitError, which may reference lset (format
// it before lset is reused). The check and the creation are one step under
// createMu. Existing series are returned whatever the limits.
func (h *tenantHead) getOrCreate(hash uint64, lset labels.Labels, lim *seriesLimits) (*memSeries, error) {
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, nil
	}
	persisted, err := h.persistedMaxT(lset)
	if err != nil {
		return nil, err
	}
	h.createMu.Lock()
	defer h.createMu.Unlock()
	if s := h.series.getByHash(hash, lset); s != nil {
		return s, nil
	}
	if lim != nil {
		if err := h.counts.check(h.id, lset, lim); err != nil {
			return nil, err
		}
	}
	lset = lset.Copy()
	h.lastRef++
	s := newMemSeries(h.lastRef, lset, persisted, h.nowMs())
	h.series.setIfAbsent(hash, s)
	h.postings.Add(promstorage.SeriesRef(s.ref), lset)
	h.counts.add(lset)
	h.inMemory.Inc()
	return s, nil
}

// persistedMaxT returns the max time of the persisted samples of lset, which
// is not in the head, or math.MinInt64 if it has none that matters.
//
// Only a series removed from the head can have persisted samples, and they
// are at most removedMaxT. If that is older than the head's minimum valid
// time, every sample older than it is rejected as too old anyway, so the
// chunk store need not be read (a read costs a bbolt transaction and garbage
// that fragments the heap of a head creating many series). The persisted max
// time of a label set changes only by flushing a head series, and there is
// none for lset, so reading it before createMu is safe.
func (h *tenantHead) persistedMaxT(lset labels.Labels) (int64, error) {
	if h.removedMaxT.Load() < minValidTime(h.maxT.Load()) {
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

// syncWAL fsyncs the WAL segment being written if records were written since
// the last fsync.
func (h *tenantHead) syncWAL() {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if !h.walDirty || h.walErr != nil || h.closed {
		return
	}
	if err := h.wal.Sync(); err != nil {
		h.failLocked(fmt.Errorf("fsync wal: %w", err))
		return
	}
	h.walDirty = false
}

// failLocked records a WAL failure: the WAL may now end with a torn record,
// and a record written after it would be lost at the replay's repair, so
// the tenant refuses pushes and Running returns, for a restart to repair the
// WAL. The caller holds appendMu.
func (h *tenantHead) failLocked(err error) {
	if h.walErr != nil {
		return
	}
	h.walErr = err
	h.metrics.walFailures.Inc()
	select {
	case h.failures <- fmt.Errorf("tenant %s: %w", h.id, err):
	default: // One failure is enough to stop Running.
	}
}
