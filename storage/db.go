package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// This file is the API of the partitioned, multi-tenant store (format 2) that
// replaces one ChunkStore file per tenant. Its bodies are filled in by the
// storage tier work; the signatures are what the ingester, the admin API and
// `argus tsdb` code against.

// ErrNotImplemented is returned by the parts of DB not written yet.
var ErrNotImplemented = errors.New("not implemented yet")

// DBOptions tune a DB.
type DBOptions struct {
	// NoSync skips fsyncs. Only for tests and benchmarks.
	NoSync bool
	// PartitionRange is the time range of a level-0 partition (a window that
	// flushes append to), aligned to multiples of it: 2h by default.
	PartitionRange time.Duration
	// CompactedRange is the range that closed partitions are merged into:
	// 24h by default. A multiple of PartitionRange.
	CompactedRange time.Duration
	// Now is the wall clock (time.Now if nil); retention is measured from it.
	Now func() time.Time
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// DB is the persistent store of one ingester: the chunks of every tenant,
// in time partitions shared by the tenants (the tenant is part of every
// key), so that the open files do not grow with the number of tenants and
// dropping old data is deleting files. All methods are safe for concurrent
// use. Times are Unix milliseconds, ranges inclusive.
type DB struct {
	dir  string
	opts DBOptions
}

// OpenDB opens or creates the store under dir (created if missing). It
// removes what a crash left half-written (temporary partitions, sources of
// a compaction whose output is complete) before it returns.
func OpenDB(dir string, opts DBOptions) (*DB, error) {
	return nil, ErrNotImplemented
}

// Close closes every partition. It is idempotent.
func (db *DB) Close() error { return nil }

// Append writes the chunks of every series of batch for tenant, each chunk
// into the partition of its time range (a chunk must not cross a
// PartitionRange boundary: ErrInvalidChunk). Within a partition a series'
// chunks must be newer than those stored (ErrOutOfOrderChunk). It returns
// after the write is durable (unless NoSync). Validation errors reject the
// whole batch and change nothing.
func (db *DB) Append(tenant string, batch []Series) error { return ErrNotImplemented }

// LastTime returns the max time of the newest persisted chunk of lbls, and
// false if there is none.
func (db *DB) LastTime(tenant string, lbls labels.Labels) (int64, bool, error) {
	return 0, false, ErrNotImplemented
}

// Select returns, sorted by labels, every series of tenant that matches all
// matchers and has a chunk overlapping [mint, maxt], with those chunks in
// time order, merged over partitions, tombstones and the tenant's retention
// applied. The result is owned by the caller.
func (db *DB) Select(tenant string, mint, maxt int64, opts SelectOptions, ms ...*labels.Matcher) ([]Series, error) {
	return nil, ErrNotImplemented
}

// LabelNames returns the sorted label names of tenant's series that match
// all matchers in the partitions overlapping [mint, maxt]. Without
// matchers it reads each partition's index only (a partition that overlaps
// the range contributes all its names, as a Prometheus block does).
func (db *DB) LabelNames(tenant string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return nil, ErrNotImplemented
}

// LabelValues returns the sorted values of name, as LabelNames does names.
func (db *DB) LabelValues(tenant, name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return nil, ErrNotImplemented
}

// Tombstone deletes the samples in [MinTime, MaxTime] of the series that
// match Matchers at read time, until compaction purges them for good.
type Tombstone struct {
	MinTime, MaxTime int64
	Matchers         []*labels.Matcher
}

// DeleteSeries records a durable tombstone for tenant; every read after it
// returns honours it.
func (db *DB) DeleteSeries(tenant string, t Tombstone) error { return ErrNotImplemented }

// Tombstones returns tenant's tombstones in force, for the ingester to apply
// to its in-memory head.
func (db *DB) Tombstones(tenant string) []Tombstone { return nil }

// CleanTombstones rewrites every partition holding deleted data without it.
// A tombstone is dropped once no partition and no sample newer than
// headMinT(tenant) can hold data it covers.
func (db *DB) CleanTombstones(ctx context.Context, headMinT func(tenant string) int64) error {
	return ErrNotImplemented
}

// DeleteTenant removes every persisted sample and tombstone of tenant.
func (db *DB) DeleteTenant(tenant string) error { return ErrNotImplemented }

// Compact seals partitions that ended before sealBefore (no flush will
// write to them again) into immutable ones and merges sealed ones into
// CompactedRange partitions, applying tombstones. Crash-safe at every step.
func (db *DB) Compact(ctx context.Context, sealBefore int64) error { return ErrNotImplemented }

// RetentionPolicy says how long each tenant's data is kept, and how many
// bytes the whole store may use (0: no bound; oldest partitions go first).
type RetentionPolicy struct {
	Period   func(tenant string) time.Duration
	MaxBytes int64
}

// ApplyRetention drops the data older than each tenant's retention period,
// deleting whole partition files where every tenant's period has passed,
// then the oldest partitions while the store is over MaxBytes.
func (db *DB) ApplyRetention(ctx context.Context, p RetentionPolicy) error { return ErrNotImplemented }

// PartitionInfo describes one partition file.
type PartitionInfo struct {
	Path             string
	MinTime, MaxTime int64
	Level            int // 0: written by flushes; 1+: immutable, compacted
	Bytes            int64
	Tenants          int
}

// TenantPartitionStats is one tenant's share of one partition.
type TenantPartitionStats struct {
	Partition        PartitionInfo
	Series, Chunks   int64
	Samples          int64
	Bytes            int64 // the tenant's chunk and index bytes in the partition, approximately
	MinTime, MaxTime int64
	Tombstones       int
}

// Tenants returns the tenants with persisted data, sorted.
func (db *DB) Tenants() ([]string, error) { return nil, ErrNotImplemented }

// Partitions returns every partition, oldest first.
func (db *DB) Partitions() []PartitionInfo { return nil }

// TenantStats returns tenant's share of each partition, oldest first.
func (db *DB) TenantStats(tenant string) ([]TenantPartitionStats, error) {
	return nil, ErrNotImplemented
}

// Check verifies every partition of the store under dir (closed, or open
// read-only by this call) and returns every inconsistency found, joined.
func CheckDB(dir string) error { return ErrNotImplemented }
