package distributor

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// metricName is the label that names a series' metric.
const metricName = model.MetricNameLabel

// seriesValidator holds the stateless checks of one push. Stateful checks
// (out of order, duplicate timestamps, too old) are the ingester's.
type seriesValidator struct {
	// maxT is the latest timestamp accepted, in Unix milliseconds.
	maxT int64
	lim  *limits.Limits // the tenant's, read-only
	// symbolsASCII is set when every symbol of a remote-write 2.0 request
	// is ASCII (see valid).
	symbolsASCII bool
}

func newSeriesValidator(now time.Time, lim *limits.Limits) seriesValidator {
	return seriesValidator{maxT: now.Add(lim.CreationGracePeriod).UnixMilli(), lim: lim}
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
//  3. the tenant's limits on the number of labels and their lengths;
//  4. each native histogram sample decodes and is consistent (histogram.go;
//     only the invalid samples are rejected);
//  5. each sample, float or histogram, at most the grace period after now
//     (only those samples are rejected).
func (v seriesValidator) validate(ts *arguspb.TimeSeries) *seriesError {
	if reason, detail := normalizeLabels(ts); detail != "" {
		return &seriesError{reason: reason, detail: detail, samples: len(ts.Samples) + len(ts.Histograms)}
	}
	if reason, detail := v.checkLimits(ts.Labels); detail != "" {
		return &seriesError{reason: reason, detail: detail, samples: len(ts.Samples) + len(ts.Histograms)}
	}
	var hf histFuture
	herr := v.checkHistograms(ts, &hf)
	return joinSeriesErrors(ts, herr, v.dropFutureSamples(ts, hf))
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

// labelsSorted reports whether ls is sorted by name, as normalizeLabels
// leaves it.
func labelsSorted(ls []*arguspb.Label) bool { return slices.IsSortedFunc(ls, compareLabelNames) }

func compareLabelNames(a, b *arguspb.Label) int { return strings.Compare(a.Name, b.Name) }

// checkLimits checks the normalized labels ls against the tenant's limits and
// returns a non-empty detail, naming the limit in force, when one is
// exceeded.
func (v seriesValidator) checkLimits(ls []*arguspb.Label) (reason, string) {
	if n := len(ls); n > v.lim.MaxLabelNamesPerSeries {
		return reasonMaxLabelNames, fmt.Sprintf("the series has %d labels, over %s",
			n, apierror.LimitText("validation.max-label-names-per-series", v.lim.MaxLabelNamesPerSeries))
	}
	for _, l := range ls {
		if n := len(l.Name); n > v.lim.MaxLabelNameLength {
			return reasonLabelNameTooLong, fmt.Sprintf("label name %q is %d bytes long, over %s",
				truncate(l.Name), n, apierror.LimitText("validation.max-length-label-name", v.lim.MaxLabelNameLength))
		}
		if n := len(l.Value); n > v.lim.MaxLabelValueLength {
			return reasonLabelValueTooLong, fmt.Sprintf("the value of label %q is %d bytes long, over %s",
				truncate(l.Name), n, apierror.LimitText("validation.max-length-label-value", v.lim.MaxLabelValueLength))
		}
	}
	return 0, ""
}

// dropFutureSamples removes from ts the float samples after v.maxT, and
// reports them with the histogram samples hf that checkHistograms removed
// for the same reason.
func (v seriesValidator) dropFutureSamples(ts *arguspb.TimeSeries, hf histFuture) *seriesError {
	kept := ts.Samples[:0]
	dropped, first := hf.n, hf.first
	for _, s := range ts.Samples {
		if s.TimestampMs > v.maxT {
			if dropped == 0 || s.TimestampMs < first {
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
			dropped, v.maxT, apierror.LimitText("validation.create-grace-period", v.lim.CreationGracePeriod), first),
		samples: dropped,
		partial: len(kept)+len(ts.Histograms) > 0,
	}
}
