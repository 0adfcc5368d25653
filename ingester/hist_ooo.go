package ingester

import (
	"cmp"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Out-of-order samples of series with native histograms (ooo.go for the
// rules, which are the same).
//
// A series with a histState keeps its samples in chunkenc chunks of any
// encoding (hist.go), which cannot be cut back and resumed as ooo_xor.go
// does with XOR chunks. An out-of-order sample of such a series, float or
// histogram, is merged by rebuilding: the histState's chunks from the first
// one that ends at or after the sample are decoded, merged with the push's
// samples and appended again into new chunks, with the cuts of an in-order
// append. The chunks before are left alone (a flush may be writing them):
// the sample is after oooFloor, so every chunk a flush may be reading ends
// before it. A rebuild costs the series' samples from there on, at most its
// last window and the unpersisted rest: out-of-order samples are rare, and
// Prometheus's head pays a merge of its out-of-order chunks on every read
// instead.
//
// The sample must also be newer than the XOR chunks of memSeries (the
// series' floats before its first histogram), which a rebuild does not
// reach: an older one is refused as out of order. So is an out-of-order
// histogram of a series that has none in memory.

// anyMergeSample is a sample of any type in a rebuild: h or fh set, or the
// float v.
type anyMergeSample struct {
	t  int64
	v  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// histMergeableLocked reports whether a sample at t, older than the series'
// newest and after oooFloor, can be merged into s: s has a histState and t
// is after its XOR chunks in memory. The caller holds mu.
func (s *memSeries) histMergeableLocked(t int64) bool {
	return s.hist != nil && t > s.newestInMemoryLocked()
}

// sampleAtLocked returns the sample at t of the series' chunks in memory,
// XOR ones included, and whether there is one. The caller holds mu.
func (s *memSeries) sampleAtLocked(t int64) (anyMergeSample, bool) {
	if v, ok := s.valueAtLocked(t); ok {
		return anyMergeSample{t: t, v: v}, true
	}
	if s.hist == nil {
		return anyMergeSample{}, false
	}
	var found anyMergeSample
	ok := false
	s.hist.eachChunkFrom(t, func(c chunkenc.Chunk) bool {
		it := c.Iterator(nil)
		vt := it.Seek(t)
		if vt == chunkenc.ValNone {
			return true
		}
		if smp := sampleOf(it, vt); smp.t == t {
			found, ok = smp, true
		}
		return false // The chunks are sorted: the first that reaches t holds it or none does.
	})
	return found, ok
}

// eachChunkFrom calls fn with each chunk of hs that ends at or after t, in
// time order, the open one last, until fn returns false.
func (hs *histState) eachChunkFrom(t int64, fn func(chunkenc.Chunk) bool) {
	for c := hs.finished; c != nil; c = c.next {
		if c.maxT < t {
			continue
		}
		ch, err := chunkenc.FromData(c.enc, c.data)
		if err != nil {
			continue // Never: the chunk was encoded here.
		}
		if !fn(ch) {
			return
		}
	}
	if hs.open != nil && hs.openMaxT >= t {
		fn(hs.open)
	}
}

// sampleOf returns the sample it is at, of type vt, its histogram a copy.
func sampleOf(it chunkenc.Iterator, vt chunkenc.ValueType) anyMergeSample {
	var smp anyMergeSample
	switch vt {
	case chunkenc.ValHistogram:
		smp.t, smp.h = it.AtHistogram(nil)
	case chunkenc.ValFloatHistogram:
		smp.t, smp.fh = it.AtFloatHistogram(nil)
	default:
		smp.t, smp.v = it.At()
	}
	return smp
}

// equals reports whether smp is the sample x: the same type and value
// (bit-equal floats; histograms compared without empty buckets).
func (smp anyMergeSample) equals(x anyMergeSample) bool {
	switch {
	case smp.h != nil || smp.fh != nil:
		return sameHistogram(smp.h, smp.fh, &histSample{h: x.h, fh: x.fh})
	case x.h != nil || x.fh != nil:
		return false
	}
	return math.Float64bits(smp.v) == math.Float64bits(x.v)
}

// mergeAnyLocked appends the accepted samples smps of one push entry (any
// order, no time twice, none at a time in memory) to s, which has a
// histState: those newer than its newest are appended, the others merged
// by a rebuild. It reports whether a chunk was cut. The caller holds mu
// (and appendMu, or is replay).
func (s *memSeries) mergeAnyLocked(smps []anyMergeSample, nowMs int64) (cut bool) {
	slices.SortFunc(smps, func(a, b anyMergeSample) int { return cmp.Compare(a.t, b.t) })
	newest := s.hist.newest()
	n := 0
	for n < len(smps) && smps[n].t <= newest {
		n++
	}
	if n > 0 {
		cut = s.rebuildHistLocked(smps[:n])
	}
	for _, x := range smps[n:] {
		if s.appendAnyLocked(x.t, x.v, x.h, x.fh, nowMs) {
			cut = true
		}
	}
	s.lastAppend = unixSeconds(nowMs)
	return cut
}

// newest returns the time of the newest sample of hs, or noTime.
func (hs *histState) newest() int64 {
	if hs.open != nil {
		return hs.openMaxT
	}
	t := int64(noTime)
	for c := hs.finished; c != nil; c = c.next {
		t = c.maxT
	}
	return t
}

// rebuildHistLocked merges older (sorted, each older than the newest sample
// of s.hist and after its XOR chunks) into s.hist's chunks: those from the
// first one that ends at or after older[0] on are decoded, merged and
// appended again. It reports whether the rebuild left finished chunks after
// the ones kept. The caller holds mu.
func (s *memSeries) rebuildHistLocked(older []anyMergeSample) bool {
	hs := s.hist
	var prev *encChunk
	start := hs.finished
	for start != nil && start.maxT < older[0].t {
		prev, start = start, start.next
	}
	var old []anyMergeSample
	decode := func(c chunkenc.Chunk) bool {
		it := c.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			old = append(old, decodedSample(it, vt))
		}
		return true
	}
	hs.eachChunkFrom(older[0].t, decode)
	merged := mergeAnySamples(old, older)
	// Readers share finished chunks and copy the open one (hist.go): new
	// chunks replace them, none is changed in place.
	var nh histState
	for _, x := range merged {
		nh.append(x.t, x.v, x.h, x.fh)
	}
	if prev == nil {
		hs.finished = nh.finished
	} else {
		prev.next = nh.finished
	}
	hs.open, hs.app, hs.openMinT, hs.openMaxT = nh.open, nh.app, nh.openMinT, nh.openMaxT
	return nh.finished != nil
}

// decodedSample returns the sample it is at (of type vt), as a sample to
// append again: a counter histogram's reset hint is made unknown, so that
// the appender detects resets against its new neighbours instead of taking
// the hint of its old chunk.
func decodedSample(it chunkenc.Iterator, vt chunkenc.ValueType) anyMergeSample {
	smp := sampleOf(it, vt)
	switch {
	case smp.h != nil && smp.h.CounterResetHint != histogram.GaugeType:
		smp.h.CounterResetHint = histogram.UnknownCounterReset
	case smp.fh != nil && smp.fh.CounterResetHint != histogram.GaugeType:
		smp.fh.CounterResetHint = histogram.UnknownCounterReset
	}
	return smp
}

// mergeAnySamples returns the merge of two lists sorted by time; at an equal
// time the sample of a is kept.
func mergeAnySamples(a, b []anyMergeSample) []anyMergeSample {
	out := make([]anyMergeSample, 0, len(a)+len(b))
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

// applyMergedLocked appends the accepted floats and histograms of e, some
// older than the newest sample of its series, which has a histState, and
// raises the head's max time; it reports whether a chunk was cut. The
// caller holds appendMu and the series' mu.
func (h *tenantHead) applyMergedLocked(b *pushBatch, e *pushEntry, nowMs int64) bool {
	smps := make([]anyMergeSample, 0, e.end-e.first+e.hAccepted)
	for _, smp := range b.samples[e.first:e.end] {
		smps = append(smps, anyMergeSample{t: smp.T, v: smp.V})
	}
	maxT := h.maxT.Load()
	for k := e.hFirst; k < e.hEnd; k++ {
		if hs := &b.hdec[k]; hs.ok {
			smps = append(smps, anyMergeSample{t: hs.t, h: hs.h, fh: hs.fh})
			maxT = max(maxT, hs.t)
		}
	}
	h.maxT.Store(maxT)
	return e.s.mergeAnyLocked(smps, nowMs)
}
