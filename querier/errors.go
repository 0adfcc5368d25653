package querier

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/prometheus/tsdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
//	Canceled, DeadlineExceeded -> ctx.Err() when ctx is done, so that the
//	                              engine and the API see a cancellation or
//	                              timeout ("canceled" 499, 503)
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
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s from series source: %w", op, ctxErr)
		}
	}
	return &sourceError{op: op, msg: fmt.Sprintf("%s: %s", s.Code(), s.Message())}
}

// httpStatus is the API's error-code override (v1.OverrideErrorCode; N is
// v1's unexported error number type, inferred). It is the only place that
// picks an HTTP status for an error of ours; Prometheus's defaults apply to
// every other error (400 bad_data, 422 execution, 503 timeout, ...).
func httpStatus[N ~int](_ N, err error) (code int, override bool) {
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
