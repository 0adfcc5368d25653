package ingester

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
)

// Out-of-order samples and idempotent retries (WAL.md, "Out-of-order
// samples").
//
// A tenant with an out_of_order_time_window W accepts a sample older than
// its series' newest if it is at or after the head's max time minus W, and
// newer than anything the series may have persisted. Such a sample is merged
// into the series' chunks in memory: the chunk that holds it is decoded up
// to it, cut back there and the rest re-encoded with it (ooo_xor.go); a
// merge that reaches several chunks, or overflows one, decodes them and cuts
// them again (at most samplesPerChunk samples each, never across a 2h
// range). A series' chunks therefore stay sorted and
// never overlap, in memory, in the WAL's replay, in the DB and on the query
// wire: no read, compaction or replica merge has to deal with overlapping
// chunks of one series from one ingester, and a series needs no state of its
// own for it (memSeries keeps its 112 bytes).
//
// For that, a flush persists only the chunks that no sample can be merged
// into any more: those that end at or before the tenant's oooFloor, which a
// flush raises to the head's max time minus W (minus 1) under appendMu
// before it reads the chunks. An accepted out-of-order sample is after
// oooFloor, so it is merged into chunks no flush is writing, and the chunks
// of a series in the DB all end before every sample still in memory. With W
// = 0 the floor is the head's max time: every finished chunk is flushed, as
// before. The cost is memory: the last W of every series stays in memory
// (and in the WAL) until the head's max time moves past it.
//
// An exact duplicate (same series, timestamp and bit-equal value) of a
// sample in memory or earlier in the same push is accepted and not stored
// again, whatever the window: a retried push that had partly landed is
// accepted whole. A different value at a stored timestamp is a
// duplicate-timestamp error. Samples older than the series' chunks in memory
// are persisted or never were: the head refuses them as out of order (with
// W = 0) as Prometheus does, unless the DB holds an exact duplicate
// (retry.go: looked up only on that refusal); with W > 0 a sample after
// oooFloor cannot be persisted, so it is merged.

// oooSample is a sample being merged into a series' chunks.
type oooSample struct {
	t int64
	v float64
}

// pendingKey is a sample of a push, by series and timestamp.
type pendingKey struct {
	ref chunks.HeadSeriesRef
	t   int64
}

// pushBounds are the tenant's bounds for the samples of one push, read once
// under appendMu.
type pushBounds struct {
	minValid int64 // older samples are too old
	window   int64 // the out-of-order window, ms; 0: none
	oooMin   int64 // an out-of-order sample must be at or after it (window > 0)
	floor    int64 // an out-of-order sample must be after it: what may be persisted
	// removedMaxT is the tenant's: series recreated after GC may have
	// persisted samples up to it (retry.go).
	removedMaxT int64
}

// oooWindowMs returns the tenant's out-of-order time window in ms (0: none).
func (h *tenantHead) oooWindowMs() int64 {
	if h.oooWindow == nil {
		return 0
	}
	return max(h.oooWindow(h.id).Milliseconds(), 0)
}

// bounds returns the bounds of a push at nowMs. The caller holds appendMu.
func (h *tenantHead) bounds(nowMs int64) pushBounds {
	b := pushBounds{minValid: h.minValid(nowMs), window: h.oooWindowMs(), floor: h.oooFloor.Load(), removedMaxT: h.removedMaxT.Load()}
	if b.window > 0 {
		b.oooMin = max(windowStart(h.maxT.Load(), b.window), b.minValid)
	}
	return b
}

// windowStart is the oldest time an out-of-order sample may have in a head
// whose newest sample is at maxT (math.MinInt64 for an empty head).
func windowStart(maxT, window int64) int64 {
	if maxT < math.MinInt64+window {
		return math.MinInt64
	}
	return maxT - window
}

// minValidWithWindow is minValidTime, extended back to the out-of-order
// window when it is longer than half a chunk range (as Prometheus's head
// accepts any sample inside the window).
func minValidWithWindow(maxT, window int64) int64 {
	mv := minValidTime(maxT)
	if window > 0 {
		mv = min(mv, windowStart(maxT, window))
	}
	return mv
}

// raiseFloorForFlush raises oooFloor for a flush that is about to read the
// finished chunks, and returns it: the flush persists only the chunks that
// end at or before it. Under appendMu, so that no push is between its check
// of the floor and its merge (WAL.md, "Out-of-order samples").
func (h *tenantHead) raiseFloorForFlush() int64 {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	maxT := h.maxT.Load()
	if w := h.oooWindowMs(); w > 0 && maxT != math.MinInt64 {
		maxT = windowStart(maxT, w) - 1
	}
	raiseInt64(&h.oooFloor, maxT)
	return h.oooFloor.Load()
}

// raiseInt64 sets v to x if x is greater.
func raiseInt64(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// checkOlderLocked checks a sample of e at or before its series' newest
// (lastT): an exact duplicate is accepted without being stored again, a
// different value at a stored time is a duplicate, and a new sample inside
// the window is accepted out of order. The caller holds appendMu.
func (h *tenantHead) checkOlderLocked(e *pushEntry, t int64, v float64, lim *pushBounds, b *pushBatch, sr *seriesRejects) {
	s := e.s
	if !b.tracking {
		b.startTracking()
	}
	bits, found := b.pending[pendingKey{s.ref, t}]
	isFloat := true // Samples of this push are floats.
	s.mu.Lock()
	if !found {
		var at anyMergeSample
		at, found = s.sampleAtLocked(t)
		isFloat, bits = at.h == nil && at.fh == nil, math.Float64bits(at.v)
	}
	// A series with native histograms merges by rebuilding (hist_ooo.go),
	// after its XOR chunks only.
	mergeable := s.hist == nil || s.histMergeableLocked(t)
	// Not in memory: a retried sample may be persisted (retry.go).
	onDisk := !found && s.mayBePersistedLocked(t, lim)
	s.mu.Unlock()
	smp := anyMergeSample{t: t, v: v}
	switch {
	case found && isFloat && bits == math.Float64bits(v):
		// An exact duplicate (a retried push): accepted, not stored again.
	case found:
		sr.add(rejectDuplicate, sampleError{reason: rejectDuplicate.reason(), t: t, ref: t})
	case t < lim.minValid:
		b.refuse(sr, onDisk, smp, rejectTooOld, sampleError{reason: rejectTooOld.reason(), t: t, ref: lim.minValid})
	case lim.window > 0 && t < lim.oooMin:
		b.refuse(sr, onDisk, smp, rejectTooOld, sampleError{reason: rejectTooOld.reason(), t: t, ref: lim.oooMin, window: true})
	case lim.window > 0 && t > lim.floor && mergeable:
		e.ooo = true
		b.accept(s.ref, t, v)
	default:
		b.refuse(sr, onDisk, smp, rejectOutOfOrder, sampleError{reason: rejectOutOfOrder.reason(), t: t, ref: s.lastT})
	}
}

// startTracking indexes the samples b accepted so far, and from now on every
// sample it accepts, so that a sample may be compared with those of its own
// push. Only pushes with a sample older than its series' newest pay for it.
func (b *pushBatch) startTracking() {
	if b.pending == nil {
		b.pending = map[pendingKey]uint64{}
	}
	for _, smp := range b.samples {
		b.pending[pendingKey{smp.Ref, smp.T}] = math.Float64bits(smp.V)
	}
	b.tracking = true
}

// accept adds a sample to the samples of b to log and append.
func (b *pushBatch) accept(ref chunks.HeadSeriesRef, t int64, v float64) {
	b.samples = append(b.samples, record.RefSample{Ref: ref, T: t, V: v})
	if b.tracking {
		b.pending[pendingKey{ref, t}] = math.Float64bits(v)
	}
}

// valueAtLocked returns the value of the sample at t in the series' chunks
// in memory, and whether there is one. The caller holds mu.
func (s *memSeries) valueAtLocked(t int64) (float64, bool) {
	var data []byte
	switch {
	case s.open != nil && s.openMinTLocked() <= t && t <= s.xor.t:
		data = s.open
	default:
		for c := s.finished; c != nil && c.minT <= t; c = c.next {
			if t <= c.maxT {
				data = c.data
				break
			}
		}
	}
	if data == nil {
		return 0, false
	}
	sc := mergeScratchPool.Get().(*mergeScratch)
	defer mergeScratchPool.Put(sc)
	sc.chunk.Reset(data)
	sc.it = sc.chunk.Iterator(sc.it)
	if sc.it.Seek(t) != chunkenc.ValFloat {
		return 0, false
	}
	st, v := sc.it.At()
	return v, st == t
}

// newestInMemoryLocked returns the time of the newest sample in memory, or
// math.MinInt64. The caller holds mu.
func (s *memSeries) newestInMemoryLocked() int64 {
	if s.open != nil {
		return s.xor.t
	}
	t := int64(math.MinInt64)
	for c := s.finished; c != nil; c = c.next {
		t = c.maxT
	}
	return t
}

// appendMixedLocked appends the accepted samples of a push entry that has
// out-of-order samples: those newer than the series' newest in memory are
// appended, the others merged into the chunks. It reports whether the series
// has finished chunks (to queue). The caller holds mu (and appendMu, or is
// replay).
func (s *memSeries) appendMixedLocked(smps []record.RefSample, nowMs int64, buf *[]oooSample) bool {
	newest := s.newestInMemoryLocked()
	older := (*buf)[:0]
	for _, smp := range smps {
		if smp.T > newest {
			s.appendLocked(smp.T, smp.V, nowMs)
			newest = smp.T
			continue
		}
		older = append(older, oooSample{smp.T, smp.V})
	}
	if len(older) > 0 {
		slices.SortFunc(older, func(a, b oooSample) int { return cmp.Compare(a.t, b.t) })
		s.mergeLocked(older, nowMs)
	}
	*buf = older
	return s.finished != nil
}

// mergeLocked merges smps (sorted by time, none at a time already in memory,
// none newer than the series' newest in memory) into the chunks in memory:
// the chunks from the first one that ends at or after smps[0] to the last
// one that begins at or before the newest of smps are decoded, merged and
// cut again; the chunks before them are left alone (a flush may be writing
// them), and so are those after. The open chunk, if any, stays the open
// chunk. The caller holds mu.
func (s *memSeries) mergeLocked(smps []oooSample, nowMs int64) {
	var prev *finishedChunk
	start := s.finished
	for start != nil && start.maxT < smps[0].t {
		prev, start = start, start.next
	}
	sc := mergeScratchPool.Get().(*mergeScratch)
	defer mergeScratchPool.Put(sc)
	s.lastAppend = unixSeconds(nowMs)
	if s.resumeLocked(prev, start, smps, sc) {
		return // Into one chunk: only its end is re-encoded (ooo_xor.go).
	}
	// The chunks rewritten: from start to the last one that begins at or
	// before the newest of smps (start at least); the open chunk if that
	// reaches it. Those after keep their bytes: the merge ends before them.
	newest := smps[len(smps)-1].t
	end := start
	for end != nil && end.next != nil && end.next.minT <= newest {
		end = end.next
	}
	var after *finishedChunk // The first finished chunk kept after the rewrite.
	hadOpen := s.open != nil && (end == nil || end.next == nil && s.openMinTLocked() <= newest)
	if end != nil && !hadOpen {
		after = end.next
	}
	old := sc.old[:0]
	for c := start; c != after; c = c.next {
		old = sc.decode(old, c.data)
	}
	if hadOpen {
		old = sc.decode(old, s.open)
	}
	merged := mergeSamples(sc.merged[:0], old, smps)
	sc.old, sc.merged = old, merged
	// Reads copy the open chunk (query.go): its buffer is the series' own,
	// and is rewritten in place.
	buf := s.open
	if hadOpen {
		s.dropOpenLocked()
	}
	sc.pieces = splitChunks(sc.pieces[:0], merged)
	var first, last *finishedChunk
	for k, p := range sc.pieces {
		if k == len(sc.pieces)-1 && hadOpen {
			s.open = buf[:xorHeaderSize]
			binary.BigEndian.PutUint16(s.open, 0)
			for _, x := range p {
				xorAppend(&s.open, &s.xor, x.t, x.v)
			}
			break
		}
		fc := encodeFinished(p)
		if first == nil {
			first = fc
		} else {
			last.next = fc
		}
		last = fc
	}
	clear(sc.pieces)
	if last != nil {
		last.next = after
	} else {
		first = after
	}
	if prev == nil {
		s.finished = first
	} else {
		prev.next = first
	}
}

// mergeScratch is the scratch memory of a merge, pooled: merges run under a
// series' mu, so one per series at a time, from pushes and replay.
type mergeScratch struct {
	old, merged []oooSample
	pieces      [][]oooSample
	chunk       chunkenc.XORChunk
	it          chunkenc.Iterator
}

var mergeScratchPool = sync.Pool{New: func() any { return &mergeScratch{} }}

// decode appends the samples of the XOR chunk data to dst.
func (sc *mergeScratch) decode(dst []oooSample, data []byte) []oooSample {
	sc.chunk.Reset(data)
	sc.it = sc.chunk.Iterator(sc.it)
	for sc.it.Next() == chunkenc.ValFloat {
		t, v := sc.it.At()
		dst = append(dst, oooSample{t, v})
	}
	return dst
}

// splitChunks appends to out the samples of the chunks that samples sorted
// by time are cut into: never across a 2h range, at most samplesPerChunk
// each, of balanced sizes.
func splitChunks(out [][]oooSample, smps []oooSample) [][]oooSample {
	for len(smps) > 0 {
		n := 1
		for n < len(smps) && chunkIndex(smps[n].t) == chunkIndex(smps[0].t) {
			n++
		}
		group := smps[:n]
		pieces := (n + samplesPerChunk - 1) / samplesPerChunk
		for k := range pieces {
			out = append(out, group[k*n/pieces:(k+1)*n/pieces])
		}
		smps = smps[n:]
	}
	return out
}

// encodeFinished returns the finished chunk of smps (sorted, at least one),
// its bytes without spare capacity.
func encodeFinished(smps []oooSample) *finishedChunk {
	buf := make([]byte, xorHeaderSize, xorHeaderSize+16+2*len(smps))
	var st xorState
	for _, x := range smps {
		xorAppend(&buf, &st, x.t, x.v)
	}
	data := make([]byte, len(buf))
	copy(data, buf)
	return &finishedChunk{minT: smps[0].t, maxT: smps[len(smps)-1].t, data: data}
}

// decodeXOR appends the samples of the XOR chunk data to dst.
func decodeXOR(dst []oooSample, data []byte) []oooSample {
	var c chunkenc.XORChunk
	c.Reset(data)
	it := c.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		dst = append(dst, oooSample{t, v})
	}
	return dst
}

// mergeSamples appends to out the merge of two lists sorted by time; at an
// equal time the sample of a is kept.
func mergeSamples(out, a, b []oooSample) []oooSample {
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].t < b[0].t):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0].t < a[0].t:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}
