package distributor

import (
	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// reason is why samples were discarded: the fixed enum of the reason label of
// argus_discarded_samples_total. The distributor's own checks and the
// ingesters' rejections (arguspb.RejectReason) share it, so that one counter
// covers every discarded sample. Each reason has the error ID of the
// contract (internal/apierror) that its rejections are reported with.
type reason uint8

const (
	reasonMissingMetricName reason = iota
	reasonInvalidMetricName
	reasonInvalidLabelName
	reasonInvalidLabelValue
	reasonDuplicateLabelNames
	reasonMaxLabelNames
	reasonLabelNameTooLong
	reasonLabelValueTooLong
	reasonInvalidHistogram
	reasonTooFarInFuture
	// reasonRateLimited counts the valid samples of pushes refused with 429.
	reasonRateLimited
	// Reasons an ingester reports.
	reasonOutOfOrder
	reasonDuplicateTimestamp
	reasonTooOld
	reasonInvalidLabels
	reasonPerUserSeriesLimit
	reasonPerMetricSeriesLimit
	// reasonUnknown counts samples an ingester rejected without saying why
	// (REJECT_REASON_UNSPECIFIED, or samples beyond the series it lists).
	reasonUnknown
	// reasonRW2InvalidReference counts the samples of remote-write 2.0
	// series whose symbol references are bad.
	reasonRW2InvalidReference
	// reasonOTLPTemporality counts the OTLP data points refused for their
	// temporality (delta or unspecified).
	reasonOTLPTemporality

	numReasons
)

// reasonInfo is, per reason, its metric label value, the text of the
// response body, the sentinel error that errors.Is matches and the error ID.
var reasonInfo = [numReasons]struct {
	label    string
	text     string
	sentinel error
	id       apierror.ID
}{
	reasonMissingMetricName:    {"missing_metric_name", "missing metric name", ErrMissingMetricName, apierror.MissingMetricName},
	reasonInvalidMetricName:    {"invalid_metric_name", "invalid metric name", ErrInvalidMetricName, apierror.InvalidMetricName},
	reasonInvalidLabelName:     {"invalid_label_name", "invalid label name", ErrInvalidLabelName, apierror.InvalidLabelName},
	reasonInvalidLabelValue:    {"invalid_label_value", "invalid label value", ErrInvalidLabelValue, apierror.InvalidLabelValue},
	reasonDuplicateLabelNames:  {"duplicate_label_names", "duplicate label names", ErrDuplicateLabelNames, apierror.DuplicateLabelNames},
	reasonMaxLabelNames:        {"max_label_names_per_series", "too many labels", ErrTooManyLabels, apierror.MaxLabelNamesPerSeries},
	reasonLabelNameTooLong:     {"label_name_too_long", "label name too long", ErrLabelNameTooLong, apierror.LabelNameTooLong},
	reasonLabelValueTooLong:    {"label_value_too_long", "label value too long", ErrLabelValueTooLong, apierror.LabelValueTooLong},
	reasonInvalidHistogram:     {"invalid_native_histogram", "invalid native histogram", ErrInvalidNativeHistogram, apierror.InvalidNativeHistogram},
	reasonTooFarInFuture:       {"too_far_in_future", "too far in the future", ErrTooFarInFuture, apierror.TooFarInFuture},
	reasonRateLimited:          {"rate_limited", "ingestion rate limited", ErrRateLimited, apierror.IngestionRateLimited},
	reasonOutOfOrder:           {"out_of_order", "out of order sample", ErrIngesterRejected, apierror.SampleOutOfOrder},
	reasonDuplicateTimestamp:   {"duplicate_timestamp", "duplicate sample for timestamp", ErrIngesterRejected, apierror.SampleDuplicate},
	reasonTooOld:               {"too_old", "sample too old", ErrIngesterRejected, apierror.SampleTooOld},
	reasonInvalidLabels:        {"invalid_labels", "invalid labels", ErrIngesterRejected, apierror.IngesterInvalidLabels},
	reasonPerUserSeriesLimit:   {"per_user_series_limit", "per-tenant series limit reached", ErrSeriesLimit, apierror.MaxSeriesPerUser},
	reasonPerMetricSeriesLimit: {"per_metric_series_limit", "per-metric series limit reached", ErrSeriesLimit, apierror.MaxSeriesPerMetric},
	reasonUnknown:              {"unknown", "rejected by ingester", ErrIngesterRejected, apierror.IngesterRejected},
	reasonRW2InvalidReference:  {"rw2_invalid_symbol_reference", "invalid remote write 2.0 symbol reference", ErrRW2InvalidReference, apierror.RW2InvalidReference},
	reasonOTLPTemporality:      {"otlp_delta_temporality", "OTLP temporality refused", ErrOTLPTemporality, apierror.OTLPDeltaTemporality},
}

func (r reason) label() string        { return reasonInfo[r].label }
func (r reason) text() string         { return reasonInfo[r].text }
func (r reason) sentinel() error      { return reasonInfo[r].sentinel }
func (r reason) errorID() apierror.ID { return reasonInfo[r].id }

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
	case arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT:
		return reasonPerUserSeriesLimit
	case arguspb.RejectReason_REJECT_REASON_PER_METRIC_SERIES_LIMIT:
		return reasonPerMetricSeriesLimit
	default:
		return reasonUnknown
	}
}
