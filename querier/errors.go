package querier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// ErrInvalidRequest means a series source rejected a request as invalid
// (gRPC InvalidArgument): the user has to change the query.
var ErrInvalidRequest = errors.New("invalid request")

// ErrUnavailable means a series source could not be reached or was not ready
// (gRPC Unavailable): the same query may succeed later.
var ErrUnavailable = errors.New("series source unavailable")

// ErrProtocol means a series source answered against the SeriesSource
// contract, for example with unsorted series or an unknown chunk encoding.
var ErrProtocol = errors.New("series source broke the protocol")

// sourceError is an error returned by a series source, classified by kind
// (ErrInvalidRequest, ErrUnavailable or nil for anything else). Its message
// is formatted eagerly from the gRPC status.
type sourceError struct {
	op   string // "series", "label names" or "label values"
	msg  string
	kind error
}

func (e *sourceError) Error() string { return fmt.Sprintf("%s from series source: %s", e.op, e.msg) }

// Is matches the kind. An unavailable source also matches tsdb.ErrNotReady:
// that is the one error Prometheus's API reports with errorType
// "unavailable", and the API is Prometheus's own (see api.go).
func (e *sourceError) Is(target error) bool {
	if e.kind == nil {
		return false
	}
	return target == e.kind || (e.kind == ErrUnavailable && target == tsdb.ErrNotReady)
}

// fromGRPC classifies err, returned by the SeriesSource call op made with
// ctx. It is the only place that interprets gRPC codes:
//
//	InvalidArgument            -> ErrInvalidRequest ("execution", 422)
//	Unavailable                -> ErrUnavailable    ("unavailable", 503)
//	Canceled, DeadlineExceeded -> why ctx ended when it is done, so that the
//	                              engine and the API see a cancellation
//	                              ("canceled" 499), the tenant's timeout
//	                              (503, err-argus-query-timeout) or the
//	                              query limit that stopped a fan-out
//	anything else              -> a plain error     ("execution", 422)
func fromGRPC(ctx context.Context, op string, err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s from series source: %w", op, err)
	}
	switch s.Code() {
	case codes.InvalidArgument:
		return &sourceError{op: op, msg: s.Message(), kind: ErrInvalidRequest}
	case codes.Unavailable:
		return &sourceError{op: op, msg: s.Message(), kind: ErrUnavailable}
	case codes.Canceled, codes.DeadlineExceeded:
		if ctx.Err() == nil && deadlineReached(ctx) {
			// gRPC (or the source, which got our deadline in grpc-timeout)
			// saw it pass before ctx's own timer fired.
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			return contextError(ctx, op)
		}
	}
	return &sourceError{op: op, msg: fmt.Sprintf("%s: %s", s.Code(), s.Message())}
}

// deadlineSlack is how much earlier than ctx a source may see ctx's
// deadline expire: grpc-timeout carries it truncated to at most 1ms below
// 27 hours.
const deadlineSlack = 10 * time.Millisecond

// deadlineReached reports whether ctx's deadline, if any, is at most
// deadlineSlack away.
func deadlineReached(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) <= deadlineSlack
}

// unavailableError gives err, a fan-out that could not read enough of the
// read set (it matches ErrUnavailable or ErrTooManyFailures), the ID
// err-argus-query-unavailable, and names the tenant of ctx when it has one
// (context.Background: the ring's read set failed before any tenant was
// known).
func unavailableError(ctx context.Context, err error) error {
	msg := err.Error()
	if t, terr := tenant.FromContext(ctx); terr == nil {
		msg = fmt.Sprintf("tenant %q: %s", t, msg)
	}
	return &apierror.Error{ID: apierror.QueryUnavailable, Msg: msg, Err: err}
}

// asAPIError returns the API error (an *apierror.Error) in err's tree, if
// any, else err. Its message starts with its ID, which the wrapping of
// Prometheus's engine and merge querier ("expanding series: ...") would
// otherwise bury.
func asAPIError(err error) error {
	if e, ok := errors.AsType[*apierror.Error](err); ok {
		return e
	}
	return err
}

// httpStatus is the API's error-code override (v1.OverrideErrorCode; N is
// v1's unexported error number type, inferred). It is the only place that
// picks an HTTP status for an error of ours: an error with an ID
// (internal/apierror) gets its ID's status, and the rules below cover the
// rest. Prometheus's defaults apply to every other error (400 bad_data, 422
// execution, 503 timeout, ...).
func httpStatus[N ~int](_ N, err error) (code int, override bool) {
	if id, ok := apierror.IDOf(err); ok {
		return id.Status(), true
	}
	switch {
	case errors.Is(err, ErrUnavailable):
		// Prometheus would answer 500 for errorType "unavailable".
		return http.StatusServiceUnavailable, true
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusUnprocessableEntity, true
	case errors.Is(err, ErrProtocol):
		return http.StatusInternalServerError, true
	case errors.Is(err, context.DeadlineExceeded):
		// As Prometheus answers a query timeout.
		return http.StatusServiceUnavailable, true
	case errors.Is(err, tenant.ErrNoTenant):
		return http.StatusUnauthorized, true
	}
	return 0, false
}
