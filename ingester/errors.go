package ingester

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// ErrNotReady means the ingester is still replaying its WAL or is stopping.
var ErrNotReady = errors.New("ingester not ready")

// ErrOutOfOrder means a sample is older than the latest sample of its series,
// or not newer than what the series already persisted.
var ErrOutOfOrder = errors.New("out of order sample")

// ErrDuplicateTimestamp means a sample has the timestamp of a sample its
// series holds in memory (or of an earlier sample of the same push) but
// another value.
var ErrDuplicateTimestamp = errors.New("duplicate sample for timestamp")

// ErrTooOld means a sample is older than the oldest time the tenant's head
// accepts (head max time minus one hour, or minus the out-of-order window
// when it is longer), or, for a tenant with an out-of-order window, older
// than its series' newest sample and outside the window.
var ErrTooOld = errors.New("sample too old")

// ErrInvalidLabels means a label set is empty, unsorted, has a duplicate or
// empty name, an empty value, or is not valid UTF-8.
var ErrInvalidLabels = errors.New("invalid label set")

// ErrInvalidHistogram means native histogram samples do not decode or are
// inconsistent.
var ErrInvalidHistogram = errors.New("invalid native histogram")

// ErrMaxSeriesPerUser means a new series was refused because its tenant has
// its share of -ingester.max-global-series-per-user on this ingester.
var ErrMaxSeriesPerUser = errors.New("per-user series limit reached")

// ErrMaxSeriesPerMetric means a new series was refused because its metric
// has its tenant's share of -ingester.max-global-series-per-metric on this
// ingester.
var ErrMaxSeriesPerMetric = errors.New("per-metric series limit reached")

// ErrWALWrite means writing a push to the WAL failed: nothing of
// that push is appended.
var ErrWALWrite = errors.New("write wal")

// ErrWALFailed means an earlier WAL write failed, so the WAL
// may end with a torn record; pushes are refused until a restart repairs it.
var ErrWALFailed = errors.New("wal failed earlier, restart required")

// ErrInvalidMatcher means a label matcher of a read request is invalid (a
// regular expression that does not compile or an unknown type).
var ErrInvalidMatcher = errors.New("invalid matcher")

// ErrInvalidAdminRequest means an admin or statistics request is invalid:
// a deletion without matchers, with matchers that all match the empty
// value, or with its start after its end; a statistics limit below 1.
var ErrInvalidAdminRequest = errors.New("invalid admin request")

// sampleError is a rejected sample with the timestamps that explain why. Its
// Error is the RejectedSeries message.
type sampleError struct {
	reason arguspb.RejectReason
	t      int64 // the rejected sample's timestamp
	ref    int64 // latest timestamp, or the minimum valid one for ErrTooOld
	window bool  // ErrTooOld: ref is the start of the out-of-order window
}

func (e sampleError) Error() string {
	switch e.reason {
	case arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER:
		return fmt.Sprintf("sample at %d is not newer than the latest sample at %d", e.t, e.ref)
	case arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP:
		return fmt.Sprintf("sample at %d has the timestamp of a stored sample but another value", e.t)
	case arguspb.RejectReason_REJECT_REASON_TOO_OLD:
		if e.window {
			return fmt.Sprintf("sample at %s (%d) is older than its series' latest sample and than %s (%d), the start of the tenant's out-of-order time window (out_of_order_time_window)", msTime(e.t), e.t, msTime(e.ref), e.ref)
		}
		return fmt.Sprintf("sample at %s (%d) is older than %s (%d), the oldest time the tenant's head accepts: "+
			"one hour before the newest sample it holds, as Prometheus's head (the out_of_order_time_window if longer), "+
			"and never past the retention period or into chunks already sealed on disk",
			msTime(e.t), e.t, msTime(e.ref), e.ref)
	}
	return fmt.Sprintf("sample at %d rejected", e.t)
}

func (e sampleError) Is(target error) bool {
	switch e.reason {
	case arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER:
		return target == ErrOutOfOrder
	case arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP:
		return target == ErrDuplicateTimestamp
	case arguspb.RejectReason_REJECT_REASON_TOO_OLD:
		return target == ErrTooOld
	}
	return false
}

// grpcError is the one place that maps the errors of this package (and of
// the packages it calls) to gRPC status codes.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrNotReady), errors.Is(err, storage.ErrClosed),
		errors.Is(err, ErrTenantFailed), errors.Is(err, ErrInstanceLimit):
		code = codes.Unavailable
	case errors.Is(err, tenant.ErrNoTenant), errors.Is(err, tenant.ErrInvalidTenant),
		errors.Is(err, ErrInvalidMatcher), errors.Is(err, ErrInvalidAdminRequest):
		code = codes.InvalidArgument
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

// tenantOf returns the valid tenant of a call's gRPC context.
func tenantOf(ctx context.Context) (string, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return "", err
	}
	return id, tenant.Validate(id)
}

// msTime renders Unix milliseconds as an RFC 3339 UTC time for messages.
func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
