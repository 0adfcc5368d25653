package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// This file is the partitioned, multi-tenant store (format 2) that replaces
// one ChunkStore file per tenant: its files, its lifecycle and its writes.
// Reads are in db_read.go, compaction, retention and deletion in
// db_compact.go, tombstones in db_meta.go. DESIGN.md argues the design and
// doc.go documents the layout.

// ErrNotImplemented was returned by DB before its bodies were written; no
// method returns it any more.
var ErrNotImplemented = errors.New("not implemented yet")

// ErrInvalidTombstone means a tombstone has no matcher or an empty range.
var ErrInvalidTombstone = errors.New("invalid tombstone")

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
	// SealStep and SealIdle say when Compact seals the level-0 file of a
	// window that has not ended (an early seal, into a level-1 part of the
	// window), so that the newest window does not keep its data in the
	// least dense format until it ends (DESIGN.md, "Sealing the newest
	// window early"): once the seal watermark (Compact's sealBefore) is
	// SealStep into the window past its start or its last early seal, or
	// once no Append has written to the file for SealIdle. 0 means
	// PartitionRange/4 and 1 minute; a negative value turns the trigger
	// off.
	SealStep, SealIdle time.Duration
	// BlobCache, if not nil, keeps the decompressed chunk blobs that
	// Select reads from sealed parts (NewBlobCache). It may be shared by
	// several DBs. Nil decompresses every blob a read needs.
	BlobCache *BlobCache

	// testHook, if set, is called after each durable step of a flush, a
	// compaction, a retention pass or a deletion, named like
	// "compact:written L1_..."; an error aborts the operation there, as a
	// crash would.
	testHook func(step string) error
}

// File names in the directory of a DB.
const (
	metaFileName = "meta.db"
	// tmpSuffix marks a file being written; OpenDB deletes them.
	tmpSuffix = ".tmp"
	// partitionExt ends the name of every partition file.
	partitionExt = ".db"
)

// partition is one partition file of the DB.
type partition struct {
	name       string // file name: L<level>_<minT>_<maxT>_<seq>.db
	level      int
	minT, maxT int64 // the window it covers, inclusive
	seq        uint64
	r          partitionReader
	l0         *boltPartition // the same file when level is 0, else nil
}

// hasTenant reports whether p holds data of tenant, without listing the
// tenants of a level-0 file.
func (p *partition) hasTenant(tenant string) bool {
	if p.l0 != nil {
		return p.l0.hasTenant(tenant)
	}
	_, ok := slices.BinarySearch(p.r.Tenants(), tenant)
	return ok
}

// partitionReader is what reads and merges need of a partition file, level
// 0 (boltPartition) or sealed (part).
type partitionReader interface {
	Tenants() []string
	Series(tenant string, fn func(Series) error) error
	Select(tenant string, mint, maxt int64, opts SelectOptions, ms []*labels.Matcher) ([]Series, error)
	LabelNames(tenant string, ms []*labels.Matcher) ([]string, error)
	LabelValues(tenant, name string, ms []*labels.Matcher) ([]string, error)
	LastTime(tenant string, lbls labels.Labels) (int64, bool, error)
	Stats(tenant string) (TenantPartitionStats, error)
	Close() error
}

// partitionName returns the file name of a partition.
func partitionName(level int, minT, maxT int64, seq uint64) string {
	return fmt.Sprintf("L%d_%d_%d_%08d%s", level, minT, maxT, seq, partitionExt)
}

// parsePartitionName parses a partition file name, and false if name is
// not one.
func parsePartitionName(name string) (p partition, ok bool) {
	base, found := strings.CutSuffix(name, partitionExt)
	if !found || !strings.HasPrefix(base, "L") {
		return p, false
	}
	f := strings.Split(base[1:], "_")
	if len(f) != 4 {
		return p, false
	}
	level, err1 := strconv.Atoi(f[0])
	minT, err2 := strconv.ParseInt(f[1], 10, 64)
	maxT, err3 := strconv.ParseInt(f[2], 10, 64)
	seq, err4 := strconv.ParseUint(f[3], 10, 64)
	if errors.Join(err1, err2, err3, err4) != nil || level < 0 || minT > maxT {
		return p, false
	}
	return partition{name: name, level: level, minT: minT, maxT: maxT, seq: seq}, true
}

// DB is the persistent store of one ingester: the chunks of every tenant,
// in time partitions shared by the tenants (the tenant is part of every
// key), so that the open files do not grow with the number of tenants and
// dropping old data is deleting files. All methods are safe for concurrent
// use. Times are Unix milliseconds, ranges inclusive.
//
// Lock order: maintMu, then appendMu, then mu. Reads hold mu for reading
// for their whole duration, so a partition is never closed under a read.
type DB struct {
	dir    string
	opts   DBOptions
	logger *slog.Logger
	meta   *bbolt.DB // meta.db: tombstones and pending tenant deletions

	// maintMu serializes Compact, ApplyRetention, CleanTombstones and
	// DeleteTenant, which replace partitions.
	maintMu sync.Mutex
	// appendMu serializes Append and the in-place changes of level-0 files,
	// so that an Append's validation and write see the same files.
	appendMu sync.Mutex

	mu       sync.RWMutex
	closed   bool                        // guarded by mu
	parts    []*partition                // guarded by mu; sorted by minT, level, seq
	writable map[int64]*partition        // guarded by mu; window start -> level-0 file appended to
	nextSeq  uint64                      // guarded by mu
	tombs    map[string][]tombstoneEntry // guarded by mu; tenant -> tombstones in force
	cutoffs  map[string]int64            // guarded by mu; tenant -> retention cut-off
	deleted  map[string]deletion         // guarded by mu; tenant -> deletion in progress

	// sealedUpTo is, per window start, the sealBefore of the window's last
	// early seal (Compact); guarded by maintMu. Lost on restart, which
	// costs at most one early seal sooner than SealStep.
	sealedUpTo map[int64]int64
}

// OpenDB opens or creates the store under dir (created if missing). It
// removes what a crash left half-written (temporary partitions, sources of
// a compaction whose output is complete) before it returns.
func OpenDB(dir string, opts DBOptions) (*DB, error) {
	if opts.PartitionRange <= 0 {
		opts.PartitionRange = 2 * time.Hour
	}
	if opts.CompactedRange <= 0 {
		opts.CompactedRange = 24 * time.Hour
	}
	if opts.CompactedRange%opts.PartitionRange != 0 || opts.PartitionRange%time.Millisecond != 0 {
		return nil, fmt.Errorf("open db %s: compacted range %s is not a multiple of partition range %s", dir, opts.CompactedRange, opts.PartitionRange)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SealStep == 0 {
		opts.SealStep = opts.PartitionRange / 4
	}
	if opts.SealIdle == 0 {
		opts.SealIdle = time.Minute
	}
	if opts.testHook == nil {
		opts.testHook = failpointFromEnv() // nil unless ARGUS_FAILPOINT is set
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open db %s: %w", dir, err)
	}
	db := &DB{dir: dir, opts: opts, logger: logger, writable: map[int64]*partition{},
		cutoffs: map[string]int64{}, nextSeq: 1, sealedUpTo: map[int64]int64{}}
	if err := db.openMeta(); err != nil {
		return nil, fmt.Errorf("open db %s: %w", dir, err)
	}
	if err := db.openPartitions(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open db %s: %w", dir, err)
	}
	if err := db.redoTenantDeletions(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open db %s: %w", dir, err)
	}
	return db, nil
}

// openPartitions removes temporary files and the sources of complete
// outputs, then opens every partition file.
func (db *DB) openPartitions() error {
	entries, err := os.ReadDir(db.dir)
	if err != nil {
		return err
	}
	found := map[string]partition{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			db.logger.Info("removing a temporary file left by a crash", "file", name)
			if err := os.RemoveAll(filepath.Join(db.dir, name)); err != nil {
				return err
			}
			continue
		}
		if p, ok := parsePartitionName(name); ok {
			found[name] = p
			db.nextSeq = max(db.nextSeq, p.seq+1)
		}
	}
	man, err := db.readManifest()
	if err != nil {
		return err
	}
	for name := range man { // a missing file's name is not reused
		if p, ok := parsePartitionName(name); ok {
			db.nextSeq = max(db.nextSeq, p.seq+1)
		}
	}
	if err := db.finishDrops(man, found); err != nil {
		return err
	}
	replaced, err := db.openSealed(found, man)
	if err != nil {
		return err
	}
	for _, name := range replaced {
		db.logger.Info("removing a partition replaced before a crash", "file", name)
		if err := os.Remove(filepath.Join(db.dir, name)); err != nil {
			return err
		}
	}
	if !db.opts.NoSync && len(replaced) > 0 {
		if err := syncDir(db.dir); err != nil {
			return err
		}
	}
	if err := db.settleManifest(man, found, replaced); err != nil {
		return err
	}
	for name, p := range found {
		if p.level != 0 {
			continue
		}
		f, err := openBoltPartition(filepath.Join(db.dir, name), false, db.opts.NoSync)
		if err != nil {
			return err
		}
		p.r, p.l0 = f, f
		p.l0.written.Store(db.opts.Now().UnixNano())
		db.addPartition(&p)
		if w := db.writable[p.minT]; w == nil || w.seq < p.seq {
			db.writable[p.minT] = &p
		}
	}
	return nil
}

// openSealed opens the sealed partitions of found and returns the files
// that complete outputs replace (removed from found, closed if opened).
func (db *DB) openSealed(found map[string]partition, man map[string]manifestEntry) ([]string, error) {
	sources := map[string]bool{}
	opened := map[string]*part{}
	for name, p := range found {
		if p.level == 0 {
			continue
		}
		sp, err := openPart(filepath.Join(db.dir, name))
		if err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
			return nil, err
		}
		sp.blobs = db.opts.BlobCache
		opened[name] = sp
		for _, s := range sp.Meta().Sources {
			sources[s] = true
		}
	}
	var replaced []string
	for name := range sources {
		if _, ok := found[name]; !ok {
			continue
		}
		replaced = append(replaced, name)
		delete(found, name)
		if o := opened[name]; o != nil {
			_ = o.Close()
			delete(opened, name)
		}
	}
	slices.Sort(replaced)
	if man != nil {
		if err := db.adoptOutputs(man, found, opened, replaced); err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
			return nil, err
		}
	}
	for name, sp := range opened {
		p := found[name]
		p.r = sp
		db.addPartition(&p)
	}
	return replaced, nil
}

// addPartition inserts p into db.parts in order. Callers hold mu or own db.
func (db *DB) addPartition(p *partition) {
	i, _ := slices.BinarySearchFunc(db.parts, p, comparePartitions)
	db.parts = slices.Insert(db.parts, i, p)
}

// comparePartitions orders partitions by start, level, then sequence.
func comparePartitions(a, b *partition) int {
	switch {
	case a.minT != b.minT:
		return cmpInt64(a.minT, b.minT)
	case a.level != b.level:
		return a.level - b.level
	default:
		return cmpInt64(int64(a.seq), int64(b.seq))
	}
}

// Close closes every partition. It is idempotent. It waits for running
// reads, appends and maintenance (Compact, ApplyRetention, CleanTombstones,
// DeleteTenant: cancel their context to stop them sooner); later calls
// return ErrClosed.
func (db *DB) Close() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	var errs []error
	for _, p := range db.parts {
		errs = append(errs, p.r.Close())
	}
	db.parts, db.writable = nil, nil
	if db.meta != nil {
		errs = append(errs, db.meta.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close db %s: %w", db.dir, err)
	}
	return nil
}

// isClosed reports whether Close was called.
func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}

// step calls the test hook, if any.
func (db *DB) step(format string, args ...any) error {
	if db.opts.testHook == nil {
		return nil
	}
	return db.opts.testHook(fmt.Sprintf(format, args...))
}

// windowOf returns the start of the partition window holding t.
func (db *DB) windowOf(t int64) int64 {
	r := db.opts.PartitionRange.Milliseconds()
	w := t / r * r
	if t < 0 && t%r != 0 {
		w -= r
	}
	return w
}

// Append writes the chunks of every series of batch for tenant, each chunk
// into the partition of its time range (a chunk must not cross a
// PartitionRange boundary: ErrInvalidChunk). A series' chunks must be newer
// than those stored in the partitions of their window (ErrOutOfOrderChunk).
// It returns after the write is durable (unless NoSync). Validation errors
// reject the whole batch and change nothing. A batch spanning windows is
// written one window at a time: a crash in between leaves the earlier
// windows written, which the caller's replay skips through LastTime.
func (db *DB) Append(tenant string, batch []Series) error {
	if tenant == "" {
		return fmt.Errorf("%w: empty tenant", ErrInvalidLabels)
	}
	windows, err := db.splitByWindow(batch)
	if err != nil || len(windows) == 0 {
		return err
	}
	starts := make([]int64, 0, len(windows))
	for w := range windows {
		starts = append(starts, w)
	}
	slices.Sort(starts)
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	if err := db.precheck(tenant, windows, len(starts) > 1); err != nil {
		return err
	}
	for _, w := range starts {
		p, err := db.writableFor(w)
		if err != nil {
			return err
		}
		if err := db.appendTo(p, tenant, windows[w]); err != nil {
			return err
		}
		if err := db.step("append:committed %s", p.name); err != nil {
			return err
		}
	}
	return nil
}

// splitByWindow validates batch and splits it by partition window.
func (db *DB) splitByWindow(batch []Series) (map[int64][]Series, error) {
	out := map[int64][]Series{}
	r := db.opts.PartitionRange.Milliseconds()
	for i := range batch {
		sr := &batch[i]
		// Labels are validated by the level-0 transaction, or by precheck
		// when the batch spans windows.
		if err := validateChunks(sr); err != nil {
			return nil, err
		}
		for j := 0; j < len(sr.Chunks); {
			w := db.windowOf(sr.Chunks[j].MinTime)
			k := j
			for k < len(sr.Chunks) && sr.Chunks[k].MinTime < w+r {
				if sr.Chunks[k].MaxTime >= w+r {
					return nil, invalidChunkError{series: sr.Labels.String(), reason: fmt.Sprintf(
						"chunk [%d, %d] crosses the partition boundary %d", sr.Chunks[k].MinTime, sr.Chunks[k].MaxTime, w+r)}
				}
				k++
			}
			out[w] = append(out[w], Series{Labels: sr.Labels, Chunks: sr.Chunks[j:k]})
			j = k
		}
	}
	return out, nil
}

// precheck checks the order of the batch against what the partitions of
// its windows hold, unless one level-0 transaction will check it alone (a
// single window without sealed partitions). Callers hold appendMu.
func (db *DB) precheck(tenant string, windows map[int64][]Series, multi bool) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	r := db.opts.PartitionRange.Milliseconds()
	for w, series := range windows {
		ps := db.overlapping(w, w+r-1)
		sealed := slices.ContainsFunc(ps, func(p *partition) bool { return p.level > 0 })
		if !multi && !sealed {
			continue
		}
		var skip *partition
		if !multi {
			skip = db.writable[w] // the level-0 transaction checks its own file
		}
		if err := db.precheckWindow(tenant, series, ps, skip); err != nil {
			return err
		}
	}
	return nil
}

// precheckWindow checks one window's series against its partitions ps
// (but skip), and returns the error of the first invalid or out-of-order
// series in batch order, the out-of-order one against the first partition
// in ps that holds a newer chunk: what a check series by series, partition
// by partition, returns. Parts are read once per batch (part.LastTimes);
// a read error is returned whichever series it concerns. Callers hold mu.
func (db *DB) precheckWindow(tenant string, series []Series, ps []*partition, skip *partition) error {
	var (
		invalid error
		scratch []byte
	)
	for i, sr := range series {
		var err error
		if scratch, err = appendLabels(scratch[:0], sr.Labels); err != nil {
			invalid, series = err, series[:i] // only earlier series can come first
			break
		}
	}
	o := orderCheck{series: series, first: len(series)}
	for _, p := range ps {
		if p == skip || db.hidden(p, tenant) {
			continue
		}
		var err error
		if sp, ok := p.r.(*part); ok {
			err = o.checkPart(sp, tenant)
		} else {
			err = o.checkEach(p.r, tenant)
		}
		if err != nil {
			return err
		}
	}
	if o.first < len(series) {
		return o.err
	}
	return invalid
}

// orderCheck finds the first series of a batch (in batch order) whose
// first chunk is not after what a partition holds.
type orderCheck struct {
	series []Series
	first  int // the first out-of-order series so far, len(series) if none
	err    outOfOrderChunkError
}

// found records that series i is out of order against a chunk ending at
// t, unless an earlier series (or i itself, against an earlier partition)
// already is.
func (o *orderCheck) found(i int, t int64) {
	if i < o.first {
		sr := &o.series[i]
		o.first = i
		o.err = outOfOrderChunkError{series: sr.Labels.String(), minTime: sr.Chunks[0].MinTime, prevMaxTime: t, stored: true}
	}
}

// checkPart looks up, in one walk of the part, the series before o.first
// that its header does not show to be newer than all it holds.
func (o *orderCheck) checkPart(p *part, tenant string) error {
	var (
		idx  []int
		lbls []labels.Labels
	)
	for i := range o.series[:o.first] {
		if !p.newerThanTenant(tenant, o.series[i].Chunks[0].MinTime) { // else no lookup: the common case after an early seal
			idx = append(idx, i)
			lbls = append(lbls, o.series[i].Labels)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	last, ok := make([]int64, len(idx)), make([]bool, len(idx))
	if err := p.LastTimes(tenant, lbls, last, ok); err != nil {
		return err
	}
	for k, i := range idx {
		if ok[k] && o.series[i].Chunks[0].MinTime <= last[k] {
			o.found(i, last[k])
			break
		}
	}
	return nil
}

// checkEach looks up the series before o.first one by one (a level-0
// file: one B+tree search each).
func (o *orderCheck) checkEach(r partitionReader, tenant string) error {
	for i := range o.series[:o.first] {
		sr := &o.series[i]
		t, ok, err := r.LastTime(tenant, sr.Labels)
		if err != nil {
			return err
		}
		if ok && sr.Chunks[0].MinTime <= t {
			o.found(i, t)
			break
		}
	}
	return nil
}

// writableFor returns the level-0 partition of window w, creating its file
// if there is none. Callers hold appendMu.
func (db *DB) writableFor(w int64) (*partition, error) {
	db.mu.RLock()
	p, closed := db.writable[w], db.closed
	db.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil {
		return p, nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	np := &partition{level: 0, minT: w, maxT: w + db.opts.PartitionRange.Milliseconds() - 1, seq: db.nextSeq}
	np.name = partitionName(0, np.minT, np.maxT, np.seq)
	path := filepath.Join(db.dir, np.name)
	if err := createBoltPartition(path, db.opts.NoSync); err != nil {
		return nil, err
	}
	db.nextSeq++
	if err := db.step("append:file %s", np.name); err != nil {
		return nil, err
	}
	if err := db.recordPartitions([]*partition{np}, nil); err != nil {
		return nil, err
	}
	f, err := openBoltPartition(path, false, db.opts.NoSync)
	if err != nil {
		return nil, err
	}
	np.r, np.l0 = f, f
	np.l0.written.Store(db.opts.Now().UnixNano())
	db.addPartition(np)
	db.writable[w] = np
	return np, db.step("append:created %s", np.name)
}

// appendTo writes series to the level-0 partition p.
func (db *DB) appendTo(p *partition, tenant string, series []Series) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	defer p.l0.written.Store(db.opts.Now().UnixNano())
	return p.l0.Append(tenant, series)
}

// overlapping returns the partitions overlapping [mint, maxt], oldest
// first. Callers hold mu.
func (db *DB) overlapping(mint, maxt int64) []*partition {
	var out []*partition
	for _, p := range db.parts {
		if p.minT <= maxt && p.maxT >= mint {
			out = append(out, p)
		}
	}
	return out
}

// hidden reports whether tenant's data in p is deleted by a tenant deletion
// in progress. Callers hold mu.
func (db *DB) hidden(p *partition, tenant string) bool {
	d, ok := db.deleted[tenant]
	return ok && p.level > 0 && p.seq <= d.seq
}

// filterFor returns what reads of tenant drop. Callers hold mu.
func (db *DB) filterFor(tenant string) *tenantFilter {
	f := &tenantFilter{cutoff: math.MinInt64}
	if c, ok := db.cutoffs[tenant]; ok {
		f.cutoff = c
	}
	for _, t := range db.tombs[tenant] {
		f.tombstones = append(f.tombstones, t.t)
	}
	return f
}
