package ingester

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

// replayStats count what a replay did.
type replayStats struct {
	series, samples, persisted, unknown int
}

// replay loads the last checkpoint and every WAL segment after it into the
// head, then opens the WAL for writing (in a new segment). A corrupted
// segment is repaired: it is cut at the corruption and the later segments
// are deleted, losing what they held (counted and logged). A corrupted
// checkpoint fails the replay. See WAL.md.
func (h *tenantHead) replay(ctx context.Context) error {
	start := time.Now()
	if err := wlog.DeleteTempCheckpoints(h.logger, h.walDir); err != nil {
		return err
	}
	var st replayStats
	cpDir, cpIdx, err := wlog.LastCheckpoint(h.walDir)
	switch {
	case errors.Is(err, record.ErrNotFound):
		cpIdx = -1
	case err != nil:
		return fmt.Errorf("find last checkpoint: %w", err)
	default:
		if err := h.replayDir(ctx, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1}, &st); err != nil {
			return fmt.Errorf("replay checkpoint %s: %w", cpDir, err)
		}
	}
	first, last, err := wlog.Segments(h.walDir)
	if err != nil {
		return fmt.Errorf("list wal segments: %w", err)
	}
	var corruption *wlog.CorruptionErr
	for seg := max(first, cpIdx+1); first >= 0 && seg <= last; seg++ {
		h.logger.Info("replaying wal segment", "segment", seg, "last_segment", last)
		err := h.replayDir(ctx, wlog.SegmentRange{Dir: h.walDir, First: seg, Last: seg}, &st)
		if errors.As(err, &corruption) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay segment %d: %w", seg, err)
		}
	}
	if err := h.openWAL(corruption); err != nil {
		return err
	}
	h.metrics.replaySamples.Add(float64(st.samples))
	h.metrics.replaySkipped.WithLabelValues("persisted").Add(float64(st.persisted))
	h.metrics.replaySkipped.WithLabelValues("unknown_series").Add(float64(st.unknown))
	h.logger.Info("wal replayed", "series", st.series, "samples", st.samples, "skipped_persisted", st.persisted,
		"skipped_unknown_series", st.unknown, "checkpoint", cpIdx, "duration", time.Since(start))
	return nil
}

// openWAL opens the WAL for writing, repairing corruption first if not nil.
func (h *tenantHead) openWAL(corruption *wlog.CorruptionErr) error {
	compress := compression.None
	if h.cfg.WALCompression {
		compress = compression.Snappy
	}
	// No registerer: wlog's metrics have no tenant label and would collide
	// between tenants.
	w, err := wlog.NewSize(h.logger, nil, h.walDir, h.cfg.WALSegmentSize, compress)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	if corruption != nil {
		h.metrics.walCorruptions.Inc()
		h.logger.Error("wal corrupted, dropping the records after the corruption", "segment", corruption.Segment,
			"offset", corruption.Offset, "err", corruption.Err)
		if err := w.Repair(corruption); err != nil {
			return errors.Join(fmt.Errorf("repair wal: %w", err), w.Close())
		}
	}
	h.wal = w
	return nil
}

// replayDir replays the records of the segments of r. A torn or corrupted
// record is a *wlog.CorruptionErr.
func (h *tenantHead) replayDir(ctx context.Context, r wlog.SegmentRange, st *replayStats) error {
	rc, err := wlog.NewSegmentsRangeReader(r)
	if err != nil {
		return fmt.Errorf("open segments: %w", err)
	}
	defer rc.Close()
	return h.replayRecords(ctx, rc, st)
}

// replayRecords decodes and applies every record of rd.
func (h *tenantHead) replayRecords(ctx context.Context, rd io.Reader, st *replayStats) error {
	var (
		r       = wlog.NewReader(rd)
		dec     = record.NewDecoder(nil, h.logger)
		series  []record.RefSeries
		samples []record.RefSample
		err     error
	)
	for n := 0; r.Next(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec := r.Record()
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err != nil {
				return &wlog.CorruptionErr{Dir: h.walDir, Segment: r.Segment(), Offset: r.Offset(), Err: fmt.Errorf("decode series: %w", err)}
			}
			for _, rs := range series {
				if err := h.replaySeries(rs, st); err != nil {
					return err
				}
			}
		case record.Samples, record.SamplesV2:
			if samples, err = dec.Samples(rec, samples[:0]); err != nil {
				return &wlog.CorruptionErr{Dir: h.walDir, Segment: r.Segment(), Offset: r.Offset(), Err: fmt.Errorf("decode samples: %w", err)}
			}
			h.replaySamples(samples, st)
		default:
			// The ingester writes no other record type.
		}
	}
	return r.Err()
}

// replaySeries creates the series of a series record, keeping its ref. A
// record for a label set already in the head (removed by GC and recreated
// under a new ref before a crash) becomes an alias of that series.
func (h *tenantHead) replaySeries(rs record.RefSeries, st *replayStats) error {
	h.lastRef = max(h.lastRef, rs.Ref) // New series never reuse a ref of the WAL, an alias's included.
	lset := rs.Labels.Copy()           // The decoder's strings may alias the record buffer.
	hash := lset.Hash()
	if s := h.series.getByHash(hash, lset); s != nil {
		if s.ref != rs.Ref {
			h.aliases[rs.Ref] = s
		}
		return nil
	}
	persisted, ok, err := h.store.LastTime(lset)
	if err != nil {
		return fmt.Errorf("read last persisted time: %w", err)
	}
	if !ok {
		persisted = math.MinInt64
	}
	s := newMemSeries(rs.Ref, lset, persisted, h.nowMs())
	s.logged = true
	h.series.setIfAbsent(hash, s)
	h.postings.Add(promstorage.SeriesRef(s.ref), lset)
	h.counts.add(lset) // Never limited: these series were accepted before the restart.
	h.inMemory.Inc()
	st.series++
	return nil
}

// replaySamples appends the samples newer than what their series holds
// (which starts at its persisted max time); the others are already persisted
// or duplicates.
func (h *tenantHead) replaySamples(samples []record.RefSample, st *replayStats) {
	nowMs := h.nowMs()
	var cut []*memSeries
	maxT := h.maxT.Load()
	defer func() { h.maxT.Store(maxT) }()
	for _, smp := range samples {
		maxT = max(maxT, smp.T)
		s := h.series.getByRef(smp.Ref)
		if s == nil {
			s = h.aliases[smp.Ref]
		}
		if s == nil {
			st.unknown++ // A series removed from the head after its samples were persisted.
			continue
		}
		if smp.T <= s.lastT {
			st.persisted++
			continue
		}
		s.lastT, s.lastAccepted = smp.T, true
		s.mu.Lock()
		if s.appendLocked(smp.T, smp.V, nowMs) && !s.queued {
			s.queued = true
			cut = append(cut, s)
		}
		s.mu.Unlock()
		st.samples++
	}
	h.enqueue(cut...)
}

// truncateWAL persists the finished chunks, removes idle series with nothing
// in memory, starts a new WAL segment, checkpoints the older segments
// (keeping the records of series still in the head and the samples not
// older than the oldest sample in memory) and deletes them. See WAL.md for
// why every crash point of this sequence is safe.
func (h *tenantHead) truncateWAL(ctx context.Context) error {
	h.truncMu.Lock()
	defer h.truncMu.Unlock()
	if err := h.flush(ctx, cutIdleChunks); err != nil {
		return fmt.Errorf("flush before truncation: %w", err)
	}
	candidates := h.gcCandidates()

	h.appendMu.Lock()
	if h.walErr != nil || h.closed {
		h.appendMu.Unlock()
		return nil // Nothing to truncate safely; a restart repairs the WAL.
	}
	if err := h.removeSeriesLocked(candidates); err != nil {
		h.appendMu.Unlock()
		return err
	}
	first, last, err := wlog.Segments(h.walDir)
	if err == nil {
		_, err = h.wal.NextSegment()
	}
	h.appendMu.Unlock()
	if err != nil {
		return fmt.Errorf("start new wal segment: %w", err)
	}

	// Samples in segments <= last are all in memory or persisted by now, and
	// a series' samples older than its oldest in-memory one are persisted.
	mint := h.minInMemoryTime()
	stats, err := wlog.Checkpoint(h.logger, h.wal, first, last, h.keepSeries, mint, false, false)
	if err != nil {
		return fmt.Errorf("checkpoint segments %d-%d: %w", first, last, err)
	}
	if err := h.wal.Truncate(last + 1); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	if err := wlog.DeleteCheckpoints(h.walDir, last); err != nil {
		return fmt.Errorf("delete old checkpoints: %w", err)
	}
	h.metrics.walTruncations.WithLabelValues(truncateOutcomeOK).Inc()
	h.logger.Info("wal truncated", "first_segment", first, "last_segment", last, "mint", mint,
		"dropped_series", stats.DroppedSeries, "dropped_samples", stats.DroppedSamples, "removed_series", len(candidates))
	return nil
}

// keepSeries reports whether the checkpoint keeps the series record of ref:
// the series is in the head. Its answer for a ref does not change during a
// checkpoint, because only truncateWAL removes series. The caller holds
// truncMu.
func (h *tenantHead) keepSeries(ref chunks.HeadSeriesRef) bool {
	return h.series.getByRef(ref) != nil || h.aliases[ref] != nil
}

// minInMemoryTime returns the min time of the oldest chunk in memory over
// every series, or math.MaxInt64.
func (h *tenantHead) minInMemoryTime() int64 {
	mint := noTime
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		mint = min(mint, s.firstInMemoryLocked())
		s.mu.Unlock()
	})
	return mint
}

// gcCandidates returns the series with nothing in memory and no sample for
// longer than MaxChunkIdle.
func (h *tenantHead) gcCandidates() []*memSeries {
	idleBefore := unixSeconds(h.nowMs() - h.cfg.MaxChunkIdle.Milliseconds())
	var out []*memSeries
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		if !s.inMemoryLocked() && s.lastAppend < idleBefore {
			out = append(out, s)
		}
		s.mu.Unlock()
	})
	return out
}

// removeSeriesLocked removes from the head the candidates that are still
// empty and idle. Their data stays queryable from the chunk store; a push
// that resolved one before sees deleted and recreates it. removedMaxT is
// raised, and made durable, before any is removed. The caller holds
// appendMu (pushes check deleted under it) and truncMu (aliases).
func (h *tenantHead) removeSeriesLocked(candidates []*memSeries) error {
	idleBefore := unixSeconds(h.nowMs() - h.cfg.MaxChunkIdle.Milliseconds())
	var remove []*memSeries
	removedMaxT := h.removedMaxT.Load()
	for _, s := range candidates {
		s.mu.Lock()
		ok := !s.inMemoryLocked() && s.lastAppend < idleBefore
		s.mu.Unlock()
		if ok && !s.deleted {
			remove = append(remove, s)
			removedMaxT = max(removedMaxT, s.lastT) // lastT >= the persisted max time.
		}
	}
	if len(remove) == 0 {
		return nil
	}
	if removedMaxT > h.removedMaxT.Load() {
		if err := writeRemovedMaxT(h.dir, removedMaxT); err != nil {
			return err
		}
		h.removedMaxT.Store(removedMaxT)
	}
	deleted := make(map[promstorage.SeriesRef]struct{}, len(remove))
	affected := map[labels.Label]struct{}{}
	h.createMu.Lock() // The counts change with the series map.
	for _, s := range remove {
		s.deleted = true
		h.series.remove(s.lset.Hash(), s)
		h.counts.remove(s.lset)
		deleted[promstorage.SeriesRef(s.ref)] = struct{}{}
		s.lset.Range(func(l labels.Label) { affected[l] = struct{}{} })
	}
	h.createMu.Unlock()
	h.postings.Delete(deleted, affected)
	for ref, s := range h.aliases {
		if s.deleted {
			delete(h.aliases, ref)
		}
	}
	h.inMemory.Sub(float64(len(deleted)))
	h.metrics.seriesGCed.Add(float64(len(deleted)))
	return nil
}

// removedMaxTFile is the file, in a tenant's directory, that keeps
// removedMaxT across restarts. Absent means math.MinInt64: no series was
// ever removed from the head, so every persisted series is in the WAL.
const removedMaxTFile = "removed_series_max_time"

func readRemovedMaxT(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, removedMaxTFile))
	if errors.Is(err, fs.ErrNotExist) {
		return math.MinInt64, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read removed series max time: %w", err)
	}
	t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", removedMaxTFile, err)
	}
	return t, nil
}

// writeRemovedMaxT replaces the file atomically and durably: temporary file,
// fsync, rename, fsync of the directory.
func writeRemovedMaxT(dir string, t int64) error {
	path := filepath.Join(dir, removedMaxTFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write removed series max time: %w", err)
	}
	_, err = f.WriteString(strconv.FormatInt(t, 10) + "\n")
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write removed series max time: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
