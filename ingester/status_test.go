package ingester

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// statusData is the known data set of the status tests: 6 series of 2
// metrics, 130 samples each (two chunks: 120 + 10).
var statusData = [][]string{
	{"__name__", "up", "instance", "a", "job", "api"},
	{"__name__", "up", "instance", "b", "job", "api"},
	{"__name__", "up", "instance", "c", "job", "db"},
	{"__name__", "http_requests", "code", "200", "instance", "a", "job", "api"},
	{"__name__", "http_requests", "code", "500", "instance", "a", "job", "api"},
	{"__name__", "http_requests", "code", "200", "instance", "b", "job", "api"},
}

func startStatusIngester(t *testing.T) *Ingester {
	t.Helper()
	ing := startIngester(t, testConfig(t, t.TempDir()))
	for _, d := range statusData {
		push(t, ing, "t", ts(d, seq(10_000, 1000, 130)...))
	}
	return ing
}

func TestTSDBStatus(t *testing.T) {
	ing := startStatusIngester(t)
	a := ing.AdminServer()
	got, err := a.TSDBStatus(tenantCtx("t"), &arguspb.TSDBStatusRequest{Limit: 10})
	require.NoError(t, err)
	size := func(name, value string, n uint64) uint64 { return labels.SizeOfLabels(name, value, n) }
	require.Equal(t, uint64(6), got.NumSeries)
	require.Equal(t, int64(2+3+2+2), got.NumLabelPairs, "__name__, instance, job and code values")
	require.Equal(t, int64(12), got.ChunkCount)
	require.Equal(t, int64(10_000), got.MinTimeMs)
	require.Equal(t, int64(10_000+129*1000), got.MaxTimeMs)
	requireTopList(t, []pair{{"http_requests", 3}, {"up", 3}}, got.SeriesCountByMetricName)
	requireTopList(t, []pair{{"instance", 3}, {"__name__", 2}, {"code", 2}, {"job", 2}}, got.LabelValueCountByLabelName)
	requireTopList(t, []pair{
		{"__name__", size("__name__", "up", 3) + size("__name__", "http_requests", 3)},
		{"job", size("job", "api", 5) + size("job", "db", 1)},
		{"instance", size("instance", "a", 3) + size("instance", "b", 2) + size("instance", "c", 1)},
		{"code", size("code", "200", 2) + size("code", "500", 1)},
	}, got.MemoryInBytesByLabelName)
	requireTopList(t, []pair{
		{"job=api", 5}, {"instance=a", 3}, {"__name__=http_requests", 3}, {"__name__=up", 3},
		{"code=200", 2}, {"instance=b", 2}, {"code=500", 1}, {"instance=c", 1}, {"job=db", 1},
	}, got.SeriesCountByLabelValuePair)

	top, err := a.TSDBStatus(tenantCtx("t"), &arguspb.TSDBStatusRequest{Limit: 1})
	require.NoError(t, err)
	requireTopList(t, []pair{{"instance", 3}}, top.LabelValueCountByLabelName)
	requireTopList(t, []pair{{"job=api", 5}}, top.SeriesCountByLabelValuePair)

	empty, err := a.TSDBStatus(tenantCtx("nobody"), &arguspb.TSDBStatusRequest{Limit: 10})
	require.NoError(t, err)
	require.True(t, proto.Equal(&arguspb.TSDBStatusResponse{MinTimeMs: math.MaxInt64, MaxTimeMs: math.MinInt64}, empty), "%v", empty)
	for _, limit := range []int32{0, -1, maxStatusLimit + 1} {
		_, err := a.TSDBStatus(tenantCtx("t"), &arguspb.TSDBStatusRequest{Limit: limit})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "limit %d", limit)
	}
}

type pair struct {
	name  string
	value uint64
}

func pairs(in []*arguspb.CardinalityStat) []pair {
	out := make([]pair, len(in))
	for i, s := range in {
		out[i] = pair{s.Name, s.Value}
	}
	return out
}

// requireTopList checks that got is sorted by value, highest first, and
// holds the entries of want, whose ties may come in any order.
func requireTopList(t testing.TB, want []pair, got []*arguspb.CardinalityStat) {
	t.Helper()
	g := pairs(got)
	for i := 1; i < len(g); i++ {
		require.GreaterOrEqual(t, g[i-1].value, g[i].value, "%v", g)
	}
	require.ElementsMatch(t, want, g)
}

type namesStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*arguspb.LabelNamesAndValuesResponse
}

func (s *namesStream) Context() context.Context { return s.ctx }

func (s *namesStream) Send(m *arguspb.LabelNamesAndValuesResponse) error {
	s.msgs = append(s.msgs, m)
	return nil
}

func TestAdminLabelNamesAndValues(t *testing.T) {
	ing := startStatusIngester(t)
	a := ing.AdminServer()
	get := func(ms ...*arguspb.LabelMatcher) map[string][]string {
		st := &namesStream{ctx: tenantCtx("t")}
		require.NoError(t, a.LabelNamesAndValues(&arguspb.LabelNamesAndValuesRequest{Matchers: ms}, st))
		out := map[string][]string{}
		prev := ""
		for _, m := range st.msgs {
			for _, it := range m.Items {
				require.Less(t, prev, it.Name, "names sorted, each once")
				prev = it.Name
				out[it.Name] = it.Values
			}
		}
		return out
	}
	require.Equal(t, map[string][]string{
		"__name__": {"http_requests", "up"},
		"code":     {"200", "500"},
		"instance": {"a", "b", "c"},
		"job":      {"api", "db"},
	}, get())
	require.Equal(t, map[string][]string{
		"__name__": {"up"},
		"instance": {"a", "b", "c"},
		"job":      {"api", "db"},
	}, get(pm(arguspb.LabelMatcher_EQ, "__name__", "up")))
	require.Equal(t, map[string][]string{
		"__name__": {"http_requests", "up"},
		"code":     {"200"},
		"instance": {"b"},
		"job":      {"api"},
	}, get(pm(arguspb.LabelMatcher_EQ, "instance", "b")))
	require.Empty(t, get(pm(arguspb.LabelMatcher_EQ, "instance", "nope")))
}

func TestLabelValuesCardinality(t *testing.T) {
	ing := startStatusIngester(t)
	a := ing.AdminServer()
	got, err := a.LabelValuesCardinality(tenantCtx("t"), &arguspb.LabelValuesCardinalityRequest{LabelNames: []string{"job", "instance", "job", "nope"}})
	require.NoError(t, err)
	require.Equal(t, uint64(6), got.NumSeries)
	require.Equal(t, map[string][]pair{
		"instance": {{"a", 3}, {"b", 2}, {"c", 1}},
		"job":      {{"api", 5}, {"db", 1}},
	}, valueCounts(got), "names in order, values sorted")

	got, err = a.LabelValuesCardinality(tenantCtx("t"), &arguspb.LabelValuesCardinalityRequest{
		LabelNames: []string{"instance", "code"},
		Matchers:   []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "http_requests")},
	})
	require.NoError(t, err)
	require.Equal(t, uint64(6), got.NumSeries, "every series, whatever the selector")
	require.Equal(t, map[string][]pair{
		"code":     {{"200", 2}, {"500", 1}},
		"instance": {{"a", 2}, {"b", 1}},
	}, valueCounts(got))

	_, err = a.LabelValuesCardinality(tenantCtx("t"), &arguspb.LabelValuesCardinalityRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func valueCounts(r *arguspb.LabelValuesCardinalityResponse) map[string][]pair {
	out := map[string][]pair{}
	prev := ""
	for _, it := range r.Items {
		if it.Name <= prev {
			panic("names not sorted")
		}
		prev = it.Name
		out[it.Name] = pairs(it.Values)
	}
	return out
}

// BenchmarkTSDBStatus measures status/tsdb on one head of 100K series (100
// metrics, 1000 instances): go test -run '^$' -bench TSDBStatus ./ingester/
func BenchmarkTSDBStatus(b *testing.B) {
	ing := startIngester(b, testConfig(b, b.TempDir()))
	const metrics, instances = 100, 1000
	for m := range metrics {
		var tss []*arguspb.TimeSeries
		for i := range instances {
			tss = append(tss, ts([]string{"__name__", fmt.Sprintf("metric_%03d", m), "instance", fmt.Sprintf("host-%04d", i), "job", "bench"}, sample{1000, 1}))
		}
		push(b, ing, "t", tss...)
	}
	a := ing.AdminServer()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := a.TSDBStatus(tenantCtx("t"), &arguspb.TSDBStatusRequest{Limit: 10})
		require.NoError(b, err)
		require.Equal(b, uint64(metrics*instances), resp.NumSeries)
	}
}
