package distributor

import "github.com/argus-tsdb/argus/proto/arguspb"

// reason is why samples were discarded: the fixed enum of the reason label of
// argus_discarded_samples_total. The distributor's own checks and the
// ingesters' rejections (arguspb.RejectReason) share it, so that one counter
// covers every discarded sample.
type reason uint8

const (
	reasonMissingMetricName reason = iota
	reasonInvalidMetricName
	reasonInvalidLabelName
	reasonInvalidLabelValue
	reasonDuplicateLabelNames
	reasonNativeHistograms
	reasonTooFarInFuture
	// Reasons an ingester reports.
	reasonOutOfOrder
	reasonDuplicateTimestamp
	reasonTooOld
	reasonInvalidLabels
	// reasonUnknown counts samples an ingester rejected without saying why
	// (REJECT_REASON_UNSPECIFIED, or samples beyond the series it lists).
	reasonUnknown

	numReasons
)

// reasonInfo is, per reason, its metric label value, the text of the
// response body and the sentinel error that errors.Is matches.
var reasonInfo = [numReasons]struct {
	label    string
	text     string
	sentinel error
}{
	reasonMissingMetricName:   {"missing_metric_name", "missing metric name", ErrMissingMetricName},
	reasonInvalidMetricName:   {"invalid_metric_name", "invalid metric name", ErrInvalidMetricName},
	reasonInvalidLabelName:    {"invalid_label_name", "invalid label name", ErrInvalidLabelName},
	reasonInvalidLabelValue:   {"invalid_label_value", "invalid label value", ErrInvalidLabelValue},
	reasonDuplicateLabelNames: {"duplicate_label_names", "duplicate label names", ErrDuplicateLabelNames},
	reasonNativeHistograms:    {"native_histograms_unsupported", "native histograms not supported yet", ErrNativeHistograms},
	reasonTooFarInFuture:      {"too_far_in_future", "too far in the future", ErrTooFarInFuture},
	reasonOutOfOrder:          {"out_of_order", "out of order sample", ErrIngesterRejected},
	reasonDuplicateTimestamp:  {"duplicate_timestamp", "duplicate sample for timestamp", ErrIngesterRejected},
	reasonTooOld:              {"too_old", "sample too old", ErrIngesterRejected},
	reasonInvalidLabels:       {"invalid_labels", "invalid labels", ErrIngesterRejected},
	reasonUnknown:             {"unknown", "rejected by ingester", ErrIngesterRejected},
}

func (r reason) label() string   { return reasonInfo[r].label }
func (r reason) text() string    { return reasonInfo[r].text }
func (r reason) sentinel() error { return reasonInfo[r].sentinel }

// reasonFromProto maps an ingester's reject reason.
func reasonFromProto(r arguspb.RejectReason) reason {
	switch r {
	case arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER:
		return reasonOutOfOrder
	case arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP:
		return reasonDuplicateTimestamp
	case arguspb.RejectReason_REJECT_REASON_TOO_OLD:
		return reasonTooOld
	case arguspb.RejectReason_REJECT_REASON_INVALID_LABELS:
		return reasonInvalidLabels
	default:
		return reasonUnknown
	}
}
