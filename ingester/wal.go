package ingester

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

// walDirName is the directory of the ingester's one WAL under -storage.path.
const walDirName = "wal"

// tenantLabel is the reserved label that carries the tenant of a series in
// its WAL series record (and only there): it is added when the record is
// written and removed at replay. Keeping the tenant inside the label set
// lets Prometheus's wlog.Checkpoint copy series records unchanged. Pushes
// of series that carry it are refused.
const tenantLabel = "__argus_tenant__"

// withTenant returns lset with tenantLabel set to tenant.
func withTenant(lset labels.Labels, tenant string) labels.Labels {
	b := labels.NewBuilder(lset)
	b.Set(tenantLabel, tenant)
	return b.Labels()
}

// withoutTenant returns lset without tenantLabel.
func withoutTenant(lset labels.Labels) labels.Labels {
	b := labels.NewBuilder(lset)
	b.Del(tenantLabel)
	return b.Labels()
}

// sharedWAL is the one write-ahead log of the ingester, written by every
// tenant. Each tenant serializes its own pushes (appendMu), so that the WAL
// holds every series' samples in the order its head accepted them; pushes
// of different tenants interleave.
//
// # Locks
//
// cutMu, then syncMu, then mu. A push holds cutMu for reading from its Log
// through its in-memory append; a truncation holds it for writing to start
// a new segment, so that every sample of the segments before the cut is in
// memory (or persisted) when the checkpoint reads the heads. mu serializes
// every call on the wlog.WL: WL.Sync reads the segment without the WL's own
// lock, and Log or NextSegment may switch it. syncMu serializes fsyncs, so
// that the pushes that log while one runs share the next (group commit).
//
// A push waits for its fsync after it left its tenant's appendMu and cutMu
// (tenantHead.appendBatch), so that the pushes of one tenant share fsyncs
// too, and a segment may have been switched between its Log and its fsync:
// wlog fsyncs a full segment in the background, so syncLocked fsyncs every
// segment written since the last fsync itself before it acknowledges.
type sharedWAL struct {
	dir     string
	logger  *slog.Logger
	metrics *metrics
	// failures receives the first write failure, which makes Running return
	// (a restart repairs the WAL). Buffered; senders never block.
	failures chan<- error

	cutMu  sync.RWMutex
	syncMu sync.Mutex
	synced uint64 // guarded by syncMu: the Log calls that the last fsync covered
	// syncedSeg, guarded by syncMu, is the segment the last fsync covered;
	// the segments before it are durable too.
	syncedSeg int
	mu        sync.Mutex
	wl        *wlog.WL // guarded by mu
	logged    uint64   // guarded by mu: Log calls so far
	dirty     bool     // guarded by mu: records written since the last fsync
	err       error    // guarded by mu: the first write or fsync failure

	// cpBytes and cpMint are the size and the mint of the last checkpoint
	// (0 and MinInt64 before the first of this run, or the replayed
	// checkpoint's size), for the size trigger. Guarded by the Ingester's
	// truncMu.
	cpBytes int64
	cpMint  int64
	// testStep, if set, is called at each step of a truncation.
	testStep func(truncStep)
}

// open opens the WAL for writing in a new segment, repairing corruption
// first if not nil.
func (w *sharedWAL) open(segmentSize int, compress bool, corruption *wlog.CorruptionErr) error {
	c := compression.None
	if compress {
		c = compression.Snappy
	}
	wl, err := wlog.NewSize(w.logger, nil, w.dir, segmentSize, c)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	if corruption != nil {
		w.metrics.walCorruptions.Inc()
		w.logger.Error("wal corrupted, dropping the records after the corruption", "segment", corruption.Segment,
			"offset", corruption.Offset, "err", corruption.Err)
		if err := wl.Repair(corruption); err != nil {
			return errors.Join(fmt.Errorf("repair wal: %w", err), wl.Close())
		}
	}
	_, last, err := wlog.Segments(w.dir)
	if err != nil {
		return errors.Join(fmt.Errorf("list wal segments: %w", err), wl.Close())
	}
	w.syncMu.Lock()
	w.syncedSeg = last // Replay read the older ones; they are not written again.
	w.syncMu.Unlock()
	w.mu.Lock()
	w.wl = wl
	w.mu.Unlock()
	return nil
}

// failed returns the WAL's failure, or nil.
func (w *sharedWAL) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("%w: %w", ErrWALFailed, w.err)
	}
	if w.wl == nil {
		return ErrNotReady
	}
	return nil
}

// log writes recs with one Log call, which hands them to the kernel before
// it returns, and returns the call's sequence number for syncTo. The caller
// holds cutMu for reading. An error means the records are not in the WAL.
func (w *sharedWAL) log(recs [][]byte) (seq uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, fmt.Errorf("%w: %w", ErrWALFailed, w.err)
	}
	if w.wl == nil {
		return 0, ErrNotReady
	}
	if err := w.wl.Log(recs...); err != nil {
		w.failLocked(err)
		return 0, fmt.Errorf("%w: %w", ErrWALWrite, err)
	}
	w.logged++
	w.dirty = true
	return w.logged, nil
}

// syncTo returns once an fsync that started after Log call seq succeeded.
// A push waits for the fsync in progress, then one fsync covers every push
// that logged meanwhile (group commit): with -ingester.wal-sync-period=0,
// concurrent pushes, of one tenant or many, cost one fsync per disk round
// trip, not each.
func (w *sharedWAL) syncTo(seq uint64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= seq {
		return nil
	}
	if err := w.syncLocked(); err != nil {
		return fmt.Errorf("%w: fsync: %w", ErrWALWrite, err)
	}
	return nil
}

// sync fsyncs the segment being written if records were written since the
// last fsync.
func (w *sharedWAL) sync() {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	_ = w.syncLocked() // A failure is recorded: pushes are refused and Running returns.
}

// syncLocked fsyncs the segment being written, if written since the last
// fsync, and records which Log calls it covered. The caller holds syncMu.
func (w *sharedWAL) syncLocked() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.wl == nil {
		return ErrNotReady
	}
	if !w.dirty {
		w.synced = w.logged
		return nil
	}
	last, err := w.syncSwitchedLocked()
	if err == nil {
		err = w.wl.Sync()
	}
	if err != nil {
		w.failLocked(fmt.Errorf("fsync wal: %w", err))
		return err
	}
	w.syncedSeg = last
	w.metrics.walFsyncs.Inc()
	w.dirty = false
	w.synced = w.logged
	return nil
}

// syncSwitchedLocked fsyncs the segments from the last fsync's up to the one
// being written, which wlog switched away from, and returns the index of
// the one being written. wlog fsyncs a segment it leaves in the background,
// and WL.Sync covers only the current one, so without this a push logged
// just before a switch could be acknowledged before its records are
// durable. An fsync through another descriptor of the file flushes the
// same pages. A segment already removed by a truncation is skipped: its
// records are in a checkpoint, fsynced before the removal. The caller
// holds syncMu and mu.
func (w *sharedWAL) syncSwitchedLocked() (last int, err error) {
	_, last, err = wlog.Segments(w.dir)
	if err != nil {
		return 0, err
	}
	for k := w.syncedSeg; k < last; k++ {
		f, err := os.OpenFile(wlog.SegmentName(w.dir, k), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
		w.metrics.walFsyncs.Inc()
	}
	return last, nil
}

// failLocked records a WAL failure: the WAL may now end with a torn record,
// and a record written after it would be lost at the replay's repair, so
// every push is refused and Running returns, for a restart to repair the
// WAL. The caller holds mu.
func (w *sharedWAL) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	w.metrics.walFailures.Inc()
	select {
	case w.failures <- err:
	default: // One failure is enough to stop Running.
	}
}

// cut starts a new segment once every push in flight has appended in
// memory, and returns the segments before it.
func (w *sharedWAL) cut() (first, last int, err error) {
	w.cutMu.Lock()
	defer w.cutMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.wl == nil {
		return 0, 0, errors.New("wal failed or closed")
	}
	if first, last, err = wlog.Segments(w.dir); err != nil {
		return 0, 0, err
	}
	_, err = w.wl.NextSegment()
	return first, last, err
}

// current returns the open WAL, or nil. Checkpoint and Truncate read only
// its directory and compression, so they need no lock.
func (w *sharedWAL) current() *wlog.WL {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wl
}

// close closes the WAL; later writes fail with ErrNotReady.
func (w *sharedWAL) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wl == nil {
		return nil
	}
	err := w.wl.Close()
	w.wl = nil
	return err
}

// replayStats count what a replay did.
type replayStats struct {
	series, samples, persisted, unknown, expired int
}

// replayRef is where replay routes the samples of one WAL ref.
type replayRef struct {
	h *tenantHead
	s *memSeries
	// persisted is the series' persisted max time when replay created it
	// (math.MinInt64: none): its WAL samples at or before it are persisted.
	persisted int64
}

// replayer routes WAL records to the tenant heads, opening them on their
// first series record.
type replayer struct {
	i      *Ingester
	refs   map[chunks.HeadSeriesRef]replayRef
	maxRef chunks.HeadSeriesRef
	st     replayStats
	nowMs  int64
	meta   metaReplay   // exemplars and metadata (wal_exemplar.go)
	ooo    [1]oooSample // scratch of replayOlder
}

// replayWAL loads the last checkpoint and every WAL segment after it into
// the tenant heads, then opens the WAL for writing (in a new segment). A
// corrupted segment is repaired: it is cut at the corruption and the later
// segments are deleted, losing what they held (counted and logged). A
// corrupted checkpoint fails the replay. See WAL.md.
func (i *Ingester) replayWAL(ctx context.Context) error {
	start := time.Now()
	dir := i.wal.dir
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create wal dir: %w", err)
	}
	if err := wlog.DeleteTempCheckpoints(i.logger, dir); err != nil {
		return err
	}
	r := &replayer{i: i, refs: map[chunks.HeadSeriesRef]replayRef{}, nowMs: i.now().UnixMilli()}
	cpDir, cpIdx, err := wlog.LastCheckpoint(dir)
	switch {
	case errors.Is(err, record.ErrNotFound):
		cpIdx = -1
	case err != nil:
		return fmt.Errorf("find last checkpoint: %w", err)
	default:
		if err := r.replayDir(ctx, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1}); err != nil {
			return fmt.Errorf("replay checkpoint %s: %w", cpDir, err)
		}
		if i.wal.cpBytes, err = dirBytes(cpDir); err != nil {
			return fmt.Errorf("size of checkpoint %s: %w", cpDir, err)
		}
	}
	i.wal.cpMint = math.MinInt64
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return fmt.Errorf("list wal segments: %w", err)
	}
	var corruption *wlog.CorruptionErr
	for seg := max(first, cpIdx+1); first >= 0 && seg <= last; seg++ {
		i.logger.Info("replaying wal segment", "segment", seg, "last_segment", last)
		err := r.replayDir(ctx, wlog.SegmentRange{Dir: dir, First: seg, Last: seg})
		if errors.As(err, &corruption) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay segment %d: %w", seg, err)
		}
	}
	i.lastRef.Store(uint64(r.maxRef)) // New series never reuse a ref of the WAL, an alias's included.
	for _, h := range i.tenantList() {
		h.indexReplayed()
	}
	if err := i.wal.open(i.cfg.WALSegmentSize, i.cfg.WALCompression, corruption); err != nil {
		return err
	}
	st := r.st
	i.metrics.replaySamples.Add(float64(st.samples))
	i.metrics.replaySkipped.WithLabelValues("persisted").Add(float64(st.persisted))
	i.metrics.replaySkipped.WithLabelValues("unknown_series").Add(float64(st.unknown))
	i.metrics.replaySkipped.WithLabelValues("retention").Add(float64(st.expired))
	i.logger.Info("wal replayed", "series", st.series, "samples", st.samples, "skipped_persisted", st.persisted,
		"skipped_unknown_series", st.unknown, "skipped_retention", st.expired, "checkpoint", cpIdx, "duration", time.Since(start))
	return nil
}

// replayDir replays the records of the segments of r. A torn or corrupted
// record is a *wlog.CorruptionErr.
func (r *replayer) replayDir(ctx context.Context, sr wlog.SegmentRange) error {
	rc, err := wlog.NewSegmentsRangeReader(sr)
	if err != nil {
		return fmt.Errorf("open segments: %w", err)
	}
	defer rc.Close()
	return r.replayRecords(ctx, rc, sr.Dir)
}

// replayRecords decodes and applies every record of rd.
func (r *replayer) replayRecords(ctx context.Context, rd io.Reader, dir string) error {
	var (
		wr      = wlog.NewReader(rd)
		dec     = record.NewDecoder(nil, r.i.logger)
		series  []record.RefSeries
		samples []record.RefSample
		err     error
	)
	for n := 0; wr.Next(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec := wr.Record()
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err != nil {
				return &wlog.CorruptionErr{Dir: dir, Segment: wr.Segment(), Offset: wr.Offset(), Err: fmt.Errorf("decode series: %w", err)}
			}
			for _, rs := range series {
				if err := r.replaySeries(ctx, rs); err != nil {
					return err
				}
			}
		case record.Samples, record.SamplesV2:
			if samples, err = dec.Samples(rec, samples[:0]); err != nil {
				return &wlog.CorruptionErr{Dir: dir, Segment: wr.Segment(), Offset: wr.Offset(), Err: fmt.Errorf("decode samples: %w", err)}
			}
			r.replaySamples(samples)
		case record.Exemplars, record.Metadata:
			if err := r.replayExemplarsOrMetadata(&dec, rec); err != nil {
				return &wlog.CorruptionErr{Dir: dir, Segment: wr.Segment(), Offset: wr.Offset(), Err: err}
			}
		case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2,
			record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
			if err := r.replayHistograms(&dec, dec.Type(rec), rec); err != nil { // wal_histogram.go
				return &wlog.CorruptionErr{Dir: dir, Segment: wr.Segment(), Offset: wr.Offset(), Err: err}
			}
		default:
			// The ingester writes no other record type.
		}
	}
	return wr.Err()
}

// replaySeries routes a series record to its tenant's head, opening it.
func (r *replayer) replaySeries(ctx context.Context, rs record.RefSeries) error {
	r.maxRef = max(r.maxRef, rs.Ref)
	if ok, err := r.replayMetadataSeries(ctx, rs); ok || err != nil {
		return err
	}
	id := rs.Labels.Get(tenantLabel)
	if id == "" {
		return fmt.Errorf("series record %d without the label %s: not a WAL of this Argus version", rs.Ref, tenantLabel)
	}
	h, err := r.i.getOrOpenTenant(ctx, id)
	if err != nil {
		return err
	}
	s, persisted, created, err := h.replaySeries(rs.Ref, withoutTenant(rs.Labels)) // The decoder's strings may alias the record buffer: the symbols copy them.
	if err != nil {
		return err
	}
	if created {
		r.st.series++
	} else if orig, ok := r.refs[s.ref]; ok {
		persisted = orig.persisted // An alias: the series' bound.
	}
	r.refs[rs.Ref] = replayRef{h: h, s: s, persisted: persisted}
	return nil
}

// replaySamples appends each sample to its series if it is newer than what
// the series persisted (its max time when replay created it) and inside its
// tenant's retention; the others are already persisted or expired. A sample
// older than the series' newest is merged, unless it is in memory already (a
// retried push's duplicate, logged before): push accepted it, whatever the
// window is now (WAL.md, "Out-of-order samples").
func (r *replayer) replaySamples(samples []record.RefSample) {
	for _, smp := range samples {
		rr, ok := r.refs[smp.Ref]
		if !ok {
			r.st.unknown++ // A series removed from the head after its samples were persisted.
			continue
		}
		h, s := rr.h, rr.s
		switch {
		case smp.T < h.replayCutoff:
			r.st.expired++
			continue
		case smp.T <= rr.persisted || (smp.T <= s.lastT && !s.lastAccepted):
			r.st.persisted++
			continue
		case smp.T <= s.lastT:
			r.replayOlder(h, s, smp)
			continue
		}
		if smp.T > h.maxT.Load() {
			h.maxT.Store(smp.T)
		}
		s.lastT, s.lastAccepted = smp.T, true
		s.mu.Lock()
		if s.appendLocked(smp.T, smp.V, r.nowMs) && !s.queuedLocked() {
			s.setQueuedLocked(true)
			h.enqueue(s)
		}
		s.mu.Unlock()
		r.st.samples++
	}
}

// replayOlder merges a WAL sample older than its series' newest, newer than
// what it persisted, unless a sample at its time is in memory.
func (r *replayer) replayOlder(h *tenantHead, s *memSeries, smp record.RefSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist != nil {
		r.replayOlderAnyLocked(h, s, anyMergeSample{t: smp.T, v: smp.V}) // wal_histogram.go
		return
	}
	if _, dup := s.valueAtLocked(smp.T); dup {
		r.st.persisted++ // Logged twice: push logs no duplicate, but a replayed alias may repeat one.
		return
	}
	r.ooo[0] = oooSample{smp.T, smp.V}
	s.mergeLocked(r.ooo[:1], r.nowMs)
	if s.finished != nil && !s.queuedLocked() {
		s.setQueuedLocked(true)
		h.enqueue(s)
	}
	r.st.samples++
}

// replaySeries creates the series of a series record, keeping its ref. A
// record for a label set already in the head (removed by GC and recreated
// under a new ref before a crash) becomes an alias of that series.
func (h *tenantHead) replaySeries(ref chunks.HeadSeriesRef, lset labels.Labels) (s *memSeries, persisted int64, created bool, err error) {
	hash := hashLabels(lset)
	if s := h.series.getByHash(hash, lset); s != nil {
		if s.ref != ref {
			h.aliases[ref] = s
		}
		return s, math.MinInt64, false, nil
	}
	persisted, ok, err := h.store.LastTime(lset)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read last persisted time: %w", err)
	}
	if !ok {
		persisted = math.MinInt64
	}
	raiseInt64(&h.oooFloor, persisted)
	s = newMemSeries(ref, h.series.syms.encode(lset), persisted, h.nowMs())
	s.logged = true
	h.series.setIfAbsent(hash, s)
	h.counts.add(h.series.syms.metricName(s.syms)) // Never limited: these series were accepted before the restart.
	h.instanceSeries.Add(1)
	h.replayed = append(h.replayed, s)
	return s, persisted, true, nil
}

// indexReplayed adds the series replay created to the postings, in ref
// order.
func (h *tenantHead) indexReplayed() {
	slices.SortFunc(h.replayed, func(a, b *memSeries) int { return cmp.Compare(a.ref, b.ref) })
	for _, s := range h.replayed {
		h.postings.Add(promstorage.SeriesRef(s.ref), h.series.syms, s.syms)
	}
	h.replayed = nil
	h.walks.invalidate()
}

// truncStep names a step of a WAL truncation, for tests that snapshot the
// data directory at each step (a kill -9 there).
type truncStep string

const (
	stepFlushed      truncStep = "flushed"
	stepGCed         truncStep = "series_removed"
	stepCut          truncStep = "segment_cut"
	stepCheckpointed truncStep = "checkpointed"
	stepTruncated    truncStep = "segments_deleted"
	stepDone         truncStep = "old_checkpoints_deleted"
)

// truncateWAL persists the finished chunks of every tenant (cutting the
// idle ones), then checkpoints and truncates the WAL. See truncateWALAfter.
func (i *Ingester) truncateWAL(ctx context.Context) error {
	return i.truncateWALAfter(ctx, cutIdleChunks, "period")
}

// truncateWALAfter persists the finished chunks of every tenant (with the
// idle policy), removes idle series with nothing in memory, starts a new
// WAL segment, checkpoints the older segments (keeping the records of
// series still in a head and the samples not older than the oldest sample
// in memory of any tenant) and deletes them. See WAL.md for why every crash
// point of this sequence is safe.
func (i *Ingester) truncateWALAfter(ctx context.Context, idle idlePolicy, trigger string) error {
	i.truncMu.Lock()
	defer i.truncMu.Unlock()
	i.flushAll(ctx, idle) // Failures keep the chunks in memory: the checkpoint keeps their samples.
	i.wal.step(stepFlushed)
	heads := i.tenantList()
	removed, err := i.removeIdleSeries(heads)
	if err != nil {
		return err
	}
	// After the series GC, so that a tenant whose last series just left
	// closes in the same pass; its series records are dropped by the
	// checkpoint below (no head keeps their refs).
	closed := i.closeIdleTenants()
	heads = i.tenantList()
	i.wal.step(stepGCed)
	first, last, err := i.wal.cut()
	if err != nil {
		return fmt.Errorf("start new wal segment: %w", err)
	}
	i.wal.step(stepCut)
	// Samples in segments <= last are all in memory or persisted by now, and
	// a series' samples older than its oldest in-memory one are persisted.
	mint := noTime
	var keep []chunks.HeadSeriesRef
	for _, h := range heads {
		mint = min(mint, h.minMemoryTime())
		keep = h.appendRefs(keep)
	}
	slices.Sort(keep)
	keepFn := func(ref chunks.HeadSeriesRef) bool {
		_, ok := slices.BinarySearch(keep, ref)
		return ok
	}
	wl := i.wal.current()
	if wl == nil {
		return ErrNotReady
	}
	stats, err := wlog.Checkpoint(i.logger, wl, first, last, keepFn, mint, false, false)
	if err != nil {
		return fmt.Errorf("checkpoint segments %d-%d: %w", first, last, err)
	}
	i.wal.step(stepCheckpointed)
	if err := wl.Truncate(last + 1); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	i.wal.step(stepTruncated)
	if err := wlog.DeleteCheckpoints(i.wal.dir, last); err != nil {
		return fmt.Errorf("delete old checkpoints: %w", err)
	}
	i.wal.step(stepDone)
	cpBytes, err := dirBytes(wlog.CheckpointDir(i.wal.dir, last))
	if err != nil {
		return fmt.Errorf("size of checkpoint %d: %w", last, err)
	}
	i.wal.cpBytes, i.wal.cpMint = cpBytes, mint
	if mint == noTime {
		i.wal.cpMint = math.MinInt64 // Nothing was in memory: the next samples pushed are all newer.
	}
	i.metrics.walTruncations.WithLabelValues(truncateOutcomeOK).Inc()
	i.logger.Info("wal truncated", "trigger", trigger, "first_segment", first, "last_segment", last, "mint", mint,
		"checkpoint_bytes", cpBytes, "dropped_series", stats.DroppedSeries, "dropped_samples", stats.DroppedSamples,
		"removed_series", removed, "closed_tenants", closed)
	return nil
}

// truncateWALIfDue truncates the WAL now, rather than at the next
// WALTruncatePeriod, when it pays (walTruncationDue). It runs after each
// periodic flush; a failure is logged and counted, and the timer or the
// next flush retries.
func (i *Ingester) truncateWALIfDue(ctx context.Context) {
	due, err := i.walTruncationDue()
	if err == nil && due {
		err = i.truncateWALAfter(ctx, cutIdleChunks, "size")
	}
	if err != nil && ctx.Err() == nil {
		i.metrics.walTruncations.WithLabelValues(truncateOutcomeErr).Inc()
		i.logger.Error("wal truncation failed", "err", err)
	}
}

// walTruncationDue reports whether the WAL segments hold more than
// max(one segment, twice the last checkpoint) and the oldest sample in
// memory of any tenant is newer than at the last checkpoint (so the
// checkpoint would drop samples, not only copy them). WAL.md argues the
// bound and its cost.
func (i *Ingester) walTruncationDue() (bool, error) {
	i.truncMu.Lock()
	defer i.truncMu.Unlock()
	n, err := i.wal.segmentBytes()
	if err != nil {
		return false, fmt.Errorf("size of wal segments: %w", err)
	}
	if n < max(int64(i.cfg.WALSegmentSize), 2*i.wal.cpBytes) {
		return false, nil
	}
	mint := noTime
	for _, h := range i.tenantList() {
		mint = min(mint, h.minMemoryTime())
	}
	return mint > i.wal.cpMint, nil
}

// checkpointOnStop, after the final flush of Stopping, checkpoints and
// truncates the WAL so that it holds only what the next start needs: the
// series records of the heads and the samples of the chunks left in memory
// (the open ones, and any whose flush failed), fsynced (the checkpoint
// here, the new empty segment when the WAL closes). A failure is logged,
// not returned: the WAL is then larger, not wrong.
func (i *Ingester) checkpointOnStop(ctx context.Context) {
	if i.wal.failed() != nil {
		return // Never opened, or failed: the next start replays (and repairs) it as it is.
	}
	if err := i.truncateWALAfter(ctx, keepOpenChunks, "stop"); err != nil {
		i.metrics.walTruncations.WithLabelValues(truncateOutcomeErr).Inc()
		i.logger.Error("wal truncation at stop failed, the next start replays more", "err", err)
	}
}

// segmentBytes returns the bytes of the WAL's segment files (its
// checkpoint excluded). The caller holds the Ingester's truncMu, so no
// truncation deletes segments meanwhile.
func (w *sharedWAL) segmentBytes() (int64, error) {
	first, last, err := wlog.Segments(w.dir)
	if err != nil || first < 0 {
		return 0, err
	}
	var n int64
	for k := first; k <= last; k++ {
		fi, err := os.Stat(wlog.SegmentName(w.dir, k))
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// dirBytes returns the bytes of the files directly in dir.
func dirBytes(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// step calls the test hook, if any, at a step of a truncation.
func (w *sharedWAL) step(s truncStep) {
	if w.testStep != nil {
		w.testStep(s)
	}
}

// appendRefs appends the refs whose series records a checkpoint keeps: the
// series in the head, the replay aliases and the metadata entries (whose
// expired ones it drops). The caller holds the
// Ingester's truncMu, so no series leaves the head meanwhile.
func (h *tenantHead) appendRefs(dst []chunks.HeadSeriesRef) []chunks.HeadSeriesRef {
	h.series.forEach(func(s *memSeries) { dst = append(dst, s.ref) })
	for ref := range h.aliases {
		dst = append(dst, ref)
	}
	return h.meta.appendRefs(dst, h.nowMs()-metadataRetainPeriod.Milliseconds())
}
