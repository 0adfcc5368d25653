package distributor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// Request-level errors: each fails a whole push and maps to one HTTP status in
// httpStatusFor.
var (
	// ErrMethodNotAllowed means a push used another method than POST.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrUnsupportedEncoding means the Content-Encoding is not snappy.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrUnsupportedContentType means the Content-Type is not a remote-write 1.0 protobuf.
	ErrUnsupportedContentType = errors.New("unsupported content type")
	// ErrBodyTooLarge means the compressed body is larger than -distributor.max-recv-msg-size.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrDecodedTooLarge means the snappy-decoded body would be larger than -distributor.max-recv-msg-size.
	ErrDecodedTooLarge = errors.New("decoded request too large")
	// ErrReadBody means the body could not be read from the connection.
	ErrReadBody = errors.New("read request body")
	// ErrDecodeSnappy means the body is not a valid snappy block.
	ErrDecodeSnappy = errors.New("decode snappy")
	// ErrDecodeProtobuf means the decoded body is not a valid WriteRequest.
	ErrDecodeProtobuf = errors.New("decode protobuf")
	// ErrSeriesRejected means some series or samples were not stored; the rest were.
	ErrSeriesRejected = errors.New("series rejected")
	// ErrNoIngester means the ring could not place a series on a write quorum of healthy ingesters.
	ErrNoIngester = errors.New("no ingester for series")
	// ErrIngesterPush means a push to an ingester failed: nothing it was sent may be assumed stored.
	ErrIngesterPush = errors.New("push to ingester failed")
	// ErrQuorumNotReached means some series were not acknowledged by a write quorum of their replicas.
	ErrQuorumNotReached = errors.New("write quorum not reached")
	// ErrPoolClosed means a ClientPool was used after Close.
	ErrPoolClosed = errors.New("client pool closed")
	// ErrRateLimited means the push would take the tenant over its ingestion
	// rate limit; nothing of it was stored.
	ErrRateLimited = errors.New("ingestion rate limited")
)

// Series-level errors: each rejects one series (or some of its samples) and
// is counted under its reason; the request goes on with the other series.
var (
	// ErrMissingMetricName means a series has no __name__ label or an empty one.
	ErrMissingMetricName = errors.New("missing metric name")
	// ErrInvalidMetricName means the __name__ value is not a valid metric name.
	ErrInvalidMetricName = errors.New("invalid metric name")
	// ErrInvalidLabelName means a label name is empty or not valid UTF-8.
	ErrInvalidLabelName = errors.New("invalid label name")
	// ErrInvalidLabelValue means a label value is not valid UTF-8.
	ErrInvalidLabelValue = errors.New("invalid label value")
	// ErrDuplicateLabelNames means a label name occurs twice in one series.
	ErrDuplicateLabelNames = errors.New("duplicate label names")
	// ErrTooManyLabels means a series has more labels than -validation.max-label-names-per-series.
	ErrTooManyLabels = errors.New("too many labels")
	// ErrLabelNameTooLong means a label name is longer than -validation.max-length-label-name.
	ErrLabelNameTooLong = errors.New("label name too long")
	// ErrLabelValueTooLong means a label value is longer than -validation.max-length-label-value.
	ErrLabelValueTooLong = errors.New("label value too long")
	// ErrSeriesLimit means an ingester refused a new series at a per-tenant series limit.
	ErrSeriesLimit = errors.New("series limit reached")
	// ErrInvalidNativeHistogram means native histogram samples of a series
	// do not decode or are inconsistent.
	ErrInvalidNativeHistogram = errors.New("invalid native histogram")
	// ErrTooFarInFuture means a sample is later than now plus the creation grace period.
	ErrTooFarInFuture = errors.New("too far in the future")
	// ErrRW2InvalidReference means a remote-write 2.0 series refers to a
	// symbol its request does not have, or has an odd number of label references.
	ErrRW2InvalidReference = errors.New("invalid remote write 2.0 symbol reference")
	// ErrOTLPTemporality means an OTLP metric has a temporality the tenant
	// does not take: delta (without native delta ingestion) or unspecified.
	ErrOTLPTemporality = errors.New("OTLP temporality refused")
	// ErrIngesterRejected means an ingester did not append some samples of a series.
	ErrIngesterRejected = errors.New("rejected by ingester")
)

// seriesError says why a series, or some of its samples, was rejected. Its
// message is formatted when it is made, because the labels it describes may
// alias a pooled buffer.
type seriesError struct {
	reason reason
	detail string
	// samples is the number of samples (float and histogram) rejected.
	samples int
	// partial is set when only some samples were rejected and the rest of
	// the series is still pushed.
	partial bool
}

func (e *seriesError) Error() string {
	return string(e.reason.errorID()) + ": " + e.reason.text() + ": " + e.detail
}

// Is makes errors.Is(err, ErrTooFarInFuture) and the like match.
func (e *seriesError) Is(target error) bool { return target == e.reason.sentinel() }

// ingesterError is the failure of one push to one ingester.
type ingesterError struct {
	addr string
	err  error
}

func (e *ingesterError) Error() string { return fmt.Sprintf("push to ingester %s: %v", e.addr, e.err) }
func (e *ingesterError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrIngesterPush) match.
func (e *ingesterError) Is(target error) bool { return target == ErrIngesterPush }

// quorumError is the failure of a push some of whose series were not
// acknowledged by a write quorum (ReplicationFactor/2+1) of their replicas
// because ingester pushes failed. errs are the failures of every ingester
// push of the request, in the order the ingesters were first used.
type quorumError struct {
	series int    // series that did not reach a quorum
	first  string // the first of them, formatted
	quorum int
	rf     int
	errs   []*ingesterError
}

// Error names every failed ingester, one a line. With replication factor 1
// a series that failed is simply a failed ingester, and the message is the
// ingesters' errors alone, as it was before replication.
func (e *quorumError) Error() string {
	var b strings.Builder
	if e.rf > 1 {
		fmt.Fprintf(&b, "%s for %d series (the first %s): each needs %d of its %d replicas", ErrQuorumNotReached, e.series, e.first, e.quorum, e.rf)
	}
	for i, ie := range e.errs {
		if i > 0 || e.rf > 1 {
			b.WriteByte('\n')
		}
		b.WriteString(ie.Error())
	}
	return b.String()
}

// Unwrap gives the ingester failures, so that errors.Is(err, ErrIngesterPush)
// and status.Code on the first failure match.
func (e *quorumError) Unwrap() []error {
	out := make([]error, len(e.errs))
	for i, ie := range e.errs {
		out[i] = ie
	}
	return out
}

// Is makes errors.Is(err, ErrQuorumNotReached) match.
func (e *quorumError) Is(target error) bool { return target == ErrQuorumNotReached }

// rejectedError is the answer to a push some of whose series were rejected.
// Its message is the whole response body, formatted eagerly; id is the error
// ID of the first rejected series, which the body starts with.
type rejectedError struct {
	id   apierror.ID
	body string
}

func (e *rejectedError) Error() string { return e.body }

// Is makes errors.Is(err, ErrSeriesRejected) match.
func (e *rejectedError) Is(target error) bool { return target == ErrSeriesRejected }

// rateLimitedError refuses a push over the tenant's ingestion rate.
type rateLimitedError struct {
	msg        string
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrRateLimited) match.
func (e *rateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// errorID is the one place that maps an error of the write path to its ID in
// the error contract (internal/apierror), and through it to the HTTP status
// answered to the sender. Prometheus retries 5xx (and 429 when so
// configured) and drops the data on any other status, so:
//   - a request that can never succeed (malformed, too large, invalid series,
//     series over a limit) is a 4xx;
//   - a request over the tenant's ingestion rate is a 429 with Retry-After;
//   - a request that may succeed later (an ingester down or slow) is a 5xx.
//
// See docs/errors.md for the full table.
func errorID(err error) apierror.ID {
	if id, ok := apierror.IDOf(err); ok {
		return id
	}
	if re, ok := errors.AsType[*rejectedError](err); ok {
		return re.id
	}
	switch {
	case errors.Is(err, tenant.ErrNoTenant):
		return apierror.MissingTenant
	case errors.Is(err, tenant.ErrInvalidTenant):
		return apierror.InvalidTenant
	case errors.Is(err, ErrMethodNotAllowed):
		return apierror.MethodNotAllowed
	case errors.Is(err, ErrUnsupportedEncoding), errors.Is(err, ErrUnsupportedContentType):
		return apierror.UnsupportedMediaType
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrDecodedTooLarge):
		return apierror.RequestTooLarge
	case errors.Is(err, ErrReadBody), errors.Is(err, ErrDecodeSnappy), errors.Is(err, ErrDecodeProtobuf), errors.Is(err, ErrDecodeOTLP):
		return apierror.MalformedRequest
	case errors.Is(err, ErrRateLimited):
		return apierror.IngestionRateLimited
	case errors.Is(err, ErrNoIngester):
		return apierror.TooFewIngesters
	case errors.Is(err, ErrIngesterPush):
		if ingesterStatus(err) == http.StatusServiceUnavailable {
			if id, ok := ingesterErrorID(err); ok {
				return id
			}
			return apierror.IngesterUnavailable
		}
		return apierror.IngesterFailed
	default:
		return apierror.Internal
	}
}

// httpStatusFor is the HTTP status of the outcome of a push: 204 on success,
// else the status of its error ID.
func httpStatusFor(err error) int {
	if err == nil {
		return http.StatusNoContent
	}
	return errorID(err).Status()
}

// ingesterStatus maps failed ingester pushes: 503 when every failed ingester
// was unreachable, overloaded or slow, 500 otherwise. Both are retried.
func ingesterStatus(err error) int {
	if qe, ok := errors.AsType[*quorumError](err); ok {
		for _, ie := range qe.errs {
			if !transient(ie.err) {
				return http.StatusInternalServerError
			}
		}
		return http.StatusServiceUnavailable
	}
	if transient(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// transient reports whether the failure of one ingester push may pass by
// itself: the ingester is unreachable (connection refused), overloaded or
// slow.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled:
		return true
	default:
		return false
	}
}
