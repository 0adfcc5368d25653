package distributor

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// metricName is the label that names a series' metric.
const metricName = model.MetricNameLabel

// seriesValidator holds the stateless checks of one push. Stateful checks
// (out of order, duplicate timestamps, too old) are the ingester's.
type seriesValidator struct {
	// maxT is the latest timestamp accepted, in Unix milliseconds.
	maxT  int64
	grace time.Duration
}

func newSeriesValidator(now time.Time, grace time.Duration) seriesValidator {
	return seriesValidator{maxT: now.Add(grace).UnixMilli(), grace: grace}
}

// validate checks ts and fixes it in place as Prometheus's receiver and head
// would: labels sorted by name, labels with an empty value (the same as an
// absent label) removed, samples too far in the future removed. It returns
// nil if ts is valid as sent. Otherwise the seriesError says why, how many
// samples were rejected and whether the rest of ts (partial) is still to be
// pushed. The checks, in order, and the first that fails wins:
//
//  1. label names: no duplicate, non-empty valid UTF-8;
//  2. label values: valid UTF-8; __name__ present and non-empty;
//  3. no native histogram samples (the whole series is rejected, its float
//     samples too, so that a series is never half stored);
//  4. each sample at most grace after now (only those samples are rejected).
func (v seriesValidator) validate(ts *arguspb.TimeSeries) *seriesError {
	if reason, detail := normalizeLabels(ts); detail != "" {
		return &seriesError{reason: reason, detail: detail, samples: len(ts.Samples) + len(ts.Histograms)}
	}
	if len(ts.Histograms) > 0 {
		return &seriesError{
			reason:  reasonNativeHistograms,
			detail:  fmt.Sprintf("%d histogram and %d float samples rejected with the series", len(ts.Histograms), len(ts.Samples)),
			samples: len(ts.Histograms) + len(ts.Samples),
		}
	}
	return v.dropFutureSamples(ts)
}

// normalizeLabels sorts the labels of ts by name if needed, checks them and
// removes the empty-valued ones. It returns a non-empty detail when they are
// invalid.
func normalizeLabels(ts *arguspb.TimeSeries) (reason, string) {
	ls := ts.Labels
	if !slices.IsSortedFunc(ls, compareLabelNames) {
		slices.SortStableFunc(ls, compareLabelNames)
	}
	hasName := false
	for i, l := range ls {
		switch {
		case i > 0 && l.Name == ls[i-1].Name:
			return reasonDuplicateLabelNames, fmt.Sprintf("label name %q appears more than once", l.Name)
		case !model.UTF8Validation.IsValidLabelName(l.Name):
			return reasonInvalidLabelName, fmt.Sprintf("label name %q is empty or not valid UTF-8", l.Name)
		case l.Name == metricName && l.Value != "":
			if !model.UTF8Validation.IsValidMetricName(l.Value) {
				return reasonInvalidMetricName, fmt.Sprintf("metric name %q is not valid UTF-8", l.Value)
			}
			hasName = true
		case !utf8.ValidString(l.Value):
			return reasonInvalidLabelValue, fmt.Sprintf("value %q of label %q is not valid UTF-8", l.Value, l.Name)
		}
	}
	if !hasName {
		return reasonMissingMetricName, "the series has no " + metricName + " label, or an empty one"
	}
	ts.Labels = slices.DeleteFunc(ls, func(l *arguspb.Label) bool { return l.Value == "" })
	return 0, ""
}

func compareLabelNames(a, b *arguspb.Label) int { return strings.Compare(a.Name, b.Name) }

// dropFutureSamples removes from ts the samples after v.maxT.
func (v seriesValidator) dropFutureSamples(ts *arguspb.TimeSeries) *seriesError {
	kept := ts.Samples[:0]
	dropped, first := 0, int64(0)
	for _, s := range ts.Samples {
		if s.TimestampMs > v.maxT {
			if dropped == 0 {
				first = s.TimestampMs
			}
			dropped++
			continue
		}
		kept = append(kept, s)
	}
	if dropped == 0 {
		return nil
	}
	clear(ts.Samples[len(kept):])
	ts.Samples = kept
	return &seriesError{
		reason: reasonTooFarInFuture,
		detail: fmt.Sprintf("%d samples after %d ms (now + %s), the first at %d ms",
			dropped, v.maxT, v.grace, first),
		samples: dropped,
		partial: len(kept) > 0,
	}
}
