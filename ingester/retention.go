package ingester

import (
	"context"
	"math"
	"time"

	"github.com/argus-tsdb/argus/storage"
)

// dbLoop compacts the DB every FlushPeriod and applies retention every
// WALTruncatePeriod, until ctx is done. It runs apart from the flush loop:
// a compaction may take long, and flushes must not wait for it.
func (i *Ingester) dbLoop(ctx context.Context) {
	compact := time.NewTicker(i.cfg.FlushPeriod)
	defer compact.Stop()
	retention := time.NewTicker(i.cfg.WALTruncatePeriod)
	defer retention.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-compact.C:
			if err := i.compactDB(ctx); err != nil && ctx.Err() == nil {
				i.metrics.dbFailures.WithLabelValues("compact").Inc()
				i.logger.Error("db compaction failed", "err", err)
			}
		case <-retention.C:
			if err := i.applyRetention(ctx); err != nil && ctx.Err() == nil {
				i.metrics.dbFailures.WithLabelValues("retention").Inc()
				i.logger.Error("db retention failed", "err", err)
			}
		}
	}
}

// compactDB raises the sealed watermark to sealBefore and has the DB seal
// and merge the partitions that end before it.
func (i *Ingester) compactDB(ctx context.Context) error {
	t := i.sealBefore()
	i.sealed.Store(t)
	return i.db.Compact(ctx, t)
}

// sealBefore returns the oldest sample time that a flush can still write:
// no chunk older than it will ever reach the DB, so the DB may seal the
// partitions that end before it.
//
// A flush writes chunks cut from a head. The chunks in memory start at the
// head's minMemoryTime or later. A sample appended from now on is at
// least the head's minValid, which only grows (the head's max time and the
// retention cutoff only grow, and so does sealed; a longer out-of-order
// window lowers it, but never below sealed), so chunks not cut yet
// start at minValid or later. A head with no sample yet (maxT MinInt64), or
// a tenant with no head, is bound by sealed only, which push enforces for
// every tenant; so the result is the max of sealed and the min over the
// heads with data of min(minMemoryTime, minValid). It never decreases.
func (i *Ingester) sealBefore() int64 {
	t := noTime
	nowMs := i.now().UnixMilli()
	for _, h := range i.tenantList() {
		if h.maxT.Load() == math.MinInt64 {
			continue
		}
		t = min(t, h.minMemoryTime(), h.minValid(nowMs))
	}
	if t == noTime {
		return i.sealed.Load()
	}
	return max(t, i.sealed.Load())
}

// applyRetention drops the data past every tenant's retention: from memory
// (so that a flush does not write it back and the WAL checkpoint drops it),
// with the series whose every sample is past it (at once, not after
// MaxChunkIdle: their records leave the WAL at the next checkpoint, and a
// restart that replayed them drops them before serving), and from the DB.
// -ingester.retention-size bounds the DB.
func (i *Ingester) applyRetention(ctx context.Context) error {
	nowMs := i.now().UnixMilli()
	var plans []gcPlan
	i.truncMu.Lock() // Series leave the heads only under it.
	for _, h := range i.tenantList() {
		if cutoff := h.retentionCutoff(nowMs); cutoff != math.MinInt64 {
			h.dropExpired(cutoff)
			plans = append(plans, h.planGC(math.MaxUint32, cutoff))
		}
	}
	_, err := i.removeSeries(plans)
	i.truncMu.Unlock()
	if err != nil {
		return err
	}
	return i.db.ApplyRetention(ctx, storage.RetentionPolicy{Period: i.retentionOf, MaxBytes: i.cfg.RetentionSize})
}

// dropExpired drops the in-memory chunks that end before cutoff, finished
// or open. Samples older than
// cutoff are refused from now on (minValid), so the series' lastT keeps
// ordering exact.
func (h *tenantHead) dropExpired(cutoff int64) {
	h.flushMu.Lock() // Only flushes and this remove finished chunks.
	defer h.flushMu.Unlock()
	dropped := 0
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		for s.finished != nil && s.finished.maxT < cutoff {
			s.finished = s.finished.next
			dropped++
		}
		if s.finished == nil && s.hasOpenLocked() && s.openMaxTLocked() < cutoff {
			s.dropOpenLocked()
			dropped++
		}
		dropped += s.hist.dropBefore(cutoff)
		s.mu.Unlock()
	})
	if dropped > 0 {
		h.walks.noteDropped()
		h.metrics.chunksExpired.Add(float64(dropped))
	}
}
