package querier

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/client/promjson"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// serveGRPC serves q's gRPC query API as cmd does: behind the auth
// interceptors (the X-Scope-OrgID header, multi-tenancy on), with the
// Argus codec.
func serveGRPC(t testing.TB, q *Querier) string {
	t.Helper()
	a, err := auth.New(auth.Config{Type: auth.TypeHeader}, auth.Options{MultitenancyEnabled: true}, auth.Deps{})
	require.NoError(t, err)
	prefix := "/" + QueryServiceName + "/"
	s := grpc.NewServer(grpccodec.ServerOption(),
		grpc.ChainStreamInterceptor(a.StreamInterceptor(prefix, auth.OneTenant)),
		grpc.ChainUnaryInterceptor(a.UnaryInterceptor(prefix, auth.OneTenant)))
	argusquerypb.RegisterQueryServer(s, q.QueryServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func dialTest(t testing.TB, addr, tenantID string) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, client.Options{Tenant: tenantID})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// httpEnvelope is the HTTP API's answer.
type httpEnvelope struct {
	Status   string          `json:"status"`
	Data     json.RawMessage `json:"data"`
	Error    string          `json:"error"`
	Warnings []string        `json:"warnings"`
	Infos    []string        `json:"infos"`
}

// TestQueryServer_MatchesHTTP asks the same queries over gRPC and over
// HTTP: the gRPC result rendered by promjson must be the HTTP data byte for
// byte, with the same warnings, and a refusal the same text.
func TestQueryServer_MatchesHTTP(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	c := dialTest(t, serveGRPC(t, q), tenantA)
	start, end := t0, t0+2*60*60_000
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	ranges := []struct {
		expr string
		step int64
	}{
		{`sum by (job) (rate(http_requests_total[2m]))`, 30_000},
		{`histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))`, 120_000},
		{`temperature`, 15_000},
		{`up`, 1_000},
		{`up`, 0},
		{`sum(rate(`, 60_000},
		{`rate(temperature[5m])`, 60_000}, // an info annotation
	}
	for _, r := range ranges {
		form := url.Values{"query": {r.expr}, "start": {secs(start)}, "end": {secs(end)}, "step": {strconv.FormatInt(r.step/1000, 10)}}
		want := apiRequest{http.MethodGet, "/api/v1/query_range", form, tenantA}.do(t, srv)
		res, err := c.QueryRange(t.Context(), client.RangeQuery{Expr: r.expr, Start: at(start), End: at(end), Step: time.Duration(r.step) * time.Millisecond})
		requireSameAnswer(t, r.expr, want, res, err)
	}
	for _, in := range []struct {
		expr string
		at   int64
	}{
		{`topk(3, rate(http_requests_total[5m]))`, end},
		{`count by (room) (temperature) or vector(0)`, t0 + 30*60_000},
		{`scalar(sum(up))`, t0 + 30*60_000},
		{`"a string"`, t0},
		{`http_requests_total[1m]`, t0 + 30*60_000},
		{`1 +`, t0},
	} {
		want := apiRequest{http.MethodGet, "/api/v1/query", url.Values{"query": {in.expr}, "time": {secs(in.at)}}, tenantA}.do(t, srv)
		res, err := c.Query(t.Context(), client.InstantQuery{Expr: in.expr, Time: at(in.at)})
		requireSameAnswer(t, in.expr, want, res, err)
	}
}

func requireSameAnswer(t *testing.T, name string, want apiResponse, res *client.Result, err error) {
	t.Helper()
	var env httpEnvelope
	require.NoError(t, json.Unmarshal([]byte(want.body), &env), name)
	if env.Status != "success" {
		require.Error(t, err, name)
		require.Equal(t, env.Error, err.Error(), name)
		return
	}
	require.NoError(t, err, name)
	got, err := promjson.Data(res)
	require.NoError(t, err, name)
	require.JSONEq(t, string(env.Data), string(got), name)
	require.Equal(t, string(env.Data), string(got), name)
	// Prometheus keeps annotations in a map: their order differs between
	// two HTTP answers to the same query too.
	require.ElementsMatch(t, env.Warnings, res.Warnings, name)
	require.ElementsMatch(t, env.Infos, res.Infos, name)
}

// TestQueryServer_SeriesAndLabels compares the series and labels calls with
// their HTTP endpoints.
func TestQueryServer_SeriesAndLabels(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	c := dialTest(t, serveGRPC(t, q), tenantA)
	start, end := t0, t0+2*60*60_000
	sel := func(limit int, ms ...string) client.Selection {
		return client.Selection{Matchers: ms, Start: time.UnixMilli(start), End: time.UnixMilli(end), Limit: limit}
	}
	form := func(limit int, ms ...string) url.Values {
		v := url.Values{"start": {secs(start)}, "end": {secs(end)}, "match[]": ms}
		if limit > 0 {
			v.Set("limit", strconv.Itoa(limit))
		}
		return v
	}
	for _, ms := range [][]string{{"up"}, {"up", "temperature"}, {`{__name__=~".+"}`}} {
		for _, limit := range []int{0, 3} {
			want := apiRequest{http.MethodGet, "/api/v1/series", form(limit, ms...), tenantA}.do(t, srv)
			sets, warnings, err := c.Series(t.Context(), sel(limit, ms...))
			require.NoError(t, err)
			var env httpEnvelope
			require.NoError(t, json.Unmarshal([]byte(want.body), &env))
			got, err := json.Marshal(sets)
			require.NoError(t, err)
			require.JSONEq(t, string(env.Data), string(got))
			require.Equal(t, env.Warnings, nonNil(warnings))

			want = apiRequest{http.MethodGet, "/api/v1/labels", form(limit, ms...), tenantA}.do(t, srv)
			names, _, err := c.LabelNames(t.Context(), sel(limit, ms...))
			require.NoError(t, err)
			requireSameStrings(t, want, names)

			want = apiRequest{http.MethodGet, "/api/v1/label/job/values", form(limit, ms...), tenantA}.do(t, srv)
			vals, _, err := c.LabelValues(t.Context(), "job", sel(limit, ms...))
			require.NoError(t, err)
			requireSameStrings(t, want, vals)
		}
	}
	_, _, err := c.Series(t.Context(), client.Selection{})
	want := apiRequest{http.MethodGet, "/api/v1/series", nil, tenantA}.do(t, srv)
	var env httpEnvelope
	require.NoError(t, json.Unmarshal([]byte(want.body), &env))
	require.EqualError(t, err, env.Error)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func nonNil(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func requireSameStrings(t *testing.T, want apiResponse, got []string) {
	t.Helper()
	var env httpEnvelope
	require.NoError(t, json.Unmarshal([]byte(want.body), &env))
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(env.Data), string(b))
}

// TestQueryServer_Tenancy refuses a call without a tenant as HTTP does.
func TestQueryServer_Tenancy(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	c := dialTest(t, serveGRPC(t, q), "")
	_, err := c.Query(t.Context(), client.InstantQuery{Expr: "up"})
	want := apiRequest{http.MethodGet, "/api/v1/query", url.Values{"query": {"up"}}, ""}.do(t, srv)
	require.Equal(t, http.StatusUnauthorized, want.status)
	require.Equal(t, want.body, err.Error()+"\n")
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "err-argus-missing-tenant", ce.ID)
}

// TestSendQueryResult_Frames splits a result larger than a frame into
// frames of bounded size, a long series into continued pieces, and puts
// the warnings in the last frame.
func TestSendQueryResult_Frames(t *testing.T) {
	const points, series = 200_000, 3
	m := make(promql.Matrix, series)
	for i := range m {
		m[i].Metric = labels.FromStrings("__name__", "x", "i", strconv.Itoa(i))
		for j := range points {
			m[i].Floats = append(m[i].Floats, promql.FPoint{T: int64(j), F: float64(i*points + j)})
		}
	}
	var frames []*argusquerypb.QueryResponse
	resp := &v1.Response{Data: &v1.QueryData{ResultType: parser.ValueTypeMatrix, Result: m}, Warnings: []string{"w"}}
	require.NoError(t, sendQueryResult(resp, func(f *argusquerypb.QueryResponse) error {
		require.LessOrEqual(t, f.SizeVT(), 2*frameBytes)
		frames = append(frames, f)
		return nil
	}))
	require.Greater(t, len(frames), 3*points*floatPointBytes/frameBytes-1)
	require.Equal(t, argusquerypb.ResultType_MATRIX, frames[0].GetResultType())
	var got promql.Matrix
	for i, f := range frames {
		if i < len(frames)-1 {
			require.Empty(t, f.GetWarnings())
		}
		for _, s := range f.GetSeries() {
			if !s.GetContinued() {
				got = append(got, promql.Series{Metric: labels.New(fromLabels(s.GetLabels())...)})
			}
			cur := &got[len(got)-1]
			for k, ts := range s.GetFloatTimestampsMs() {
				cur.Floats = append(cur.Floats, promql.FPoint{T: ts, F: s.GetFloatValues()[k]})
			}
		}
	}
	require.Equal(t, []string{"w"}, frames[len(frames)-1].GetWarnings())
	require.Equal(t, m, got)
}

func fromLabels(ls []*argusquerypb.Label) []labels.Label {
	out := make([]labels.Label, len(ls))
	for i, l := range ls {
		out[i] = labels.Label{Name: l.GetName(), Value: l.GetValue()}
	}
	return out
}

// TestQueryServer_Federation reads two tenants at once (a|b) over gRPC as
// over HTTP, when federation is on.
func TestQueryServer_Federation(t *testing.T) {
	_, src := newFakeSource(t)
	cfg := defaultConfig(t)
	cfg.TenantFederationEnabled = true
	q, err := New(cfg, Deps{Source: src})
	require.NoError(t, err)
	apis := serveBothTenancy(t, q, headerAuth(t), auth.Federated)
	both := tenantA + "|" + tenantB
	c := dialTest(t, apis.grpc, both)
	at := t0 + 30*60_000
	for _, expr := range []string{`count by (__tenant_id__) ({__name__=~".+"})`, `up`, `sum(up)`} {
		want := apiRequest{http.MethodGet, "/api/v1/query", url.Values{"query": {expr}, "time": {secs(at)}}, both}.do(t, apis.http)
		require.Equal(t, http.StatusOK, want.status, want.body)
		res, err := c.Query(t.Context(), client.InstantQuery{Expr: expr, Time: time.UnixMilli(at)})
		requireSameAnswer(t, expr, want, res, err)
	}
	require.Contains(t, apiRequest{http.MethodGet, "/api/v1/query", url.Values{"query": {`count by (__tenant_id__) (up)`}, "time": {secs(at)}}, both}.do(t, apis.http).body, tenantB)
}
