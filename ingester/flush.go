package ingester

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/argus-tsdb/argus/storage"
)

// flushBatchSeries caps the series written to the DB in one
// transaction.
const flushBatchSeries = 10_000

// idlePolicy says whether a flush first cuts the open chunks that got no
// sample for longer than MaxChunkIdle.
type idlePolicy int

const (
	// keepOpenChunks persists only the chunks already cut (on shutdown: the
	// open chunks stay in the WAL).
	keepOpenChunks idlePolicy = iota
	// cutIdleChunks also cuts, and so persists, the idle open chunks.
	cutIdleChunks
)

// flush writes every finished chunk of the queued series to the DB,
// in transactions of up to flushBatchSeries series, then drops them from
// memory. It stops early when ctx is done; what it did not write stays
// queued (and in the WAL). Flushes of one tenant are serialized.
func (h *tenantHead) flush(ctx context.Context, idle idlePolicy) error {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	start := time.Now()
	if idle == cutIdleChunks {
		h.cutIdleChunks()
	}
	queue := h.takeQueue()
	if len(queue) == 0 {
		return nil
	}
	// Only the chunks that end at or before the floor: an out-of-order
	// sample may still be merged into the later ones (ooo.go).
	floor := h.raiseFloorForFlush()
	defer func() { h.metrics.flushDuration.Observe(time.Since(start).Seconds()) }()
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			h.enqueue(queue...)
			return err
		}
		n := min(len(queue), flushBatchSeries)
		if err := h.flushBatch(queue[:n], floor); err != nil {
			h.enqueue(queue...)
			h.metrics.flushFailures.Inc()
			return err
		}
		queue = queue[n:]
	}
	return nil
}

// flushBatch persists the finished chunks of series that end at or before
// floor in one transaction. Only flush removes finished chunks (under
// flushMu), cuts only append to them, and out-of-order merges change only
// chunks that end after floor, so the first n chunks seen before the write
// are still the first n after it.
func (h *tenantHead) flushBatch(series []*memSeries, floor int64) error {
	batch := make([]storage.Series, len(series)) // batch[k] is series[k]; Append ignores empty ones
	nXOR := make([]int, len(series))             // of batch[k].Chunks, the XOR chunks of series[k].finished
	for k, s := range series {
		s.mu.Lock()
		// Not gone: GC removes only series with nothing in memory.
		batch[k].Labels = h.series.syms.decode(s.syms)
		batch[k].Chunks, nXOR[k] = s.appendFinishedLocked(batch[k].Chunks, floor)
		s.mu.Unlock()
	}
	persisted, err := h.appendChunks(batch)
	if persisted == nil {
		return err
	}
	if err != nil {
		// Some series were written one by one; the others stay queued.
		h.metrics.flushFailures.Inc()
		h.logger.Error("db rejected series, kept in memory and retried", "err", err,
			"see_metric", "argus_ingester_flush_failures_total")
	}
	var requeue []*memSeries
	nChunks, nBytes := 0, 0
	for k, s := range series {
		n := len(batch[k].Chunks)
		s.mu.Lock()
		if n > 0 && persisted[k] {
			s.flags |= flagPersisted
			nBytes += s.dropFinishedLocked(nXOR[k], n-nXOR[k])
			nChunks += n
		}
		if s.hasFinishedLocked() {
			requeue = append(requeue, s) // Cut while we wrote, or not written: stays queued.
		} else {
			s.setQueuedLocked(false)
		}
		s.mu.Unlock()
	}
	h.enqueue(requeue...)
	if nChunks > 0 {
		h.walks.noteDropped()
	}
	h.metrics.chunksPersisted.Add(float64(nChunks))
	h.metrics.bytesPersisted.Add(float64(nBytes))
	return nil
}

// appendChunks writes batch in one transaction and reports, per series,
// whether it is persisted (nil: none is, with the error). If the store
// rejects the batch because of one series, the series are written one at a
// time, so that one bad series does not hold back every other.
func (h *tenantHead) appendChunks(batch []storage.Series) ([]bool, error) {
	err := h.store.Append(batch)
	if err == nil {
		persisted := make([]bool, len(batch))
		for k := range persisted {
			persisted[k] = true
		}
		return persisted, nil
	}
	if !isRejection(err) {
		return nil, fmt.Errorf("append to db: %w", err)
	}
	persisted := make([]bool, len(batch))
	var errs []error
	for k := range batch {
		if err := h.appendOne(&batch[k]); err != nil {
			errs = append(errs, err)
			continue
		}
		persisted[k] = true
	}
	return persisted, errors.Join(errs...)
}

// appendOne writes the chunks of one series. If the store already holds
// some of them (a commit that reported an error after it succeeded), those
// are skipped.
func (h *tenantHead) appendOne(sr *storage.Series) error {
	if len(sr.Chunks) == 0 {
		return nil
	}
	err := h.store.Append([]storage.Series{*sr})
	if !errors.Is(err, storage.ErrOutOfOrderChunk) {
		return err
	}
	last, ok, lerr := h.store.LastTime(sr.Labels)
	if lerr != nil || !ok {
		return errors.Join(err, lerr)
	}
	rest := sr.Chunks
	for len(rest) > 0 && rest[0].MaxTime <= last {
		rest = rest[1:]
	}
	if len(rest) == len(sr.Chunks) {
		return err
	}
	if len(rest) == 0 || rest[0].MinTime > last {
		return h.store.Append([]storage.Series{{Labels: sr.Labels, Chunks: rest}})
	}
	return err
}

// isRejection reports whether the DB rejected a batch for its
// content rather than failed to write it.
func isRejection(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderChunk) || errors.Is(err, storage.ErrInvalidChunk) ||
		errors.Is(err, storage.ErrInvalidLabels)
}

// cutIdleChunks cuts the open chunks that got no sample for longer than
// MaxChunkIdle and queues their series. It visits every series, unless
// the last visit found none that could be idle by now (walkCaches). The
// caller holds flushMu.
//
// The clock is read under appendMu: a push appends under it with a clock
// read under it (applyLocked), so every chunk opened after the walk began
// has a lastAppend at or after nowMs, and the bound the walk leaves,
// min(nowMs, the lastAppend of the open chunks it kept), holds for them
// too. (Series are created with their creation time as lastAppend, and
// replay invalidates the bound.)
func (h *tenantHead) cutIdleChunks() {
	h.appendMu.Lock()
	nowMs := h.nowMs()
	h.appendMu.Unlock()
	idleBefore := unixSeconds(nowMs - h.cfg.MaxChunkIdle.Milliseconds())
	w := &h.walks
	if !w.idleWalkNeeded(idleBefore, nowMs) {
		return
	}
	h.metrics.headWalks.WithLabelValues("idle_chunks").Inc()
	kept := unixSeconds(nowMs)
	var cut []*memSeries
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		if s.hasOpenLocked() || s.hist.hasOpen() {
			if s.lastAppend >= idleBefore {
				kept = min(kept, s.lastAppend)
			} else {
				s.cutLocked()
				if !s.queuedLocked() {
					s.setQueuedLocked(true)
					cut = append(cut, s)
				}
			}
		}
		s.mu.Unlock()
	})
	w.idleWalked, w.idleMin, w.idleAt = true, kept, nowMs
	h.enqueue(cut...)
}
