package querier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// localServer is a LocalSource over a SeriesSource server, as the
// ingester is both: SelectSeries runs the server's Series into memory and
// hands each streamed series over as Go values, so that every fake server
// of these tests serves the local path too.
type localServer struct {
	srv arguspb.SeriesSourceServer
}

func (l localServer) SelectSeries(ctx context.Context, req *arguspb.SeriesRequest, visit func(labels.Labels, []chunks.Meta) error) error {
	return l.srv.Series(req, &visitStream{ctx: ctx, visit: visit})
}

func (l localServer) LabelNames(ctx context.Context, req *arguspb.LabelNamesRequest) (*arguspb.LabelNamesResponse, error) {
	return l.srv.LabelNames(ctx, req)
}

func (l localServer) LabelValues(ctx context.Context, req *arguspb.LabelValuesRequest) (*arguspb.LabelValuesResponse, error) {
	return l.srv.LabelValues(ctx, req)
}

// visitStream converts each sent message's series for visit. A chunk of
// another encoding than XOR or the histogram ones becomes an empty XOR2
// chunk, an encoding the query wire has not.
type visitStream struct {
	grpc.ServerStream
	ctx   context.Context
	visit func(labels.Labels, []chunks.Meta) error
}

func (s *visitStream) Context() context.Context { return s.ctx }

func (s *visitStream) Send(m *arguspb.SeriesResponse) error {
	for _, ss := range m.Series {
		b := labels.NewScratchBuilder(len(ss.Labels))
		for _, l := range ss.Labels {
			b.Add(l.Name, l.Value)
		}
		var metas []chunks.Meta
		for _, c := range ss.Chunks {
			var chk chunkenc.Chunk = chunkenc.NewXOR2Chunk()
			switch c.Encoding {
			case arguspb.ChunkEncoding_CHUNK_ENCODING_XOR:
				x := &chunkenc.XORChunk{}
				x.Reset(c.Data)
				chk = x
			case arguspb.ChunkEncoding_CHUNK_ENCODING_HISTOGRAM, arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM:
				chk, _ = histogramChunk(c.Encoding, c.Data)
			}
			metas = append(metas, chunks.Meta{Chunk: chk, MinTime: c.MinTimeMs, MaxTime: c.MaxTimeMs})
		}
		if err := s.visit(b.Labels(), metas); err != nil {
			return err
		}
	}
	return nil
}

// localInstance is the ring ID of the local source in these tests.
const localInstance = "local"

// localReadSet is the read set of an all-in-one: its own ingester only.
var localReadSet = fakeReadSet{instances: []ring.Instance{{ID: localInstance, Addr: "127.0.0.1:9095"}}}

// noRemoteSources fails a test that reaches for a gRPC source.
func noRemoteSources(t testing.TB) SourceFactory {
	return func(addr string) (arguspb.SeriesSourceClient, error) {
		t.Errorf("the local instance was asked for over gRPC at %s", addr)
		return nil, errors.New("no gRPC here")
	}
}

func newLocalQueryable(t testing.TB, srv arguspb.SeriesSourceServer) *queryable {
	t.Helper()
	return &queryable{metrics: newMetrics(nil), replicas: localReadSet, sources: noRemoteSources(t),
		local: localServer{srv}, localID: localInstance}
}

// TestLocal_MatchesGRPC runs PromQL, Select, label names and values through
// the local path and through gRPC over the same source: the answers must be
// identical, and they match a Prometheus TSDB (TestQueryable_MatchesPrometheusTSDB
// checks the gRPC path against it).
func TestLocal_MatchesGRPC(t *testing.T) {
	fake, client := newFakeSource(t)
	ref := newReferenceTSDB(t, fake.data[tenantA])
	remote := newTestQueryable(t, client, nil)
	local := newLocalQueryable(t, fake)
	engine := newTestEngine(t)
	ctx := tenant.With(context.Background(), tenantA)

	exprs := []string{
		`up`, `rate(http_requests_total[5m])`, `sum by (job) (rate(http_requests_total[5m]))`,
		`histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))`,
		`count({__name__=~".+"})`, `max by (instance) ({__name__=~"http_.*"})`, `temperature offset 10m`,
	}
	for _, expr := range exprs {
		for _, ts := range []int64{t0 + 30*60_000, t0 + 100*60_000} {
			want := instantQuery(t, engine, ref, ctx, expr, ts)
			require.Empty(t, cmp.Diff(want, instantQuery(t, engine, local, ctx, expr, ts), cmpResult), "%s at %d", expr, ts)
			require.Empty(t, cmp.Diff(want, instantQuery(t, engine, remote, ctx, expr, ts), cmpResult), "%s at %d", expr, ts)
		}
		want := rangeQuery(t, engine, ref, ctx, expr, t0, t0+2*60*60_000, 60_000)
		require.NotEmpty(t, want.Value.(promql.Matrix), expr)
		require.Empty(t, cmp.Diff(want, rangeQuery(t, engine, local, ctx, expr, t0, t0+2*60*60_000, 60_000), cmpResult), expr)
	}

	for _, hints := range []*struct {
		name string
		q    func(q *queryable) []string
	}{
		{"series hints, no chunks", func(q *queryable) []string {
			return selectStrings(t, q, ctx, "series", 0)
		}},
		{"a limit", func(q *queryable) []string { return selectStrings(t, q, ctx, "", 2) }},
		{"label names", func(q *queryable) []string {
			cq, err := q.ChunkQuerier(t0, t0+2*60*60_000)
			require.NoError(t, err)
			names, _, err := cq.LabelNames(ctx, nil, labels.MustNewMatcher(labels.MatchRegexp, "job", "a.*"))
			require.NoError(t, err)
			return names
		}},
		{"label values", func(q *queryable) []string {
			cq, err := q.ChunkQuerier(t0, t0+2*60*60_000)
			require.NoError(t, err)
			values, _, err := cq.LabelValues(ctx, "instance", nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
			require.NoError(t, err)
			return values
		}},
	} {
		want := hints.q(remote)
		require.NotEmpty(t, want, hints.name)
		require.Equal(t, want, hints.q(local), hints.name)
	}
	require.Len(t, selectStrings(t, local, ctx, "", 2), 2)
}

// selectStrings selects every series of the fixture with hints.Func fn and
// hints.Limit limit, and returns each as its labels and chunks' ranges.
func selectStrings(t *testing.T, q *queryable, ctx context.Context, fn string, limit int) []string {
	t.Helper()
	cq, err := q.ChunkQuerier(t0, t0+2*60*60_000)
	require.NoError(t, err)
	set := cq.Select(ctx, true, &storage.SelectHints{Start: t0, End: t0 + 2*60*60_000, Func: fn, Limit: limit}, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	var out []string
	for set.Next() {
		s := set.At()
		str := s.Labels().String()
		it := s.Iterator(nil)
		for it.Next() {
			m := it.At()
			str += fmt.Sprintf(" %x@%d-%d", m.Chunk.Bytes(), m.MinTime, m.MaxTime)
		}
		out = append(out, str)
	}
	require.NoError(t, set.Err())
	return out
}

// TestLocal_SourceErrors checks that the local path fails as the gRPC path
// does over the same read set, with the same error and status, and that
// it needs a tenant and stops with its context.
func TestLocal_SourceErrors(t *testing.T) {
	fake, client := newFakeSource(t)
	local := newLocalQueryable(t, fake)
	remote := &queryable{metrics: newMetrics(nil), replicas: localReadSet,
		sources: func(string) (arguspb.SeriesSourceClient, error) { return client, nil }}
	read := func(q *queryable, tn string) []error {
		ctx := tenant.With(context.Background(), tn)
		sq, err := q.Querier(t0, t0+60_000)
		require.NoError(t, err)
		set := sq.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
		require.False(t, set.Next())
		_, _, lnErr := sq.LabelNames(ctx, nil)
		_, _, lvErr := sq.LabelValues(ctx, "job", nil)
		return []error{set.Err(), lnErr, lvErr}
	}
	for _, tn := range []string{"down", "invalid", "broken"} {
		want, got := read(remote, tn), read(local, tn)
		for i := range want {
			require.Error(t, want[i], tn)
			require.EqualError(t, got[i], want[i].Error(), tn)
			wantCode, _ := httpStatus(0, want[i])
			gotCode, _ := httpStatus(0, got[i])
			require.Equal(t, wantCode, gotCode, tn)
		}
	}

	sq, err := local.Querier(t0, t0+60_000)
	require.NoError(t, err)
	set := sq.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), tenant.ErrNoTenant)

	canceled, cancel := context.WithCancel(tenant.With(context.Background(), tenantA))
	cancel()
	set = sq.Select(canceled, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), context.Canceled)
}

// TestLocal_ProtocolViolations checks that the local path refuses what the
// gRPC path refuses: the merge and the sample iterator rely on it.
func TestLocal_ProtocolViolations(t *testing.T) {
	series := func(name string, chunks ...*arguspb.Chunk) *arguspb.StreamSeries {
		return &arguspb.StreamSeries{Labels: []*arguspb.Label{{Name: "__name__", Value: name}}, Chunks: chunks}
	}
	tests := map[string][]*arguspb.SeriesResponse{
		"unsorted series":               {{Series: []*arguspb.StreamSeries{series("b")}}, {Series: []*arguspb.StreamSeries{series("a")}}},
		"duplicate series":              {{Series: []*arguspb.StreamSeries{series("a"), series("a")}}},
		"unknown encoding":              {{Series: []*arguspb.StreamSeries{series("a", &arguspb.Chunk{Encoding: arguspb.ChunkEncoding_CHUNK_ENCODING_UNSPECIFIED})}}},
		"chunk without its header":      {{Series: []*arguspb.StreamSeries{series("a", xorChunk(0, 10, nil))}}},
		"chunk ending before it starts": {{Series: []*arguspb.StreamSeries{series("a", xorChunk(10, 0, emptyXOR))}}},
		"overlapping chunks":            {{Series: []*arguspb.StreamSeries{series("a", xorChunk(0, 10, emptyXOR), xorChunk(10, 20, emptyXOR))}}},
		"chunks out of order":           {{Series: []*arguspb.StreamSeries{series("a", xorChunk(20, 30, emptyXOR), xorChunk(0, 10, emptyXOR))}}},
	}
	for name, resp := range tests {
		q := newLocalQueryable(t, &brokenStream{resp: resp})
		sq, err := q.Querier(0, 1)
		require.NoError(t, err)
		set := sq.Select(tenant.With(context.Background(), tenantA), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		require.False(t, set.Next(), name)
		require.ErrorIs(t, set.Err(), ErrProtocol, name)
	}
}

// TestLocal_Limits checks the per-tenant limits on the local path, through
// the API: the series limit names the first series over it and stops the
// read; the chunks limit likewise.
func TestLocal_Limits(t *testing.T) {
	at := t0 + 45*60_000
	fake, _ := newFakeSource(t)
	for _, tc := range []struct {
		set    func(*limits.Limits)
		id     apierror.ID
		reject string
	}{
		{func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 2 }, apierror.MaxFetchedSeriesPerQuery,
			`tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`},
		{func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 3 }, "", ""},
	} {
		lim := newFakeLimits(t).set(tenantA, tc.set)
		srv := serveQuerier(t, defaultConfig(t), Deps{Replicas: localReadSet, Sources: noRemoteSources(t),
			Local: localServer{fake}, LocalID: localInstance, Limits: lim})
		got := apiRequest{method: http.MethodGet, tenant: tenantA, path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {secs(at)}}}.do(t, srv)
		if tc.reject == "" {
			require.Equal(t, http.StatusOK, got.status, got.body)
			continue
		}
		requireRejected(t, got, tc.id, tc.reject)
	}
}
