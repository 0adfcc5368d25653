package distributor

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// histFuture counts the histogram samples checkHistograms removed for being
// after the validator's max time, for dropFutureSamples to report.
type histFuture struct {
	n     int
	first int64 // the earliest of them
}

// checkHistograms removes from ts the native histogram samples that do not
// decode as a prompb.Histogram or that Prometheus's own validation refuses
// (spans that do not match the buckets, a count other than the buckets'
// sum, negative buckets, an unknown schema, custom bounds on an exponential
// schema or bounds that do not increase), and those later than v.maxT
// (counted in hf). The ingesters decode the ones kept again: the request
// forwards the bytes as they came. It returns the error of the invalid ones,
// naming the first's reason, or nil.
func (v seriesValidator) checkHistograms(ts *arguspb.TimeSeries, hf *histFuture) *seriesError {
	if len(ts.Histograms) == 0 {
		return nil
	}
	kept := ts.Histograms[:0]
	invalid, firstT := 0, int64(0)
	var firstErr error
	for _, b := range ts.Histograms {
		t, err := validateHistogram(b)
		switch {
		case err != nil:
			if invalid == 0 {
				firstErr, firstT = err, t
			}
			invalid++
		case t > v.maxT:
			if hf.n == 0 || t < hf.first {
				hf.first = t
			}
			hf.n++
		default:
			kept = append(kept, b)
		}
	}
	clear(ts.Histograms[len(kept):])
	ts.Histograms = kept
	if invalid == 0 {
		return nil
	}
	return &seriesError{
		reason:  reasonInvalidHistogram,
		detail:  fmt.Sprintf("%d histogram samples refused, the first at %d ms: %v", invalid, firstT, firstErr),
		samples: invalid,
		partial: len(kept)+len(ts.Samples) > 0,
	}
}

// validateHistogram decodes one histogram sample and validates it as
// Prometheus's head would after its remote-write receiver: a schema above 8
// in the reserved range is first reduced to 8 (on a copy; the ingester
// reduces it again). It returns the sample's timestamp.
func validateHistogram(b []byte) (int64, error) {
	var ph prompb.Histogram
	if err := ph.Unmarshal(b); err != nil {
		return 0, fmt.Errorf("malformed histogram: %w", err)
	}
	if !histogram.IsKnownSchema(ph.Schema) {
		return ph.Timestamp, histogram.UnknownSchemaError(ph.Schema)
	}
	if ph.IsFloatHistogram() {
		fh := ph.ToFloatHistogram()
		if fh.Schema > histogram.ExponentialSchemaMax && !histogram.IsCustomBucketsSchema(fh.Schema) {
			if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
				return ph.Timestamp, err
			}
		}
		return ph.Timestamp, fh.Validate()
	}
	h := ph.ToIntHistogram()
	if h.Schema > histogram.ExponentialSchemaMax && !histogram.IsCustomBucketsSchema(h.Schema) {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return ph.Timestamp, err
		}
	}
	return ph.Timestamp, h.Validate()
}

// joinSeriesErrors returns the error of a series refused for both invalid
// histograms (herr) and samples in the future (ferr), or the one that is
// not nil. Both count under herr's reason: one error per series.
func joinSeriesErrors(ts *arguspb.TimeSeries, herr, ferr *seriesError) *seriesError {
	switch {
	case herr == nil:
		return ferr
	case ferr == nil:
		return herr
	}
	herr.detail += "; and " + ferr.reason.text() + ": " + ferr.detail
	herr.samples += ferr.samples
	herr.partial = len(ts.Samples)+len(ts.Histograms) > 0
	return herr
}
