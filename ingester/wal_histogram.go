package ingester

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
)

// replayHistograms decodes one native histogram record and appends its
// samples as replaySamples appends float ones. Push writes Prometheus's
// integer and float records and their custom-buckets variants; the V2 forms
// (written by Prometheus with start timestamps on) are read too.
func (r *replayer) replayHistograms(dec *record.Decoder, typ record.Type, rec []byte) error {
	switch typ {
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		fhs, err := dec.FloatHistogramSamples(rec, nil)
		if err != nil {
			return fmt.Errorf("decode float histogram samples: %w", err)
		}
		for _, smp := range fhs {
			r.replayHistogram(smp.Ref, smp.T, nil, smp.FH)
		}
	default:
		hs, err := dec.HistogramSamples(rec, nil)
		if err != nil {
			return fmt.Errorf("decode histogram samples: %w", err)
		}
		for _, smp := range hs {
			r.replayHistogram(smp.Ref, smp.T, smp.H, nil)
		}
	}
	return nil
}

// replayHistogram appends one histogram sample to its series if it is newer
// than what the series holds and inside its tenant's retention (see
// replaySamples).
func (r *replayer) replayHistogram(ref chunks.HeadSeriesRef, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) {
	rr, ok := r.refs[ref]
	if !ok {
		r.st.unknown++
		return
	}
	th, s := rr.h, rr.s
	switch {
	case t < th.replayCutoff:
		r.st.expired++
		return
	case t <= rr.persisted || (t <= s.lastT && !s.lastAccepted):
		r.st.persisted++
		return
	case t <= s.lastT:
		s.mu.Lock()
		r.replayOlderAnyLocked(th, s, anyMergeSample{t: t, h: h, fh: fh})
		s.mu.Unlock()
		return
	}
	if t > th.maxT.Load() {
		th.maxT.Store(t)
	}
	s.lastT, s.lastAccepted = t, true
	s.mu.Lock()
	if s.appendAnyLocked(t, 0, h, fh, r.nowMs) && !s.queuedLocked() {
		s.setQueuedLocked(true)
		th.enqueue(s)
	}
	s.mu.Unlock()
	r.st.samples++
}

// replayOlderAnyLocked merges a WAL sample older than its series' newest,
// newer than what it persisted, into a series with native histograms
// (hist_ooo.go), unless a sample at its time is in memory. Push logged it
// only if it could merge it; a series that cannot (no histState yet, or the
// sample is among its XOR chunks) already holds it. The caller holds the
// series' mu.
func (r *replayer) replayOlderAnyLocked(h *tenantHead, s *memSeries, smp anyMergeSample) {
	if _, dup := s.sampleAtLocked(smp.t); dup || !s.histMergeableLocked(smp.t) {
		r.st.persisted++
		return
	}
	if s.mergeAnyLocked([]anyMergeSample{smp}, r.nowMs) && !s.queuedLocked() {
		s.setQueuedLocked(true)
		h.enqueue(s)
	}
	r.st.samples++
}
