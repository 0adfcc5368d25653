package querier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// The timeout in force is the tenant's -querier.timeout, a per-tenant limit
// that a runtime reload may change, so it cannot be the PromQL engine's
// Timeout, which is one value fixed when the engine is built. Instead
// withQueryLimits gives each request the deadline of its tenant, with the
// timeout's API error as the context's cause (context.WithTimeoutCause),
// and the engine's own Timeout is engineTimeout, too long to ever cut a
// query first.
//
// Prometheus's API formats the engine's timeout itself: the engine turns a
// done context into promql.ErrQueryTimeout ("query timed out in expression
// evaluation"), and the API writes that error's text, while its
// OverrideErrorCode hook (httpStatus) can only pick the status. The error
// must therefore be ours before it reaches the API. The cause of the
// request's context says why it ended, so:
//
//   - an error that a read returns because the context ended is the cause
//     (fromGRPC, fanOut), and the engine passes a storage error through;
//   - an error that the engine makes itself because the context ended
//     (waiting for a query slot, or between steps of the evaluation) is
//     replaced by the cause when the query is built or returns
//     (apiErrorEngine).
//
// The cause is an *apierror.Error that also matches promql.ErrQueryTimeout
// and context.DeadlineExceeded, so that the API reports it with errorType
// "timeout", as it does any query timeout. This keeps Prometheus's API and
// its JSON untouched, unlike rewriting response bodies, and does not bend
// the context contract, unlike a context whose Err is not one of the two
// context errors. A client's own shorter "timeout" parameter ends its
// context with a plain context.DeadlineExceeded cause and is answered as
// Prometheus answers it.

// engineTimeout is the PromQL engine's own Timeout: a backstop far above any
// sensible -querier.timeout, so that the tenant's deadline always comes
// first.
const engineTimeout = 100 * 365 * 24 * time.Hour

// timeoutError is the error of a request that ran past the timeout of
// tenantID, and the cause of the request's context.
func timeoutError(tenantID string, timeout time.Duration) *apierror.Error {
	return &apierror.Error{
		ID: apierror.QueryTimeout,
		Msg: fmt.Sprintf("tenant %q: the query ran longer than %s and was aborted",
			tenantID, apierror.LimitText("querier.timeout", timeout)),
		Err: errors.Join(context.DeadlineExceeded, promql.ErrQueryTimeout("the tenant's timeout")),
	}
}

// contextError returns why ctx, which is done, ended: its cause when that
// is an API error (the tenant's timeout, or a query limit that stopped a
// fan-out), else ctx.Err() wrapped as "<op> from series source".
func contextError(ctx context.Context, op string) error {
	if cause := context.Cause(ctx); cause != nil {
		if _, ok := apierror.IDOf(cause); ok {
			return cause
		}
	}
	return fmt.Errorf("%s from series source: %w", op, ctx.Err())
}

// apiErrorEngine is a promql.QueryEngine whose queries fail with our API
// errors as they are: a query limit or the tenant's timeout, even when the
// engine wrapped it ("expanding series: ...") or made its own timeout error
// at the tenant's deadline (apiErrorOf). The API's message then starts with
// the ID, as every API error's does. It passes everything else through; the
// query-cost feature, which would need promql.QuerySlotAcquirer, is
// disabled (api.go).
type apiErrorEngine struct {
	promql.QueryEngine
}

// NewInstantQuery builds the query; building it waits for a query slot, so
// it may already fail at the tenant's deadline.
func (e apiErrorEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	qry, err := e.QueryEngine.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil {
		return nil, apiErrorOf(ctx, err)
	}
	return apiErrorQuery{qry}, nil
}

// NewRangeQuery is as NewInstantQuery.
func (e apiErrorEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	qry, err := e.QueryEngine.NewRangeQuery(ctx, q, opts, qs, start, end, interval)
	if err != nil {
		return nil, apiErrorOf(ctx, err)
	}
	return apiErrorQuery{qry}, nil
}

// apiErrorQuery is a query that fails with apiErrorOf its error.
type apiErrorQuery struct {
	promql.Query
}

func (q apiErrorQuery) Exec(ctx context.Context) *promql.Result {
	res := q.Query.Exec(ctx)
	if res.Err != nil {
		res.Err = apiErrorOf(ctx, res.Err)
	}
	return res
}

// apiErrorOf returns the API error in err's tree, if any; else the tenant's
// timeout error when err is a timeout and ctx ended at the tenant's
// deadline; else err.
func apiErrorOf(ctx context.Context, err error) error {
	if _, ok := apierror.IDOf(err); ok {
		return asAPIError(err)
	}
	if ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if id, ok := apierror.IDOf(cause); !ok || id != apierror.QueryTimeout {
		return err
	}
	if _, ok := errors.AsType[promql.ErrQueryTimeout](err); ok || errors.Is(err, context.DeadlineExceeded) {
		return cause
	}
	return err
}
