package ingester

import (
	"sync"
	"sync/atomic"
)

// The head's background work needs two facts about every series: the min
// time of its chunks in memory (sealBefore, every -ingester.flush-period;
// WAL checkpoints; label reads) and whether its open chunk went idle
// (cutIdleChunks, every flush). Finding either visits every series under
// its mu: at a million series, a tenth of a core spent while nothing
// changes (docs/benchmarks.md, "Queries over many series"). walkCaches keeps
// what the last walk found, and what can have changed since, so that a
// walk runs only when its answer can differ.

// walkCaches are the results of a head's last walks over its series.
type walkCaches struct {
	memMu sync.Mutex // serializes minMemoryTime's walks; taken before a series' mu
	// memWalked says memMin holds a walk's result. Guarded by memMu.
	memWalked bool
	// memMin is the min time of the chunks in memory that the last walk
	// found, noTime if none. Guarded by memMu.
	memMin int64
	// memLow is the oldest sample time appended (or about to be) since the
	// last walk began, noTime if none: noteAppends lowers it.
	memLow atomic.Int64
	// memRaised is set once chunks left memory since the last walk began:
	// the min may have risen, which only a walk finds.
	memRaised atomic.Bool

	// The idle walk's bound, guarded by the head's flushMu (cutIdleChunks
	// runs under it): idleWalked says idleMin and idleAt hold a walk's
	// result; idleMin is a lower bound of the lastAppend of every open
	// chunk (Unix seconds), idleAt the head clock (ms) of that walk.
	idleWalked bool
	idleMin    uint32
	idleAt     int64
}

// minMemoryTime returns the min time of the chunks in memory over every
// series, or noTime. Its callers need a lower bound (a seal watermark, the
// samples a checkpoint keeps): the result may be lower than a walk's, never
// higher, when a noted sample is no longer the oldest of its series' chunks
// (a series with both float and histogram chunks reports its oldest chunk
// list's min).
//
// The min changes when samples are appended (noteAppends lowers memLow,
// before and after the append) and when chunks leave memory (flushes and
// retention set memRaised). Between walks, with nothing raised, the min
// is the walk's min and memLow's, whichever is older. memLow is reset and
// memRaised cleared before a walk: a sample appended to a series after the
// walk visited it is noted after the reset, and a chunk dropped after the
// visit raises again, so the next call walks.
func (h *tenantHead) minMemoryTime() int64 {
	w := &h.walks
	w.memMu.Lock()
	defer w.memMu.Unlock()
	if w.memWalked && !w.memRaised.Load() {
		return min(w.memMin, w.memLow.Load())
	}
	w.memRaised.Store(false)
	w.memLow.Store(noTime)
	mint := noTime
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		mint = min(mint, s.firstInMemoryLocked())
		s.mu.Unlock()
	})
	w.memMin, w.memWalked = mint, true
	h.metrics.headWalks.WithLabelValues("min_memory_time").Inc()
	return min(mint, w.memLow.Load())
}

// noteAppends lowers memLow to t, the oldest sample time of an append in
// memory. Appends call it before and after appending: before, so that a
// minMemoryTime from the cache during the append counts the sample; after,
// so that a walk that began during the append and visited the series
// before it does too.
func (w *walkCaches) noteAppends(t int64) {
	for {
		low := w.memLow.Load()
		if t >= low || w.memLow.CompareAndSwap(low, t) {
			return
		}
	}
}

// noteDropped records that chunks left memory: the next minMemoryTime
// walks.
func (w *walkCaches) noteDropped() { w.memRaised.Store(true) }

// invalidate makes the next minMemoryTime and cutIdleChunks walk (after a
// WAL replay, which appends without noting). The caller holds flushMu or
// the head is not shared yet.
func (w *walkCaches) invalidate() {
	w.memRaised.Store(true)
	w.idleWalked = false
}

// idleWalkNeeded reports whether an open chunk may have got no sample
// since idleBefore (Unix seconds), at the head clock nowMs. Since the last
// walk every open chunk it left has a lastAppend at or after idleMin, and
// so has every chunk opened since (lastAppend is the clock of the append,
// not earlier than idleAt: see cutIdleChunks), unless the clock went back.
// A wall clock stepped back between two calls can delay a cut by as much as
// the step. The caller holds flushMu.
func (w *walkCaches) idleWalkNeeded(idleBefore uint32, nowMs int64) bool {
	return !w.idleWalked || nowMs < w.idleAt || idleBefore > w.idleMin
}
