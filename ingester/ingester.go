package ingester

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/argus-tsdb/argus/internal/service"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// walPageSize is the page size of tsdb/wlog: a segment size must be a
// multiple of it.
const walPageSize = 32 * 1024

// Config is the process configuration of the ingester. Defaults are set in
// one place: RegisterFlagsWithPrefix.
type Config struct {
	// Dir is the data directory the ingester owns: the WAL of every tenant
	// under Dir/wal and the DB of every tenant under Dir/db.
	Dir string `yaml:"storage_path"`
	// WALSegmentSize is the size of a WAL segment file, in bytes, a multiple
	// of 32 KiB.
	WALSegmentSize int `yaml:"wal_segment_size" category:"advanced"`
	// WALSyncPeriod is how often the WAL segment being written is fsynced,
	// bounding what a power loss (not a process crash) can lose. 0 fsyncs
	// before every Push returns.
	WALSyncPeriod time.Duration `yaml:"wal_sync_period"`
	// FlushPeriod is how often finished chunks are written to the DB, and how
	// often the DB is compacted.
	FlushPeriod time.Duration `yaml:"flush_period" category:"advanced"`
	// MaxChunkIdle is how long an open chunk may go without a sample before it
	// is cut and persisted. It is also how long a series with nothing in
	// memory stays in the head before it is removed at a WAL truncation.
	MaxChunkIdle time.Duration `yaml:"max_chunk_idle" category:"advanced"`
	// WALTruncatePeriod is how often the WAL is checkpointed and truncated.
	WALTruncatePeriod time.Duration `yaml:"wal_truncate_period" category:"advanced"`
	// WALCompression compresses WAL records with snappy.
	WALCompression bool `yaml:"wal_compression" category:"advanced"`
	// RetentionSize bounds the bytes of the DB: past it the oldest
	// partitions are deleted. 0: no bound.
	RetentionSize int64 `yaml:"retention_size"`
	// PersistedBlobCacheSize bounds the bytes of decompressed chunk blobs of
	// sealed partitions kept for reads (storage.BlobCache). 0: no cache.
	PersistedBlobCacheSize int64 `yaml:"persisted_blob_cache_size" category:"advanced"`
	// TenantIdleTimeout is how long a tenant with no series in memory may go
	// without a push or a query before its head is closed. 0: never.
	TenantIdleTimeout time.Duration `yaml:"tenant_idle_timeout" category:"advanced"`
	// InstanceLimits bound the pushes in flight and the series of the whole
	// ingester.
	InstanceLimits InstanceLimits `yaml:"instance_limits"`
}

// RegisterFlags registers the flags of c with their defaults on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the flags of c, each name prefixed with
// prefix, with their defaults on f. The data directory is -storage.path, not
// -ingester.*, because it is the one data directory of the process, as in
// Prometheus; the ingester owns it.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Dir, prefix+"storage.path", "./data",
		"Data directory of the ingester: the WAL of every tenant under <path>/wal/ and their persisted chunks under <path>/db/.")
	f.IntVar(&c.WALSegmentSize, prefix+"ingester.wal-segment-size", wlog.DefaultSegmentSize,
		"Size of a WAL segment file, in bytes; a multiple of 32768.")
	f.DurationVar(&c.WALSyncPeriod, prefix+"ingester.wal-sync-period", time.Second,
		"How often the WAL segment being written is fsynced: a power loss (not a process crash) loses at most this much of acknowledged samples. 0 fsyncs before every push is acknowledged.")
	f.DurationVar(&c.FlushPeriod, prefix+"ingester.flush-period", 10*time.Second,
		"How often finished chunks are written to the DB, and how often the DB seals and merges its partitions.")
	f.DurationVar(&c.MaxChunkIdle, prefix+"ingester.max-chunk-idle", 30*time.Minute,
		"An open chunk of a series that got no sample for this long is cut and persisted; a series with nothing in memory for this long leaves the head at the next WAL truncation.")
	f.DurationVar(&c.WALTruncatePeriod, prefix+"ingester.wal-truncate-period", 15*time.Minute,
		"Longest time between two WAL checkpoints and truncations (each after a flush). The WAL is truncated sooner once its segments hold more than -ingester.wal-segment-size and twice the last checkpoint, and at a clean stop.")
	f.BoolVar(&c.WALCompression, prefix+"ingester.wal-compression", true,
		"Compress WAL records with snappy.")
	f.Int64Var(&c.RetentionSize, prefix+"ingester.retention-size", 0,
		"Most bytes the persisted chunks of every tenant may take on this ingester: past it the oldest partitions are deleted, whatever the tenants' retention periods. 0 means no bound.")
	f.Int64Var(&c.PersistedBlobCacheSize, prefix+"ingester.persisted-blob-cache-size", storage.DefaultBlobCacheSize,
		"Most bytes of decompressed chunk blobs of sealed partitions the ingester keeps for queries, shared by every tenant, so that queries reading the same recent series again do not decompress their blobs again. 0 disables the cache.")
	f.DurationVar(&c.TenantIdleTimeout, prefix+"ingester.tenant-idle-timeout", time.Hour,
		"A tenant with no series in memory (all flushed and removed) that got no push and no query for this long has its in-memory head closed and its per-tenant metrics deleted; its next push or query opens it again. 0 never closes heads.")
	f.IntVar(&c.InstanceLimits.MaxInflightPushRequests, prefix+"ingester.instance-limits.max-inflight-push-requests", 30000,
		"Most push requests the ingester handles at once, over every tenant; more are refused with a retryable error. 0 means no limit.")
	f.IntVar(&c.InstanceLimits.MaxSeries, prefix+"ingester.instance-limits.max-series", 0,
		"Most in-memory series the ingester holds, over every tenant; a push creating more is refused with a retryable error. 0 means no limit.")
}

// Validate reports every invalid setting of c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("-storage.path must not be empty"))
	}
	if c.WALSegmentSize <= 0 || c.WALSegmentSize%walPageSize != 0 {
		errs = append(errs, fmt.Errorf("-ingester.wal-segment-size must be a positive multiple of %d, got %d", walPageSize, c.WALSegmentSize))
	}
	if c.RetentionSize < 0 {
		errs = append(errs, fmt.Errorf("-ingester.retention-size must not be negative, got %d", c.RetentionSize))
	}
	if c.PersistedBlobCacheSize < 0 {
		errs = append(errs, fmt.Errorf("-ingester.persisted-blob-cache-size must not be negative, got %d", c.PersistedBlobCacheSize))
	}
	if c.TenantIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("-ingester.tenant-idle-timeout must not be negative, got %s", c.TenantIdleTimeout))
	}
	if c.InstanceLimits.MaxInflightPushRequests < 0 || c.InstanceLimits.MaxSeries < 0 {
		errs = append(errs, fmt.Errorf("-ingester.instance-limits.* must not be negative, got %+v", c.InstanceLimits))
	}
	if c.WALSyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("-ingester.wal-sync-period must not be negative, got %s", c.WALSyncPeriod))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"-ingester.flush-period", c.FlushPeriod},
		{"-ingester.max-chunk-idle", c.MaxChunkIdle},
		{"-ingester.wal-truncate-period", c.WALTruncatePeriod},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// Deps are the runtime dependencies of an Ingester.
type Deps struct {
	// Logger receives the ingester's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the ingester's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Limits gives each tenant's -ingester.max-global-series-per-user and
	// -ingester.max-global-series-per-metric, looked up again by every push
	// that creates a series (so a reload applies to the next push); nil
	// means no series limits.
	Limits TenantLimits
	// Ring gives the replication factor and the healthy ingesters, which
	// set this ingester's share of a global series limit; nil means one
	// ingester at replication factor 1 (the share is the global limit).
	Ring RingCounter
}

// state is the lifecycle state of an Ingester.
type state int32

const (
	stateNew state = iota
	stateRunning
	stateStopping
)

// Ingester holds the in-memory heads of every tenant, the WAL they share
// and the DB that persists their chunks, and serves Push and the
// SeriesSource read API. All methods are safe for concurrent use. It
// implements service.Service: Starting opens the DB and replays the WAL,
// Running flushes, truncates the WAL, compacts the DB and applies
// retention, Stopping persists the finished chunks and closes everything.
//
// # Locks
//
// In acquisition order: truncMu, openMu, then a tenant's locks (see
// tenantHead), tenantsMu and removedMu as leaves. stateMu is held for
// reading around a whole push.
type Ingester struct {
	arguspb.UnimplementedIngesterServer
	arguspb.UnimplementedSeriesSourceServer

	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	limiter seriesLimiter
	limits  TenantLimits     // nil: every tenant keeps its data for ever
	now     func() time.Time // time.Now; tests replace it before Starting

	// stateMu is held for reading by every Push for its whole duration, and
	// for writing to change state: Stopping therefore waits for the pushes in
	// flight, and no push starts after it.
	stateMu sync.RWMutex
	state   state // guarded by stateMu
	ready   atomic.Bool
	// stopping is closed by Stopping once no push runs or starts any more:
	// it ends the push streams (pushstream.go), which would otherwise hold
	// the gRPC server's graceful stop until every distributor hung up.
	stopping chan struct{}

	wal *sharedWAL
	db  chunkDB // set by Starting
	// blobs caches decompressed blobs of db's sealed parts; nil: none.
	blobs *storage.BlobCache
	// lastRef is the last series ref given out, over every tenant: refs are
	// unique in the shared WAL.
	lastRef atomic.Uint64
	// sealed is the sealBefore of the last compaction: no sample older than
	// it is appended any more (see compactDB).
	sealed atomic.Int64

	openMu    sync.Mutex // serializes opening tenants, never held with tenantsMu for writing
	tenantsMu sync.RWMutex
	tenants   map[string]*tenantHead // guarded by tenantsMu
	// tenantsPeak is the most tenants since the map was last made: a Go
	// map keeps its buckets when entries are deleted, so closeIdleTenants
	// makes a new one once it holds less than a quarter of that.
	tenantsPeak int // guarded by tenantsMu

	truncMu   sync.Mutex // serializes WAL truncations
	removedMu sync.Mutex
	removed   map[string]int64 // guarded by removedMu: every tenant's removedMaxT, as in removedMaxTFile

	// inflight counts the pushes in flight; instanceSeries the series of
	// every head (-ingester.instance-limits.*).
	inflight       inflightGuard
	instanceSeries atomic.Int64

	// failures receives WAL write failures, which make Running return (a
	// restart repairs the WAL). Buffered; senders never block.
	failures chan error
}

var (
	_ service.Service            = (*Ingester)(nil)
	_ arguspb.IngesterServer     = (*Ingester)(nil)
	_ arguspb.SeriesSourceServer = (*Ingester)(nil)
)

// New validates cfg and returns an Ingester. It does no I/O and starts no
// goroutine: Starting does.
func New(cfg Config, deps Deps) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid ingester config: %w", err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	i := &Ingester{
		cfg:      cfg,
		logger:   logger,
		metrics:  newMetrics(deps.Registerer),
		limiter:  seriesLimiter{limits: deps.Limits, ring: deps.Ring},
		limits:   deps.Limits,
		now:      time.Now,
		tenants:  map[string]*tenantHead{},
		removed:  map[string]int64{},
		failures: make(chan error, 1),
		stopping: make(chan struct{}),
		blobs:    storage.NewBlobCache(cfg.PersistedBlobCacheSize),
	}
	i.wal = &sharedWAL{dir: filepath.Join(cfg.Dir, walDirName), logger: logger, metrics: i.metrics, failures: i.failures,
		testStep: walFailpoint()}
	i.sealed.Store(math.MinInt64)
	i.inflight.max = int64(cfg.InstanceLimits.MaxInflightPushRequests)
	if deps.Registerer != nil {
		deps.Registerer.MustRegister(newLocalLimitCollector(i), newTenantCollector(i))
		if i.blobs != nil {
			deps.Registerer.MustRegister(i.blobs)
		}
	}
	return i, nil
}

// Ready reports whether the ingester accepts pushes and queries: true once
// the WAL is replayed, false again once it is stopping.
func (i *Ingester) Ready() bool {
	return i.ready.Load()
}

// retentionOf returns how long tenant's data is kept (0: for ever).
func (i *Ingester) retentionOf(tenant string) time.Duration {
	if i.limits == nil {
		return 0
	}
	return i.limits.For(tenant).RetentionPeriod
}

// oooWindowOf returns tenant's out-of-order time window (0: none).
func (i *Ingester) oooWindowOf(tenant string) time.Duration {
	if i.limits == nil {
		return 0
	}
	return i.limits.For(tenant).OutOfOrderTimeWindow
}

// openDB opens the ingester's DB under dir.
func openDB(dir string, now func() time.Time, logger *slog.Logger, blobs *storage.BlobCache) (chunkDB, error) {
	return storage.OpenDB(dir, storage.DBOptions{Now: now, Logger: logger, BlobCache: blobs})
}

// Starting opens the DB and replays the WAL into the tenant heads, logging
// progress. On error it closes what it opened. A data directory in the
// per-tenant layout of earlier versions is refused.
func (i *Ingester) Starting(ctx context.Context) error {
	start := time.Now()
	if err := checkLayout(i.cfg.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(i.cfg.Dir, 0o777); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	removed, err := readRemovedMaxT(i.cfg.Dir)
	if err != nil {
		return err
	}
	i.removed = removed
	db, err := openDB(filepath.Join(i.cfg.Dir, dbDir), i.now, i.logger.With("component", "db"), i.blobs)
	if err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	i.db = db
	if err := i.replayWAL(ctx); err != nil {
		return errors.Join(fmt.Errorf("replay wal: %w", err), i.closeTenants())
	}
	i.sealed.Store(i.sealBefore())
	// The DB forgets the retention cut-offs at a restart: set them before
	// the first read.
	if err := i.applyRetention(ctx); err != nil {
		return errors.Join(fmt.Errorf("apply retention: %w", err), i.closeTenants())
	}
	d := time.Since(start)
	i.metrics.replayDuration.Set(d.Seconds())
	i.logger.Info("wal replay done", "tenants", len(i.tenantList()), "duration", d)

	i.stateMu.Lock()
	i.state = stateRunning
	i.stateMu.Unlock()
	i.ready.Store(true)
	return nil
}

// checkLayout refuses a data directory written by a version that kept a
// WAL and a chunk store per tenant (under tenants/): its data would be
// silently ignored.
func checkLayout(dir string) error {
	old, err := filepath.Glob(filepath.Join(dir, "tenants", "*", "wal"))
	if err != nil {
		return err
	}
	stores, err := filepath.Glob(filepath.Join(dir, "tenants", "*", "chunks.db"))
	if err != nil {
		return err
	}
	if len(old)+len(stores) > 0 {
		return fmt.Errorf("data dir %s has the per-tenant layout of an earlier Argus (%s/tenants/<tenant>/wal and chunks.db), "+
			"which this version does not read: start it on an empty -storage.path, or stop it and move %s/tenants away "+
			"(its data will not be served)", dir, dir, dir)
	}
	return nil
}

// Running flushes finished chunks every FlushPeriod, checkpoints and
// truncates the WAL every WALTruncatePeriod, fsyncs it every WALSyncPeriod,
// and compacts the DB and applies retention in the background, until ctx is
// cancelled (it returns nil) or a WAL write fails (it returns the error: a
// restart repairs the WAL).
func (i *Ingester) Running(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // Before the wait above: defers run last in, first out.
	wg.Go(func() { i.syncLoop(ctx) })
	wg.Go(func() { i.dbLoop(ctx) })

	flush := time.NewTicker(i.cfg.FlushPeriod)
	defer flush.Stop()
	truncate := time.NewTicker(i.cfg.WALTruncatePeriod)
	defer truncate.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-flush.C:
			i.flushAll(ctx, cutIdleChunks)
			i.truncateWALIfDue(ctx)
		case <-truncate.C:
			if err := i.truncateWAL(ctx); err != nil && ctx.Err() == nil {
				i.metrics.walTruncations.WithLabelValues(truncateOutcomeErr).Inc()
				i.logger.Error("wal truncation failed", "err", err)
			}
		case err := <-i.failures:
			return fmt.Errorf("ingester wal failed: %w", err)
		}
	}
}

// syncLoop fsyncs the WAL every WALSyncPeriod until ctx is done. It runs
// apart from the flush loop so that a slow flush never stretches the
// power-loss window.
func (i *Ingester) syncLoop(ctx context.Context) {
	if i.cfg.WALSyncPeriod == 0 {
		return // Push fsyncs itself.
	}
	t := time.NewTicker(i.cfg.WALSyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			i.wal.sync()
		}
	}
}

// Stopping refuses new pushes, waits for those in flight, persists every
// finished chunk (open chunks stay in the WAL for the next start) until ctx
// expires, then closes the WAL and the DB.
func (i *Ingester) Stopping(ctx context.Context) error {
	i.ready.Store(false)
	i.stateMu.Lock()
	if i.state != stateStopping {
		close(i.stopping)
	}
	i.state = stateStopping
	i.stateMu.Unlock()

	var errs []error
	for _, h := range i.tenantList() {
		if err := h.flush(ctx, keepOpenChunks); err != nil {
			errs = append(errs, fmt.Errorf("flush tenant %s: %w", h.id, err))
		}
	}
	i.checkpointOnStop(ctx)
	errs = append(errs, i.closeTenants())
	return errors.Join(errs...)
}

// closeTenants closes every tenant head, the WAL and the DB.
func (i *Ingester) closeTenants() error {
	i.tenantsMu.Lock()
	heads := i.tenants
	i.tenants = map[string]*tenantHead{}
	i.tenantsMu.Unlock()
	for _, h := range heads {
		h.close()
	}
	i.metrics.tenants.Set(0)
	var errs []error
	if err := i.wal.close(); err != nil {
		errs = append(errs, fmt.Errorf("close wal: %w", err))
	}
	if i.db != nil {
		if err := i.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close db: %w", err))
		}
	}
	return errors.Join(errs...)
}

// tenantList returns the open tenant heads, sorted by tenant.
func (i *Ingester) tenantList() []*tenantHead {
	i.tenantsMu.RLock()
	hs := make([]*tenantHead, 0, len(i.tenants))
	for _, h := range i.tenants {
		hs = append(hs, h)
	}
	i.tenantsMu.RUnlock()
	slices.SortFunc(hs, func(a, b *tenantHead) int { return strings.Compare(a.id, b.id) })
	return hs
}

// getTenant returns the open head of id, or nil.
func (i *Ingester) getTenant(id string) *tenantHead {
	i.tenantsMu.RLock()
	defer i.tenantsMu.RUnlock()
	return i.tenants[id]
}

// getOrOpenTenant returns the head of id, creating it if needed. Creating a
// head does no I/O: a tenant has no file of its own.
func (i *Ingester) getOrOpenTenant(_ context.Context, id string) (*tenantHead, error) {
	if h := i.getTenant(id); h != nil {
		return h, nil
	}
	if err := tenant.Validate(id); err != nil {
		return nil, err
	}
	i.openMu.Lock()
	defer i.openMu.Unlock()
	if h := i.getTenant(id); h != nil {
		return h, nil
	}
	h := newTenantHead(tenantOptions{
		id:          id,
		cfg:         &i.cfg,
		logger:      i.logger.With("tenant", id),
		metrics:     i.metrics,
		limiter:     &i.limiter,
		now:         i.now,
		wal:         i.wal,
		store:       tenantStore{db: i.db, tenant: id},
		lastRef:     &i.lastRef,
		sealed:      &i.sealed,
		retention:   i.retentionOf,
		oooWindow:   i.oooWindowOf,
		removedMaxT: i.removedMaxTOf(id),

		instanceSeries: &i.instanceSeries,
		maxSeries:      i.cfg.InstanceLimits.MaxSeries,
	})
	i.tenantsMu.Lock()
	i.tenants[id] = h
	n := len(i.tenants)
	i.tenantsPeak = max(i.tenantsPeak, n)
	i.tenantsMu.Unlock()
	i.metrics.tenants.Set(float64(n))
	return h, nil
}

// readOnlyHead returns an empty head of a tenant that has no head here, so
// that reads serve its persisted data without creating a head for it.
func (i *Ingester) readOnlyHead(id string) *tenantHead {
	h := &tenantHead{id: id, now: i.now, store: tenantStore{db: i.db, tenant: id}, series: emptySeries, postings: newHeadPostings()}
	h.maxT.Store(math.MinInt64) // Empty: its span overlaps nothing.
	return h
}

// emptySeries is the series map of every read-only head, never written.
var emptySeries = newStripeSeries()

// flushAll flushes every tenant; failures are logged and counted (the
// chunks stay in memory and in the WAL, and the next flush retries them). A
// tenant whose flush fails is failed (its pushes are refused, so its memory
// stops growing) until one of its flushes succeeds.
func (i *Ingester) flushAll(ctx context.Context, idle idlePolicy) {
	for _, h := range i.tenantList() {
		err := h.flush(ctx, idle)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			i.logger.Error("flush failed, chunks kept in memory and retried", "tenant", h.id, "err", err,
				"see_metric", "argus_ingester_flush_failures_total")
		}
		h.setFailed(err)
	}
}
