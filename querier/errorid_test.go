package querier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// TestWithErrorID checks which envelopes get an ID and that every other
// field of the envelope is kept.
func TestWithErrorID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"status":"error","errorType":"bad_data","error":"1:5: parse error"}`,
			`{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: 1:5: parse error"}`},
		{`{"status":"error","errorType":"execution","error":"found duplicate series","warnings":["w"]}`,
			`{"status":"error","errorType":"execution","error":"err-argus-query-failed: found duplicate series","warnings":["w"]}`},
		// An ID already there (an error of ours wrapped by the engine).
		{`{"status":"error","errorType":"execution","error":"err-argus-max-fetched-series-per-query: x"}`,
			`{"status":"error","errorType":"execution","error":"err-argus-max-fetched-series-per-query: x"}`},
		{`{"status":"error","errorType":"canceled","error":"context canceled"}`,
			`{"status":"error","errorType":"canceled","error":"err-argus-query-canceled: context canceled"}`},
		{`{"status":"error","errorType":"timeout","error":"query timed out in query execution"}`,
			`{"status":"error","errorType":"timeout","error":"err-argus-query-timeout: query timed out in query execution"}`},
		// No route of Prometheus 3.x answers not_found today; a future one
		// gets the ID all the same.
		{`{"status":"error","errorType":"not_found","error":"no such thing"}`,
			`{"status":"error","errorType":"not_found","error":"err-argus-not-found: no such thing"}`},
		// Other types keep their text: Argus answers them with an ID of its
		// own before Prometheus's API sees them.
		{`{"status":"error","errorType":"unavailable","error":"err-argus-query-unavailable: x"}`,
			`{"status":"error","errorType":"unavailable","error":"err-argus-query-unavailable: x"}`},
	} {
		require.JSONEq(t, tc.want, string(withErrorID([]byte(tc.in))))
	}
	require.Equal(t, "not json", string(withErrorID([]byte("not json"))))
}

// TestCallerDeadlineAndCancelGetIDs runs a query that the series source
// holds through the whole API handler with a caller's deadline, then with
// a caller who cancels: Prometheus's API answers errorType timeout (503) and
// canceled (499), and both start with their ID. The tenant has no limits,
// so the deadline is the caller's, not -querier.timeout.
func TestCallerDeadlineAndCancelGetIDs(t *testing.T) {
	q, err := New(defaultConfig(t), Deps{Source: startSource(t, &heldSource{})})
	require.NoError(t, err)
	ask := func(ctx context.Context) (int, string, string) {
		form := url.Values{"query": {"up"}, "time": {"1000"}}
		req := httptest.NewRequestWithContext(tenant.With(ctx, tenantA), http.MethodGet, PathPrefix+apiRoutePrefix+"/query?"+form.Encode(), nil)
		rec := httptest.NewRecorder()
		q.Handler().ServeHTTP(rec, req)
		var env struct{ ErrorType, Error string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
		return rec.Code, env.ErrorType, env.Error
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	code, typ, msg := ask(ctx)
	require.Equal(t, http.StatusServiceUnavailable, code, msg)
	require.Equal(t, "timeout", typ)
	require.Regexp(t, `^err-argus-query-timeout: query timed out`, msg)

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	code, typ, msg = ask(ctx)
	require.Equal(t, 499, code, msg)
	require.Equal(t, "canceled", typ)
	require.Regexp(t, `^err-argus-query-canceled: query was canceled`, msg)
}

// TestMaxSamplesGetsID runs a query over more samples than
// -querier.max-samples through the whole API handler: the engine's
// ErrTooManySamples is Prometheus's errorType execution (422; cost_limit is
// only its query-cost feature's, which Argus does not turn on), and starts
// with its ID.
func TestMaxSamplesGetsID(t *testing.T) {
	_, src := newFakeSource(t)
	cfg := defaultConfig(t)
	cfg.MaxSamples = 1
	q, err := New(cfg, Deps{Source: src})
	require.NoError(t, err)
	form := url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(t0 + 600_000)}, "step": {"60"}}
	req := httptest.NewRequestWithContext(tenant.With(t.Context(), tenantA), http.MethodGet, PathPrefix+apiRoutePrefix+"/query_range?"+form.Encode(), nil)
	rec := httptest.NewRecorder()
	q.Handler().ServeHTTP(rec, req)
	var env struct{ ErrorType, Error string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, env.Error)
	require.Equal(t, "execution", env.ErrorType, env.Error)
	require.Regexp(t, `^err-argus-query-failed: query processing would load too many samples`, env.Error)
}
