package ingester

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The native histogram samples of a push. resolve decodes every histogram
// of a series into pushBatch.hdec (the entry's hFirst:hEnd); the ordering
// check marks the accepted ones; logLocked writes them as Prometheus's
// histogram WAL records after the float samples; applyLocked appends them
// after the series' float samples. A series' floats come before its
// histograms, as in Prometheus's remote-write receiver.

// histSample is one decoded histogram sample of a push: h or fh is set.
type histSample struct {
	t  int64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
	ok bool // accepted by checkHistogramsLocked
}

// mergeSample returns hs as an anyMergeSample.
func (hs *histSample) mergeSample() anyMergeSample {
	return anyMergeSample{t: hs.t, h: hs.h, fh: hs.fh}
}

// decodeHistograms decodes the histograms of ts into b.hdec, and rejects
// (whole, counted once) those that do not decode or are invalid: the
// distributor validated them, so those come from another sender. The
// decoded histograms own their memory: none of it aliases the request.
func (b *pushBatch) decodeHistograms(ts *arguspb.TimeSeries) {
	bad := 0
	var firstErr error
	for _, raw := range ts.GetHistograms() {
		hs, err := decodeHistogram(raw)
		if err != nil {
			if bad == 0 {
				firstErr = err
			}
			bad++
			continue
		}
		b.hdec = append(b.hdec, hs)
	}
	if bad > 0 {
		b.rej.addSeries(ts, rejectHistogram, int64(bad), int64(bad), fmt.Errorf("%w: %d samples, the first: %w", ErrInvalidHistogram, bad, firstErr))
	}
}

// decodeHistogram decodes one marshalled prompb.Histogram, reduces a schema
// above 8 (reserved for finer ones) to 8, and validates it, as Prometheus's
// remote-write receiver and head do.
func decodeHistogram(raw []byte) (histSample, error) {
	var ph prompb.Histogram
	if err := ph.Unmarshal(raw); err != nil {
		return histSample{}, fmt.Errorf("malformed histogram: %w", err)
	}
	if !histogram.IsKnownSchema(ph.Schema) {
		return histSample{}, histogram.UnknownSchemaError(ph.Schema)
	}
	hs := histSample{t: ph.Timestamp}
	reduce := ph.Schema > histogram.ExponentialSchemaMax && !histogram.IsCustomBucketsSchema(ph.Schema)
	if ph.IsFloatHistogram() {
		hs.fh = ph.ToFloatHistogram()
		if reduce {
			if err := hs.fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
				return histSample{}, err
			}
		}
		return hs, hs.fh.Validate()
	}
	hs.h = ph.ToIntHistogram()
	if reduce {
		if err := hs.h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return histSample{}, err
		}
	}
	return hs, hs.h.Validate()
}

// newestHistogram returns the newest timestamp of b.hdec[first:], or
// MinInt64.
func (b *pushBatch) newestHistogram(first int) int64 {
	newest := int64(math.MinInt64)
	for _, hs := range b.hdec[first:] {
		newest = max(newest, hs.t)
	}
	return newest
}

// checkHistogramsLocked checks the histograms of e in order after its float
// samples, with the same rules, marking the accepted ones, and returns how
// many it accepted. One older than the series' newest is
// checkOlderHistogramLocked's. The caller holds appendMu.
func (h *tenantHead) checkHistogramsLocked(e *pushEntry, lim *pushBounds, b *pushBatch, sr *seriesRejects) int {
	s, n := e.s, 0
	for k := e.hFirst; k < e.hEnd; k++ {
		hs := &b.hdec[k]
		t := hs.t
		switch {
		case t == s.lastT && s.lastAccepted && isLastHistogramLocked(s, b.hdec[e.hFirst:k], hs):
			// An exact duplicate (a retried push): accepted, not appended again.
		case t < lim.minValid:
			// At or before lastT (or removedMaxT: the series may have been
			// removed and recreated), a retried sample may be persisted
			// (retry.go).
			b.refuse(sr, (t <= s.lastT || t <= lim.removedMaxT) && s.mayBePersisted(t, lim), hs.mergeSample(), rejectTooOld,
				sampleError{reason: rejectTooOld.reason(), t: t, ref: lim.minValid})
		case t < s.lastT && s.lastAccepted:
			if h.checkOlderHistogramLocked(e, k, lim, b, sr) {
				n++
			}
		case t < s.lastT || (t == s.lastT && !s.lastAccepted):
			b.refuse(sr, s.mayBePersisted(t, lim), hs.mergeSample(), rejectOutOfOrder,
				sampleError{reason: rejectOutOfOrder.reason(), t: t, ref: s.lastT})
		case t == s.lastT:
			sr.addHist(rejectDuplicate, sampleError{reason: rejectDuplicate.reason(), t: t, ref: s.lastT})
		default:
			s.lastT, s.lastAccepted = t, true
			hs.ok = true
			n++
		}
	}
	b.hAccepted += n
	b.noteRanks(e, n)
	return n
}

// checkOlderHistogramLocked checks histogram k of e, older than its series'
// newest sample, as checkOlderLocked checks a float: an exact duplicate is
// accepted without being stored again, another sample at its time is a
// duplicate, and a new one inside the window that the series can merge
// (hist_ooo.go) is accepted out of order. It reports whether it accepted
// the histogram to store. The caller holds appendMu.
func (h *tenantHead) checkOlderHistogramLocked(e *pushEntry, k int, lim *pushBounds, b *pushBatch, sr *seriesRejects) bool {
	s, hs := e.s, &b.hdec[k]
	t := hs.t
	in := anyMergeSample{t: t, h: hs.h, fh: hs.fh}
	var (
		at    anyMergeSample
		found bool
	)
	for j := e.hFirst; j < k && !found; j++ { // This push's own, first.
		if p := &b.hdec[j]; p.ok && p.t == t {
			at, found = anyMergeSample{t: t, h: p.h, fh: p.fh}, true
		}
	}
	s.mu.Lock()
	if !found {
		at, found = s.sampleAtLocked(t)
	}
	mergeable := s.histMergeableLocked(t)
	onDisk := !found && s.mayBePersistedLocked(t, lim) // retry.go
	s.mu.Unlock()
	switch {
	case found && at.equals(in):
		// An exact duplicate (a retried push): accepted, not stored again.
	case found:
		sr.addHist(rejectDuplicate, sampleError{reason: rejectDuplicate.reason(), t: t, ref: t})
	case lim.window > 0 && t < lim.oooMin:
		b.refuse(sr, onDisk, in, rejectTooOld, sampleError{reason: rejectTooOld.reason(), t: t, ref: lim.oooMin, window: true})
	case lim.window > 0 && t > lim.floor && mergeable:
		hs.ok, e.ooo = true, true
		return true
	default:
		b.refuse(sr, onDisk, in, rejectOutOfOrder, sampleError{reason: rejectOutOfOrder.reason(), t: t, ref: s.lastT})
	}
	return false
}

// Ranks of the sample types, in the order appendHistogramRecords writes
// their records.
const (
	rankFloat uint8 = iota
	rankHistogram
	rankCustomHistogram
	rankFloatHistogram
	rankCustomFloatHistogram
)

// rank is the rank of hs's type.
func (hs *histSample) rank() uint8 {
	switch {
	case hs.h != nil && hs.h.UsesCustomBuckets():
		return rankCustomHistogram
	case hs.h != nil:
		return rankHistogram
	case hs.fh.UsesCustomBuckets():
		return rankCustomFloatHistogram
	}
	return rankFloatHistogram
}

// noteRanks records the highest rank of the samples of e's series accepted
// so far in this push (n of its histograms were), and sets b.hOrdered when
// a series gets a sample of a lower rank after one of a higher: its records
// grouped by type would then not be in its time order, which replay
// requires (see WAL.md), and logLocked writes the push's records in
// acceptance order instead. Prometheus's head cuts its append batches on a
// type change for the same reason. Pushes without histograms skip it.
func (b *pushBatch) noteRanks(e *pushEntry, accepted int) {
	if b.hOrdered || (b.hRank == nil && accepted == 0) {
		return
	}
	if b.hRank == nil {
		b.hRank = map[*memSeries]uint8{}
	}
	top, seen := b.hRank[e.s]
	if seen && top > rankFloat && e.end > e.first { // Floats after a histogram.
		b.hOrdered = true
		return
	}
	for k := e.hFirst; k < e.hEnd; k++ {
		if hs := &b.hdec[k]; hs.ok {
			r := hs.rank()
			if r < top {
				b.hOrdered = true
				return
			}
			top = r
		}
	}
	b.hRank[e.s] = top
}

// isLastHistogramLocked reports whether hs equals the series' sample at
// lastT: the last accepted of pending (this entry's earlier histograms),
// else the newest sample in its chunks. Both are compared without their
// empty buckets, which a chunk may have added. The caller holds appendMu.
func isLastHistogramLocked(s *memSeries, pending []histSample, hs *histSample) bool {
	for k := len(pending) - 1; k >= 0; k-- {
		if pending[k].ok {
			return sameHistogram(pending[k].h, pending[k].fh, hs)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist == nil {
		return false
	}
	last, ok := s.hist.last()
	if !ok || last.t != s.lastT {
		return false
	}
	switch last.vt {
	case chunkenc.ValHistogram:
		return sameHistogram(last.h, nil, hs)
	case chunkenc.ValFloatHistogram:
		return sameHistogram(nil, last.fh, hs)
	}
	return false
}

// sameHistogram reports whether the histogram h or fh equals hs's, empty
// buckets aside.
func sameHistogram(h *histogram.Histogram, fh *histogram.FloatHistogram, hs *histSample) bool {
	switch {
	case h != nil && hs.h != nil:
		return h.Copy().Compact(0).Equals(hs.h.Copy().Compact(0))
	case fh != nil && hs.fh != nil:
		return fh.Copy().Compact(0).Equals(hs.fh.Copy().Compact(0))
	}
	return false
}

// appendHistogramRecords appends to b.recs the WAL records of the accepted
// histograms of b: Prometheus's HistogramSamples and FloatHistogramSamples,
// and their custom-buckets variants. Each record has its own buffer: the
// encoder may reset the one it is given.
func (b *pushBatch) appendHistogramRecords() {
	if b.hOrdered {
		b.appendOrderedRecords()
		return
	}
	if b.hAccepted == 0 {
		return
	}
	var (
		enc record.Encoder
		hs  []record.RefHistogramSample
		fhs []record.RefFloatHistogramSample
	)
	for n := range b.entries {
		e := &b.entries[n]
		for _, smp := range b.hdec[e.hFirst:e.hEnd] {
			switch {
			case !smp.ok:
			case smp.h != nil:
				hs = append(hs, record.RefHistogramSample{Ref: e.s.ref, T: smp.t, H: smp.h})
			default:
				fhs = append(fhs, record.RefFloatHistogramSample{Ref: e.s.ref, T: smp.t, FH: smp.fh})
			}
		}
	}
	if len(hs) > 0 {
		rec, custom := enc.HistogramSamples(hs, nil)
		b.addRecord(rec)
		if len(custom) > 0 {
			b.addRecord(enc.CustomBucketsHistogramSamples(custom, nil))
		}
	}
	if len(fhs) > 0 {
		rec, custom := enc.FloatHistogramSamples(fhs, nil)
		b.addRecord(rec)
		if len(custom) > 0 {
			b.addRecord(enc.CustomBucketsFloatHistogramSamples(custom, nil))
		}
	}
}

// appendOrderedRecords appends to b.recs the records of every accepted
// sample of b, floats included, in acceptance order: one record per run of
// samples of one type.
func (b *pushBatch) appendOrderedRecords() {
	var (
		enc  record.Encoder
		rank = rankFloat
		fs   []record.RefSample
		hs   []record.RefHistogramSample
		fhs  []record.RefFloatHistogramSample
	)
	flush := func() {
		switch {
		case len(fs) > 0:
			b.addRecord(enc.Samples(fs, nil))
		case len(hs) > 0 && rank == rankCustomHistogram:
			b.addRecord(enc.CustomBucketsHistogramSamples(hs, nil))
		case len(hs) > 0:
			rec, _ := enc.HistogramSamples(hs, nil) // No custom buckets in the run.
			b.addRecord(rec)
		case len(fhs) > 0 && rank == rankCustomFloatHistogram:
			b.addRecord(enc.CustomBucketsFloatHistogramSamples(fhs, nil))
		case len(fhs) > 0:
			rec, _ := enc.FloatHistogramSamples(fhs, nil)
			b.addRecord(rec)
		}
		fs, hs, fhs = fs[:0], hs[:0], fhs[:0]
	}
	for n := range b.entries {
		e := &b.entries[n]
		for _, smp := range b.samples[e.first:e.end] {
			if rank != rankFloat {
				flush()
				rank = rankFloat
			}
			fs = append(fs, smp)
		}
		for k := e.hFirst; k < e.hEnd; k++ {
			smp := &b.hdec[k]
			if !smp.ok {
				continue
			}
			if r := smp.rank(); r != rank {
				flush()
				rank = r
			}
			if smp.h != nil {
				hs = append(hs, record.RefHistogramSample{Ref: e.s.ref, T: smp.t, H: smp.h})
			} else {
				fhs = append(fhs, record.RefFloatHistogramSample{Ref: e.s.ref, T: smp.t, FH: smp.fh})
			}
		}
	}
	flush()
}

// addRecord adds rec to the records of the push unless it is empty.
func (b *pushBatch) addRecord(rec []byte) {
	if len(rec) > 0 {
		b.recs = append(b.recs, rec)
	}
}

// applyHistogramsLocked appends the accepted histograms of e to its series,
// after its float samples, raising the head's max time, and reports whether
// a chunk was cut. The caller holds appendMu and the series' mu.
func (h *tenantHead) applyHistogramsLocked(b *pushBatch, e *pushEntry, nowMs int64) (cut bool) {
	maxT := h.maxT.Load()
	for k := e.hFirst; k < e.hEnd; k++ {
		hs := &b.hdec[k]
		if !hs.ok {
			continue
		}
		if e.s.appendAnyLocked(hs.t, 0, hs.h, hs.fh, nowMs) {
			cut = true
		}
		maxT = max(maxT, hs.t)
	}
	h.maxT.Store(maxT)
	return cut
}

// resetHistograms drops the histograms of b, for the pool.
func (b *pushBatch) resetHistograms() {
	clear(b.hdec)
	b.hdec, b.hAccepted = b.hdec[:0], 0
	b.hRank, b.hOrdered = nil, false
}
