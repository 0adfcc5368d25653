package querier

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// fakeLimits gives each tenant its limits, else the flag defaults. set swaps
// a tenant's limits for new ones, as a runtime config reload does. It is safe
// for concurrent use.
type fakeLimits struct {
	defaults limits.Limits

	mu      sync.Mutex
	tenants map[string]*limits.Limits // guarded by mu
}

func newFakeLimits(t testing.TB) *fakeLimits {
	t.Helper()
	f := &fakeLimits{tenants: map[string]*limits.Limits{}}
	fs := flag.NewFlagSet("limits", flag.PanicOnError)
	f.defaults.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return f
}

// set gives tn the defaults changed by mutate.
func (f *fakeLimits) set(tn string, mutate func(*limits.Limits)) *fakeLimits {
	l := f.defaults
	mutate(&l)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants[tn] = &l
	return f
}

func (f *fakeLimits) For(tn string) *limits.Limits {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.tenants[tn]; ok {
		return l
	}
	return &f.defaults
}

// serveQuerier serves a querier built from cfg and deps as cmd mounts it.
func serveQuerier(t testing.TB, cfg Config, deps Deps) *httptest.Server {
	t.Helper()
	q, err := New(cfg, deps)
	require.NoError(t, err)
	return serveMounted(t, q.Handler())
}

// apiError is the body of an error answer of the API.
type apiError struct {
	Status, ErrorType, Error string
}

func decodeError(t testing.TB, got apiResponse) apiError {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal([]byte(got.body), &e), got.body)
	require.Equal(t, "error", e.Status, got.body)
	return e
}

// requireRejected checks that got is the API error with id, its status,
// and the message want.
func requireRejected(t testing.TB, got apiResponse, id apierror.ID, want string) {
	t.Helper()
	require.Equal(t, id.Status(), got.status, got.body)
	e := decodeError(t, got)
	require.Equal(t, string(id)+": "+want, e.Error)
}

func instantForm(q string, at int64) url.Values {
	return url.Values{"query": {q}, "time": {secs(at)}}
}

func TestLimits_MaxFetchedSeries(t *testing.T) {
	// At t0+45m, up has 3 series (instances a, b and c) and temperature 2.
	at := t0 + 45*60_000
	tests := []struct {
		name   string
		limit  int
		req    apiRequest
		reject string // the message after the ID; empty: 200
	}{
		{name: "query at the limit", limit: 3, req: apiRequest{path: "/api/v1/query", form: instantForm("up", at)}},
		{
			name: "query over the limit", limit: 2, req: apiRequest{path: "/api/v1/query", form: instantForm("up", at)},
			reject: `tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`,
		},
		{
			name: "range query over the limit", limit: 2,
			req:    apiRequest{path: "/api/v1/query_range", form: url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(at)}, "step": {"60"}}},
			reject: `tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`,
		},
		{name: "selectors add up", limit: 5, req: apiRequest{path: "/api/v1/query", form: instantForm("count(up) + count(temperature)", at)}},
		{
			name: "selectors add up over the limit", limit: 4, req: apiRequest{path: "/api/v1/query", form: instantForm("count(up) + count(temperature)", at)},
			reject: `tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=4, the first series over the limit is {__name__="temperature", room="y"}`,
		},
		{name: "a series selected twice counts once", limit: 3, req: apiRequest{path: "/api/v1/query", form: instantForm("count(up) + count(up offset 1m)", at)}},
		{name: "series at the limit", limit: 3, req: apiRequest{path: "/api/v1/series", form: url.Values{"match[]": {"up"}, "start": {secs(t0)}, "end": {secs(at)}}}},
		{
			name: "series over the limit", limit: 2, req: apiRequest{path: "/api/v1/series", form: url.Values{"match[]": {"up"}, "start": {secs(t0)}, "end": {secs(at)}}},
			reject: `tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, client := newFakeSource(t)
			lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = tc.limit })
			srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim})
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				r := tc.req
				r.method, r.tenant = method, tenantA
				got := r.do(t, srv)
				if tc.reject == "" {
					require.Equal(t, http.StatusOK, got.status, got.body)
					continue
				}
				requireRejected(t, got, apierror.MaxFetchedSeriesPerQuery, tc.reject)
				require.Equal(t, http.StatusUnprocessableEntity, got.status)
			}
		})
	}
}

func TestLimits_MaxFetchedChunks(t *testing.T) {
	// At t0+45m, the 5m lookback of an instant query overlaps one chunk of
	// each of up's 3 series; over [t0, t0+2h] each has 4.
	at := t0 + 45*60_000
	rangeForm := url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(t0 + 2*60*60_000)}, "step": {"60"}}
	tests := []struct {
		name   string
		limit  int
		req    apiRequest
		reject string
	}{
		{name: "at the limit", limit: 3, req: apiRequest{path: "/api/v1/query", form: instantForm("up", at)}},
		{
			name: "over the limit", limit: 2, req: apiRequest{path: "/api/v1/query", form: instantForm("up", at)},
			reject: `tenant "team-a": the query fetches more chunks than -querier.max-fetched-chunks-per-query=2, counting every replica's, crossed by the chunks of series {__name__="up", instance="c", job="db"}`,
		},
		{name: "range at the limit", limit: 12, req: apiRequest{path: "/api/v1/query_range", form: rangeForm}},
		{
			name: "range over the limit", limit: 11, req: apiRequest{path: "/api/v1/query_range", form: rangeForm},
			reject: `tenant "team-a": the query fetches more chunks than -querier.max-fetched-chunks-per-query=11, counting every replica's, crossed by the chunks of series {__name__="up", instance="c", job="db"}`,
		},
		// The series API asks for no chunks.
		{name: "series", limit: 1, req: apiRequest{path: "/api/v1/series", form: url.Values{"match[]": {"up"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, client := newFakeSource(t)
			lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedChunksPerQuery = tc.limit })
			srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim})
			r := tc.req
			r.method, r.tenant = http.MethodGet, tenantA
			got := r.do(t, srv)
			if tc.reject == "" {
				require.Equal(t, http.StatusOK, got.status, got.body)
				return
			}
			requireRejected(t, got, apierror.MaxFetchedChunksPerQuery, tc.reject)
			require.Equal(t, http.StatusUnprocessableEntity, got.status)
		})
	}
}

func TestLimits_MaxQueryLength(t *testing.T) {
	const hour = 60 * 60_000
	rangeQuery := func(q string, start, end int64) apiRequest {
		return apiRequest{path: "/api/v1/query_range", form: url.Values{"query": {q}, "start": {secs(start)}, "end": {secs(end)}, "step": {"60"}}}
	}
	bounded := func(path string, start, end int64, kv ...string) apiRequest {
		form := url.Values{"start": {secs(start)}, "end": {secs(end)}}
		for i := 0; i < len(kv); i += 2 {
			form.Add(kv[i], kv[i+1])
		}
		return apiRequest{path: path, form: form}
	}
	const over = `tenant "team-a": the request spans 1h0m1s, longer than -querier.max-query-length=1h0m0s`
	tests := []struct {
		name   string
		req    apiRequest
		reject string
	}{
		{name: "range query of the limit", req: rangeQuery("up", t0, t0+hour)},
		{name: "range query of the limit with a 5m range", req: rangeQuery("rate(up[5m])", t0, t0+hour)},
		{
			name: "range query over the limit", req: rangeQuery("up", t0, t0+hour+1000),
			reject: `tenant "team-a": a selector of the query spans 1h5m1s, longer than -querier.max-query-length=1h0m0s plus the lookback delta 5m0s`,
		},
		{name: "range selector of the limit plus the lookback", req: apiRequest{path: "/api/v1/query", form: instantForm("count_over_time(up[65m])", t0+2*hour)}},
		{
			name: "range selector over the limit", req: apiRequest{path: "/api/v1/query", form: instantForm("count_over_time(up[2h])", t0+2*hour)},
			reject: `tenant "team-a": a selector of the query spans 2h0m0s, longer than -querier.max-query-length=1h0m0s plus the lookback delta 5m0s`,
		},
		{name: "series of the limit", req: bounded("/api/v1/series", t0, t0+hour, "match[]", "up")},
		{name: "series over the limit", req: bounded("/api/v1/series", t0, t0+hour+1000, "match[]", "up"), reject: over},
		{name: "labels of the limit", req: bounded("/api/v1/labels", t0, t0+hour)},
		{name: "labels over the limit", req: bounded("/api/v1/labels", t0, t0+hour+1000), reject: over},
		{name: "labels with matchers over the limit", req: bounded("/api/v1/labels", t0, t0+hour+1000, "match[]", "up"), reject: over},
		{name: "label values over the limit", req: bounded("/api/v1/label/job/values", t0, t0+hour+1000), reject: over},
		// An omitted start reads the last hour: no error.
		{name: "labels without a range", req: apiRequest{path: "/api/v1/labels"}},
		{name: "label values without a range", req: apiRequest{path: "/api/v1/label/job/values"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, client := newFakeSource(t)
			lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxQueryLength = time.Hour })
			srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim})
			r := tc.req
			r.method, r.tenant = http.MethodGet, tenantA
			got := r.do(t, srv)
			if tc.reject == "" {
				require.Equal(t, http.StatusOK, got.status, got.body)
				return
			}
			requireRejected(t, got, apierror.MaxQueryLength, tc.reject)
			require.Equal(t, http.StatusBadRequest, got.status)
		})
	}

	t.Run("series without a start reads the limit back from now", func(t *testing.T) {
		fake, client := newFakeSource(t)
		lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxQueryLength = time.Hour })
		srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim})
		before := time.Now()
		got := apiRequest{http.MethodGet, "/api/v1/series", url.Values{"match[]": {"up"}}, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
		req := fake.lastSeriesRequest()
		require.GreaterOrEqual(t, req.GetMinTimeMs(), before.Add(-time.Hour).UnixMilli())
		require.LessOrEqual(t, req.GetMinTimeMs(), time.Now().Add(-time.Hour).UnixMilli())
	})
}

func TestLimits_PerTenant(t *testing.T) {
	_, client := newFakeSource(t)
	reg := prometheus.NewPedanticRegistry()
	lim := newFakeLimits(t).
		set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 2 }).
		set(tenantB, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 3 })
	srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim, Registerer: reg})
	query := instantForm(`{job=~".+"}`, t0+45*60_000) // team-a: 13 series, team-b: 2

	got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
	require.Equal(t, http.StatusUnprocessableEntity, got.status, got.body)
	require.Contains(t, decodeError(t, got).Error, `tenant "team-a"`)
	got = apiRequest{http.MethodGet, "/api/v1/query", query, tenantB}.do(t, srv)
	require.Equal(t, http.StatusOK, got.status, got.body)

	// A reload applies to the next request.
	lim.set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 13 })
	got = apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
	require.Equal(t, http.StatusOK, got.status, got.body)
	lim.set(tenantB, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 1 })
	got = apiRequest{http.MethodGet, "/api/v1/query", query, tenantB}.do(t, srv)
	require.Equal(t, http.StatusUnprocessableEntity, got.status, got.body)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP argus_querier_queries_rejected_total API requests refused or stopped by a per-tenant query limit, by reason: max_fetched_series, max_fetched_chunks, max_query_length, timeout.
# TYPE argus_querier_queries_rejected_total counter
argus_querier_queries_rejected_total{reason="max_fetched_chunks"} 0
argus_querier_queries_rejected_total{reason="max_fetched_series"} 2
argus_querier_queries_rejected_total{reason="max_query_length"} 0
argus_querier_queries_rejected_total{reason="timeout"} 0
`), "argus_querier_queries_rejected_total"))
}

// fanoutDeps are the Deps of a querier over three replicas of the fixture
// (replicas), each on its own fake source, with maxFailures 1.
func fanoutDeps(t *testing.T, lim tenantLimits) Deps {
	t.Helper()
	clients := map[string]arguspb.SeriesSourceClient{}
	var instances []ring.Instance
	for r, data := range replicas(t) {
		addr := string(rune('a' + r))
		instances = append(instances, ring.Instance{ID: addr, Addr: addr})
		clients[addr] = startSource(t, &fakeSource{data: data})
	}
	return Deps{
		Replicas: fakeReadSet{instances: instances, maxFailures: 1},
		Sources:  func(addr string) (arguspb.SeriesSourceClient, error) { return clients[addr], nil },
		Limits:   lim,
	}
}

func TestLimits_Replicas(t *testing.T) {
	query := instantForm("up", t0+45*60_000)

	t.Run("series are counted once across replicas", func(t *testing.T) {
		// Each of the three replicas sends up's 3 series.
		srv := serveQuerier(t, defaultConfig(t), fanoutDeps(t, newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 3 })))
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)

		srv = serveQuerier(t, defaultConfig(t), fanoutDeps(t, newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 2 })))
		got = apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		// The third distinct series is always c: each stream sends a, b, c.
		requireRejected(t, got, apierror.MaxFetchedSeriesPerQuery,
			`tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`)
	})

	t.Run("chunks are counted as received from every replica", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		deps := fanoutDeps(t, nil)
		deps.Registerer = reg
		srv := serveQuerier(t, defaultConfig(t), deps)
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
		received := int(gathered(t, reg, "argus_querier_chunks_fetched_total", ""))
		require.Greater(t, received, 3, "one copy of the data has 3 chunks")

		for limit, wantStatus := range map[int]int{received: http.StatusOK, received - 1: http.StatusUnprocessableEntity} {
			srv := serveQuerier(t, defaultConfig(t), fanoutDeps(t, newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedChunksPerQuery = limit })))
			got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
			require.Equal(t, wantStatus, got.status, "limit %d: %s", limit, got.body)
		}
	})

	t.Run("too many ingesters down", func(t *testing.T) {
		deps := fanoutDeps(t, newFakeLimits(t))
		clients := map[string]arguspb.SeriesSourceClient{"a": startSource(t, downSource{}), "b": startSource(t, downSource{})}
		good := deps.Sources
		deps.Sources = func(addr string) (arguspb.SeriesSourceClient, error) {
			if c, ok := clients[addr]; ok {
				return c, nil
			}
			return good(addr)
		}
		srv := serveQuerier(t, defaultConfig(t), deps)
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		require.Equal(t, http.StatusServiceUnavailable, got.status, got.body)
		require.True(t, strings.HasPrefix(decodeError(t, got).Error, `err-argus-query-unavailable: tenant "team-a": too many ingesters failed (2, at most 1 tolerated): `), got.body)
	})
}

// holder makes a fake source wait for its call's end and record it.
type holder struct {
	canceled atomic.Bool // a held call's context ended
}

// wait blocks until ctx ends, or 10s pass (a querier that does not cancel
// the call would wait forever for the rest of it), and records which.
func (h *holder) wait(ctx context.Context) {
	select {
	case <-ctx.Done():
		h.canceled.Store(true)
	case <-time.After(10 * time.Second):
	}
}

// generatedSource is a SeriesSource that streams n series
// {__name__="gen", i="<i>"}, perMsg to a message, each with one chunk of
// one sample, made as they are sent. After hold series (0: never) it waits
// until its stream ends (holder).
type generatedSource struct {
	arguspb.UnimplementedSeriesSourceServer
	holder
	n, perMsg, hold int
	after           <-chan struct{} // if set, streaming starts once it is closed

	sent atomic.Int64 // series sent
}

func newGeneratedSource(n, perMsg, hold int) *generatedSource {
	return &generatedSource{n: n, perMsg: perMsg, hold: hold}
}

func (g *generatedSource) Series(_ *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	if g.after != nil {
		select {
		case <-g.after:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
	chunk := encodeChunks([]sample{{t: t0, v: 1}}, t0, t0)
	resp := &arguspb.SeriesResponse{}
	for i := 0; i < g.n; i += g.perMsg {
		resp.Series = resp.Series[:0]
		for j := i; j < min(i+g.perMsg, g.n); j++ {
			resp.Series = append(resp.Series, &arguspb.StreamSeries{
				Labels: []*arguspb.Label{{Name: "__name__", Value: "gen"}, {Name: "i", Value: fmt.Sprintf("%08d", j)}},
				Chunks: chunk,
			})
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		if n := int(g.sent.Add(int64(len(resp.Series)))); g.hold > 0 && n >= g.hold {
			g.wait(stream.Context())
			return stream.Context().Err()
		}
	}
	return nil
}

// heldSource answers every call by waiting until it ends (holder). If
// entered is set, Series closes it on entry.
type heldSource struct {
	arguspb.UnimplementedSeriesSourceServer
	holder
	entered chan struct{}
}

func (h *heldSource) Series(_ *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	if h.entered != nil {
		close(h.entered)
	}
	h.wait(stream.Context())
	return stream.Context().Err()
}

func (h *heldSource) LabelNames(ctx context.Context, _ *arguspb.LabelNamesRequest) (*arguspb.LabelNamesResponse, error) {
	h.wait(ctx)
	return nil, ctx.Err()
}

func (h *heldSource) LabelValues(ctx context.Context, _ *arguspb.LabelValuesRequest) (*arguspb.LabelValuesResponse, error) {
	h.wait(ctx)
	return nil, ctx.Err()
}

func TestLimits_EarlyAbort(t *testing.T) {
	const limit = 10
	lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = limit })
	query := instantForm("count(gen)", t0)
	want := `tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=10, the first series over the limit is {__name__="gen", i="00000010"}`

	t.Run("a stream over the limit alone is canceled", func(t *testing.T) {
		gen := newGeneratedSource(100_000, 1, limit+1)
		srv := serveQuerier(t, defaultConfig(t), Deps{Source: startSource(t, gen), Limits: lim})
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		requireRejected(t, got, apierror.MaxFetchedSeriesPerQuery, want)
		// The cancellation reaches the source asynchronously, and it would
		// wait 10s for it.
		require.Eventually(t, gen.canceled.Load, 5*time.Second, time.Millisecond, "the source's stream was not canceled")
		require.Equal(t, int64(limit+1), gen.sent.Load())
	})

	t.Run("the other streams of the fan-out are canceled", func(t *testing.T) {
		held := &heldSource{entered: make(chan struct{})}
		gen := newGeneratedSource(100_000, 1, limit+1)
		gen.after = held.entered // so that the held call is under way when the limit is hit
		clients := map[string]arguspb.SeriesSourceClient{"fast": startSource(t, gen), "held": startSource(t, held)}
		srv := serveQuerier(t, defaultConfig(t), Deps{
			Replicas: fakeReadSet{instances: []ring.Instance{{ID: "fast", Addr: "fast"}, {ID: "held", Addr: "held"}}, maxFailures: 1},
			Sources:  func(addr string) (arguspb.SeriesSourceClient, error) { return clients[addr], nil },
			Limits:   lim,
		})
		start := time.Now()
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		requireRejected(t, got, apierror.MaxFetchedSeriesPerQuery, want)
		require.Less(t, time.Since(start), 5*time.Second)
		require.Eventually(t, gen.canceled.Load, 5*time.Second, time.Millisecond, "the stream over the limit was not canceled")
		require.Eventually(t, held.canceled.Load, 5*time.Second, time.Millisecond, "the other stream was not canceled")
	})

	t.Run("without a limit every series is received", func(t *testing.T) {
		gen := newGeneratedSource(1000, 10, 0)
		srv := serveQuerier(t, defaultConfig(t), Deps{Source: startSource(t, gen), Limits: newFakeLimits(t)})
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.Contains(t, got.body, `"1000"`)
		require.Equal(t, int64(1000), gen.sent.Load())
	})
}

func TestLimits_Timeout(t *testing.T) {
	const want = `tenant "team-a": the query ran longer than -querier.timeout=50ms and was aborted`
	reqs := []struct {
		req      apiRequest
		wantType string // "": not checked (the labels endpoints say "execution")
	}{
		{apiRequest{path: "/api/v1/query", form: instantForm("up", t0)}, "timeout"},
		{apiRequest{path: "/api/v1/query_range", form: url.Values{"query": {"rate(up[5m])"}, "start": {secs(t0)}, "end": {secs(t0 + 600_000)}, "step": {"60"}}}, "timeout"},
		{apiRequest{path: "/api/v1/series", form: url.Values{"match[]": {"up"}}}, "timeout"},
		{apiRequest{path: "/api/v1/labels"}, ""},
		{apiRequest{path: "/api/v1/label/job/values"}, ""},
	}
	held := &heldSource{}
	reg := prometheus.NewPedanticRegistry()
	lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.QueryTimeout = 50 * time.Millisecond })
	srv := serveQuerier(t, defaultConfig(t), Deps{Source: startSource(t, held), Limits: lim, Registerer: reg})
	for _, tc := range reqs {
		r := tc.req
		r.method, r.tenant = http.MethodGet, tenantA
		t.Run("slow source "+r.String(), func(t *testing.T) {
			got := r.do(t, srv)
			requireRejected(t, got, apierror.QueryTimeout, want)
			require.Equal(t, http.StatusServiceUnavailable, got.status)
			if tc.wantType != "" {
				require.Equal(t, tc.wantType, decodeError(t, got).ErrorType)
			}
		})
	}
	require.Equal(t, 5.0, gathered(t, reg, "argus_querier_queries_rejected_total", "timeout"))

	t.Run("timeout in the engine", func(t *testing.T) {
		// The deadline passes before the engine gets to the source.
		_, client := newFakeSource(t)
		lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.QueryTimeout = time.Nanosecond })
		srv := serveQuerier(t, defaultConfig(t), Deps{Source: client, Limits: lim})
		for _, path := range []string{"/api/v1/query", "/api/v1/query_range"} {
			form := instantForm("up", t0)
			if path == "/api/v1/query_range" {
				form = url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(t0 + 600_000)}, "step": {"60"}}
			}
			got := apiRequest{http.MethodGet, path, form, tenantA}.do(t, srv)
			requireRejected(t, got, apierror.QueryTimeout, `tenant "team-a": the query ran longer than -querier.timeout=1ns and was aborted`)
			require.Equal(t, "timeout", decodeError(t, got).ErrorType)
		}
	})

	t.Run("the client's own timeout is Prometheus's, with the ID", func(t *testing.T) {
		lim := newFakeLimits(t) // 2m
		srv := serveQuerier(t, defaultConfig(t), Deps{Source: startSource(t, &heldSource{}), Limits: lim})
		form := instantForm("up", t0)
		form.Set("timeout", "50ms")
		got := apiRequest{http.MethodGet, "/api/v1/query", form, tenantA}.do(t, srv)
		require.Equal(t, http.StatusServiceUnavailable, got.status, got.body)
		e := decodeError(t, got)
		require.Equal(t, "timeout", e.ErrorType)
		// Prometheus's text after the ID: the tenant's limit is not the cause.
		require.Equal(t, "err-argus-query-timeout: query timed out in expression evaluation", e.Error)
	})

	t.Run("the shortest timeout of a federated read", func(t *testing.T) {
		lim := newFakeLimits(t).
			set(tenantA, func(l *limits.Limits) { l.QueryTimeout = time.Minute }).
			set(tenantB, func(l *limits.Limits) { l.QueryTimeout = 50 * time.Millisecond })
		cfg := defaultConfig(t)
		cfg.TenantFederationEnabled = true
		q, err := New(cfg, Deps{Source: startSource(t, &heldSource{}), Limits: lim})
		require.NoError(t, err)
		srv := serveFederated(t, q.Handler())
		got := apiRequest{http.MethodGet, "/api/v1/query", instantForm("up", t0), tenantA + "|" + tenantB}.do(t, srv)
		requireRejected(t, got, apierror.QueryTimeout, `tenant "team-b": the query ran longer than -querier.timeout=50ms and was aborted`)
	})
}

// gathered returns the value of counter name in reg, of its series whose
// first label has value labelValue (or its only series, for "").
func gathered(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelValue == "" || m.GetLabel()[0].GetValue() == labelValue {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, labelValue)
	return 0
}

func TestHTTPStatus_IDs(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{apierror.Errorf(apierror.MaxFetchedSeriesPerQuery, "x"), http.StatusUnprocessableEntity},
		{apierror.Errorf(apierror.MaxFetchedChunksPerQuery, "x"), http.StatusUnprocessableEntity},
		{apierror.Errorf(apierror.MaxQueryLength, "x"), http.StatusBadRequest},
		{timeoutError(tenantA, time.Second), http.StatusServiceUnavailable},
		{unavailableError(context.Background(), ErrTooManyFailures), http.StatusServiceUnavailable},
		{invalidTenantError("a|b", nil), http.StatusUnauthorized},
		// Wrapped, as the merge querier does.
		{fmt.Errorf("LabelValues() from merge generic querier: %w", apierror.Errorf(apierror.MaxQueryLength, "x")), http.StatusBadRequest},
	}
	for _, tc := range tests {
		code, override := httpStatus(0, tc.err)
		require.True(t, override, tc.err)
		require.Equal(t, tc.want, code, tc.err)
	}
}

// TestQueryable_LimitsWithoutHandler checks that an engine run over
// Queryable, outside Handler, gets the limits per querier.
func TestQueryable_LimitsWithoutHandler(t *testing.T) {
	_, client := newFakeSource(t)
	lim := newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 3 })
	q, err := New(defaultConfig(t), Deps{Source: client, Limits: lim})
	require.NoError(t, err)
	engine := newTestEngine(t)
	ctx := tenant.With(context.Background(), tenantA)

	res := instantQuery(t, engine, q.Queryable(), ctx, "up", t0+45*60_000)
	require.Empty(t, res.Err)
	res = instantQuery(t, engine, q.Queryable(), ctx, "up", t0+45*60_000) // a new querier, a new count
	require.Empty(t, res.Err)
	res = instantQuery(t, engine, q.Queryable(), ctx, `{job=~".+"}`, t0+45*60_000)
	require.Contains(t, res.Err, string(apierror.MaxFetchedSeriesPerQuery))

	sq, err := q.Queryable().Querier(t0, t0+60_000)
	require.NoError(t, err)
	set := sq.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, "job", ".+"))
	require.False(t, set.Next())
	id, ok := apierror.IDOf(set.Err())
	require.True(t, ok)
	require.Equal(t, apierror.MaxFetchedSeriesPerQuery, id)
}
