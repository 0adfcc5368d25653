package ingester

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
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
)

// walPageSize is the page size of tsdb/wlog: a segment size must be a
// multiple of it.
const walPageSize = 32 * 1024

// Config is the process configuration of the ingester. Defaults are set in
// one place: RegisterFlagsWithPrefix.
type Config struct {
	// Dir is the data directory the ingester owns: one directory per tenant
	// under Dir/tenants, each with its WAL and its chunk store.
	Dir string `yaml:"storage_path"`
	// WALSegmentSize is the size of a WAL segment file, in bytes, a multiple
	// of 32 KiB.
	WALSegmentSize int `yaml:"wal_segment_size" category:"advanced"`
	// WALSyncPeriod is how often the WAL segment being written is fsynced,
	// bounding what a power loss (not a process crash) can lose. 0 fsyncs
	// before every Push returns.
	WALSyncPeriod time.Duration `yaml:"wal_sync_period"`
	// FlushPeriod is how often finished chunks are written to the chunk store.
	FlushPeriod time.Duration `yaml:"flush_period" category:"advanced"`
	// MaxChunkIdle is how long an open chunk may go without a sample before it
	// is cut and persisted. It is also how long a series with nothing in
	// memory stays in the head before it is removed at a WAL truncation.
	MaxChunkIdle time.Duration `yaml:"max_chunk_idle" category:"advanced"`
	// WALTruncatePeriod is how often the WAL is checkpointed and truncated.
	WALTruncatePeriod time.Duration `yaml:"wal_truncate_period" category:"advanced"`
	// WALCompression compresses WAL records with snappy.
	WALCompression bool `yaml:"wal_compression" category:"advanced"`
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
		"Data directory of the ingester: per tenant, its WAL and its chunk store, under <path>/tenants/<tenant>/.")
	f.IntVar(&c.WALSegmentSize, prefix+"ingester.wal-segment-size", wlog.DefaultSegmentSize,
		"Size of a WAL segment file, in bytes; a multiple of 32768.")
	f.DurationVar(&c.WALSyncPeriod, prefix+"ingester.wal-sync-period", time.Second,
		"How often the WAL segment being written is fsynced: a power loss (not a process crash) loses at most this much of acknowledged samples. 0 fsyncs before every push is acknowledged.")
	f.DurationVar(&c.FlushPeriod, prefix+"ingester.flush-period", 10*time.Second,
		"How often finished chunks are written to the chunk store.")
	f.DurationVar(&c.MaxChunkIdle, prefix+"ingester.max-chunk-idle", 30*time.Minute,
		"An open chunk of a series that got no sample for this long is cut and persisted; a series with nothing in memory for this long leaves the head at the next WAL truncation.")
	f.DurationVar(&c.WALTruncatePeriod, prefix+"ingester.wal-truncate-period", 15*time.Minute,
		"How often the WAL is checkpointed and truncated (after a flush).")
	f.BoolVar(&c.WALCompression, prefix+"ingester.wal-compression", true,
		"Compress WAL records with snappy.")
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

// Ingester holds the in-memory heads of every tenant, their WALs and chunk
// stores, and serves Push and the SeriesSource read API. All methods are
// safe for concurrent use. It implements service.Service: Starting replays
// every tenant's WAL, Running flushes and truncates, Stopping persists the
// finished chunks and closes everything.
type Ingester struct {
	arguspb.UnimplementedIngesterServer
	arguspb.UnimplementedSeriesSourceServer

	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	limiter seriesLimiter
	now     func() time.Time // time.Now; tests replace it before Starting

	// stateMu is held for reading by every Push for its whole duration, and
	// for writing to change state: Stopping therefore waits for the pushes in
	// flight, and no push starts after it.
	stateMu sync.RWMutex
	state   state // guarded by stateMu
	ready   atomic.Bool

	openMu    sync.Mutex // serializes opening tenants (I/O), never held with tenantsMu for writing
	tenantsMu sync.RWMutex
	tenants   map[string]*tenantHead // guarded by tenantsMu

	// failures receives WAL write failures, which make Running return (a
	// restart repairs the WAL). Buffered; senders never block.
	failures chan error

	tombstones tombstoneStore // the tenants' deletions (admin.go, tombstones.go)
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
		now:      time.Now,
		tenants:  map[string]*tenantHead{},
		failures: make(chan error, 1),
	}
	i.tombstones = newFileTombstones(i.tenantsDir())
	if deps.Registerer != nil {
		deps.Registerer.MustRegister(newLocalLimitCollector(i))
	}
	return i, nil
}

// Ready reports whether the ingester accepts pushes and queries: true once
// every WAL is replayed, false again once it is stopping.
func (i *Ingester) Ready() bool {
	return i.ready.Load()
}

func (i *Ingester) tenantsDir() string {
	return filepath.Join(i.cfg.Dir, "tenants")
}

// Starting opens every tenant directory under Dir/tenants and replays its
// WAL, logging progress. On error it closes what it opened.
func (i *Ingester) Starting(ctx context.Context) error {
	start := time.Now()
	if err := os.MkdirAll(i.tenantsDir(), 0o777); err != nil {
		return fmt.Errorf("create tenants dir: %w", err)
	}
	entries, err := os.ReadDir(i.tenantsDir())
	if err != nil {
		return fmt.Errorf("list tenants dir: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := tenant.Validate(e.Name()); err != nil {
			i.logger.Warn("skipping directory that is not a tenant", "dir", e.Name(), "err", err)
			continue
		}
		ids = append(ids, e.Name())
	}
	for n, id := range ids {
		i.logger.Info("opening tenant", "tenant", id, "tenant_index", n+1, "tenants", len(ids))
		if _, err := i.openTenant(ctx, id); err != nil {
			return errors.Join(fmt.Errorf("open tenant %s: %w", id, err), i.closeTenants())
		}
	}
	d := time.Since(start)
	i.metrics.replayDuration.Set(d.Seconds())
	i.logger.Info("wal replay done", "tenants", len(ids), "duration", d)

	i.stateMu.Lock()
	i.state = stateRunning
	i.stateMu.Unlock()
	i.ready.Store(true)
	return nil
}

// Running flushes finished chunks every FlushPeriod, checkpoints and
// truncates the WALs every WALTruncatePeriod and fsyncs them every
// WALSyncPeriod, until ctx is cancelled (it returns nil) or a WAL write
// fails (it returns the error: a restart repairs the WAL).
func (i *Ingester) Running(ctx context.Context) error {
	syncDone := make(chan struct{})
	defer func() { <-syncDone }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // Before the wait above: defers run last in, first out.
	go func() {
		defer close(syncDone)
		i.syncLoop(ctx)
	}()

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
		case <-truncate.C:
			i.truncateAll(ctx)
		case err := <-i.failures:
			return fmt.Errorf("ingester wal failed: %w", err)
		}
	}
}

// syncLoop fsyncs every tenant's WAL every WALSyncPeriod until ctx is done.
// It runs apart from the flush loop so that a slow flush never stretches the
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
			for _, h := range i.tenantList() {
				h.syncWAL()
			}
		}
	}
}

// Stopping refuses new pushes, waits for those in flight, persists every
// finished chunk (open chunks stay in the WAL for the next start) until ctx
// expires, then closes every WAL and chunk store.
func (i *Ingester) Stopping(ctx context.Context) error {
	i.ready.Store(false)
	i.stateMu.Lock()
	i.state = stateStopping
	i.stateMu.Unlock()

	var errs []error
	for _, h := range i.tenantList() {
		if err := h.flush(ctx, keepOpenChunks); err != nil {
			errs = append(errs, fmt.Errorf("flush tenant %s: %w", h.id, err))
		}
	}
	errs = append(errs, i.closeTenants())
	return errors.Join(errs...)
}

// closeTenants closes every tenant's WAL and chunk store.
func (i *Ingester) closeTenants() error {
	i.tenantsMu.Lock()
	heads := i.tenants
	i.tenants = map[string]*tenantHead{}
	i.tenantsMu.Unlock()
	var errs []error
	for _, h := range heads {
		errs = append(errs, h.close())
	}
	i.metrics.tenants.Set(0)
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

// getOrOpenTenant returns the head of id, opening (creating) it if needed.
func (i *Ingester) getOrOpenTenant(ctx context.Context, id string) (*tenantHead, error) {
	if h := i.getTenant(id); h != nil {
		return h, nil
	}
	return i.openTenant(ctx, id)
}

// openTenant opens the head of id, replaying its WAL, unless it is open.
func (i *Ingester) openTenant(ctx context.Context, id string) (*tenantHead, error) {
	i.openMu.Lock()
	defer i.openMu.Unlock()
	if h := i.getTenant(id); h != nil {
		return h, nil
	}
	h, err := openTenantHead(ctx, tenantOptions{
		id:        id,
		dir:       filepath.Join(i.tenantsDir(), id),
		cfg:       &i.cfg,
		logger:    i.logger.With("tenant", id),
		metrics:   i.metrics,
		limiter:   &i.limiter,
		now:       i.now,
		failures:  i.failures,
		deletions: i.tombstones,
	})
	if err != nil {
		return nil, err
	}
	i.tenantsMu.Lock()
	i.tenants[id] = h
	n := len(i.tenants)
	i.tenantsMu.Unlock()
	i.metrics.tenants.Set(float64(n))
	return h, nil
}

// flushAll flushes every tenant; failures are logged and counted (the
// chunks stay in memory and in the WAL, and the next flush retries them).
func (i *Ingester) flushAll(ctx context.Context, idle idlePolicy) {
	for _, h := range i.tenantList() {
		if err := h.flush(ctx, idle); err != nil && ctx.Err() == nil {
			i.logger.Error("flush failed, chunks kept in memory and retried", "tenant", h.id, "err", err,
				"see_metric", "argus_ingester_flush_failures_total")
		}
	}
}

// truncateAll checkpoints and truncates every tenant's WAL; failures are
// logged and counted, and the next period retries.
func (i *Ingester) truncateAll(ctx context.Context) {
	for _, h := range i.tenantList() {
		if err := h.truncateWAL(ctx); err != nil && ctx.Err() == nil {
			i.metrics.walTruncations.WithLabelValues(truncateOutcomeErr).Inc()
			i.logger.Error("wal truncation failed", "tenant", h.id, "err", err)
		}
	}
}
