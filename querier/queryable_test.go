package querier

import (
	"context"
	"flag"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/features"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// defaultConfig is the Config that the flags give by default.
func defaultConfig(t testing.TB) Config {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return cfg
}

func newTestQueryable(t testing.TB, src seriesSource, reg prometheus.Registerer) *queryable {
	t.Helper()
	return &queryable{src: src, metrics: newMetrics(reg)}
}

func newTestEngine(t testing.TB) *promql.Engine {
	t.Helper()
	return newEngine(defaultConfig(t), slog.New(slog.DiscardHandler), nil, features.NewRegistry())
}

// cmpResult compares PromQL values exactly: float bits, label sets by value.
var cmpResult = cmp.Options{
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
	cmp.Comparer(labels.Equal),
}

func ms(t int64) time.Time { return time.UnixMilli(t) }

// TestQueryable_MatchesPrometheusTSDB runs the same PromQL through one engine
// over a Prometheus TSDB holding the samples and over the SeriesSource that
// serves them as XOR chunks, and requires identical results.
func TestQueryable_MatchesPrometheusTSDB(t *testing.T) {
	fake, client := newFakeSource(t)
	ref := newReferenceTSDB(t, fake.data[tenantA])
	ours := newTestQueryable(t, client, nil)
	engine := newTestEngine(t)
	ctx := tenant.With(context.Background(), tenantA)

	queries := []struct {
		expr       string
		mayBeEmpty bool
	}{
		{expr: `up`},
		{expr: `http_requests_total`},
		{expr: `rate(http_requests_total[5m])`},
		{expr: `increase(http_requests_total{job="api"}[10m])`},
		{expr: `sum by (job) (rate(http_requests_total[5m]))`},
		{expr: `histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))`},
		{expr: `histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))`},
		{expr: `rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])`},
		{expr: `topk(2, http_requests_total)`},
		{expr: `bottomk(1, rate(http_requests_total[5m]))`},
		{expr: `absent(nonexistent_metric)`},
		{expr: `absent(up)`, mayBeEmpty: true},
		{expr: `http_requests_total offset 10m`},
		{expr: `http_requests_total offset -5m`},
		{expr: `http_requests_total @ start()`},
		{expr: `rate(http_requests_total[5m] @ 1700003600)`},
		{expr: `max_over_time(rate(http_requests_total[5m])[30m:1m])`},
		{expr: `avg_over_time(temperature[15m:])`},
		{expr: `label_replace(http_requests_total, "svc", "$1-svc", "job", "(.*)")`},
		{expr: `count_values("celsius", temperature)`},
		{expr: `temperature`}, // room y goes stale after 90 minutes
		{expr: `up == 0`, mayBeEmpty: true},
		{expr: `sum without (instance) (up) * on (job) group_left count by (job) (http_requests_total)`},
		{expr: `resets(http_requests_total[1h])`},
		{expr: `timestamp(temperature)`},
		{expr: `{__name__=~"request_duration_seconds_(sum|count)"}`},
		{expr: `vector(1) + scalar(sum(up))`},
	}
	instants := []int64{t0, t0 + 30*60_000, t0 + 60*60_000 + 7_000, t0 + 100*60_000, t0 + 2*60*60_000 - 1, t0 + 2*60*60_000 + 4*60_000}
	ranges := []struct{ start, end, step int64 }{
		{t0, t0 + 2*60*60_000, 60_000},
		{t0 + 13_000, t0 + 2*60*60_000 + 10*60_000, 37_000},
	}
	for _, q := range queries {
		t.Run(q.expr, func(t *testing.T) {
			for _, ts := range instants {
				want := instantQuery(t, engine, ref, ctx, q.expr, ts)
				got := instantQuery(t, engine, ours, ctx, q.expr, ts)
				require.Empty(t, cmp.Diff(want, got, cmpResult), "instant query at %d", ts)
			}
			for _, r := range ranges {
				want := rangeQuery(t, engine, ref, ctx, q.expr, r.start, r.end, r.step)
				got := rangeQuery(t, engine, ours, ctx, q.expr, r.start, r.end, r.step)
				require.Empty(t, cmp.Diff(want, got, cmpResult), "range query %+v", r)
				if !q.mayBeEmpty {
					require.NotEmpty(t, want.Value.(promql.Matrix), "the reference answers nothing: a vacuous comparison")
				}
			}
		})
	}
}

// queryResult is what is compared of a promql.Result.
type queryResult struct {
	Value    any
	Err      string
	Warnings []string
}

func instantQuery(t *testing.T, engine *promql.Engine, q storage.Queryable, ctx context.Context, expr string, ts int64) queryResult {
	t.Helper()
	qry, err := engine.NewInstantQuery(ctx, q, nil, expr, ms(ts))
	require.NoError(t, err)
	defer qry.Close()
	return toQueryResult(qry.Exec(ctx), expr)
}

func rangeQuery(t *testing.T, engine *promql.Engine, q storage.Queryable, ctx context.Context, expr string, start, end, step int64) queryResult {
	t.Helper()
	qry, err := engine.NewRangeQuery(ctx, q, nil, expr, ms(start), ms(end), time.Duration(step)*time.Millisecond)
	require.NoError(t, err)
	defer qry.Close()
	return toQueryResult(qry.Exec(ctx), expr)
}

// toQueryResult copies res out of the engine's pooled memory, which Close
// returns for reuse by the next query, and sorts instant vectors.
func toQueryResult(res *promql.Result, expr string) queryResult {
	out := queryResult{Value: cloneValue(res.Value)}
	if res.Err != nil {
		out.Err = res.Err.Error()
	}
	warn, info := res.Warnings.AsStrings(expr, 0, 0)
	out.Warnings = append(warn, info...)
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case promql.Matrix:
		out := make(promql.Matrix, len(v))
		for i, s := range v {
			out[i] = promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats), Histograms: slices.Clone(s.Histograms), DropName: s.DropName}
		}
		return out
	case promql.Vector:
		// The order of an instant vector is unspecified (count_values
		// builds it from a map), as in promqltest's unordered eval.
		out := slices.Clone(v)
		slices.SortStableFunc(out, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
		return out
	default:
		return v
	}
}

func TestQueryable_TenantIsolation(t *testing.T) {
	_, client := newFakeSource(t)
	q := newTestQueryable(t, client, nil)
	engine := newTestEngine(t)

	for tn, want := range map[string][]string{
		tenantA: {"api", "db"},
		tenantB: {"other"},
	} {
		t.Run(tn, func(t *testing.T) {
			ctx := tenant.With(context.Background(), tn)
			res := instantQuery(t, engine, q, ctx, `count by (job) ({job=~".+"})`, t0+60*60_000)
			require.Empty(t, res.Err)
			var jobs []string
			for _, s := range res.Value.(promql.Vector) {
				jobs = append(jobs, s.Metric.Get("job"))
			}
			require.ElementsMatch(t, want, jobs)

			cq, err := q.ChunkQuerier(t0, t0+2*60*60_000)
			require.NoError(t, err)
			vals, _, err := cq.LabelValues(ctx, "job", nil)
			require.NoError(t, err)
			require.Equal(t, want, vals)
		})
	}
}

func TestQueryable_NoTenant(t *testing.T) {
	_, client := newFakeSource(t)
	q := newTestQueryable(t, client, nil)
	sq, err := q.Querier(t0, t0+60_000)
	require.NoError(t, err)
	ctx := context.Background()

	set := sq.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), tenant.ErrNoTenant)
	_, _, err = sq.LabelNames(ctx, nil)
	require.ErrorIs(t, err, tenant.ErrNoTenant)
	_, _, err = sq.LabelValues(ctx, "job", nil)
	require.ErrorIs(t, err, tenant.ErrNoTenant)
}

func TestQuerier_Select(t *testing.T) {
	fake, client := newFakeSource(t)
	reg := prometheus.NewPedanticRegistry()
	q := newTestQueryable(t, client, reg)
	ctx := tenant.With(context.Background(), tenantA)
	upMatcher := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

	t.Run("hints set the time range and series asks for no chunks", func(t *testing.T) {
		sq, err := q.Querier(0, math.MaxInt64)
		require.NoError(t, err)
		hints := &storage.SelectHints{Start: t0 + 60_000, End: t0 + 120_000, Func: "series"}
		set := sq.Select(ctx, true, hints, upMatcher)
		var got []string
		for set.Next() {
			got = append(got, set.At().Labels().String())
			// No chunks: the series has no samples, and iterating is safe.
			require.Equal(t, 0, len(samplesOf(t, set.At())))
		}
		require.NoError(t, set.Err())
		require.Equal(t, []string{
			`{__name__="up", instance="a", job="api"}`,
			`{__name__="up", instance="b", job="api"}`,
			`{__name__="up", instance="c", job="db"}`,
		}, got)
		req := fake.lastSeriesRequest()
		require.Equal(t, t0+60_000, req.GetMinTimeMs())
		require.Equal(t, t0+120_000, req.GetMaxTimeMs())
		require.True(t, req.GetSkipChunks())
		require.Equal(t, []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "up"}}, req.GetMatchers())
	})

	t.Run("without hints the querier range applies and chunks decode in order", func(t *testing.T) {
		sq, err := q.Querier(t0, t0+2*60*60_000)
		require.NoError(t, err)
		set := sq.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, "room", "x|y"), labels.MustNewMatcher(labels.MatchNotEqual, "__name__", ""))
		var n int
		for set.Next() {
			want := fake.data[tenantA][indexOf(t, fake.data[tenantA], set.At().Labels())].samples
			got := samplesOf(t, set.At())
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, want[i].t, got[i].t)
				require.Equal(t, math.Float64bits(want[i].v), math.Float64bits(got[i].v))
			}
			n++
		}
		require.NoError(t, set.Err())
		require.Equal(t, 2, n)
		req := fake.lastSeriesRequest()
		require.Equal(t, t0, req.GetMinTimeMs())
		require.Equal(t, t0+2*60*60_000, req.GetMaxTimeMs())
		require.False(t, req.GetSkipChunks())
		require.Equal(t, []*arguspb.LabelMatcher{
			{Type: arguspb.LabelMatcher_RE, Name: "room", Value: "x|y"},
			{Type: arguspb.LabelMatcher_NEQ, Name: "__name__", Value: ""},
		}, req.GetMatchers())
	})

	t.Run("limit stops after that many series", func(t *testing.T) {
		sq, err := q.Querier(t0, t0+60_000)
		require.NoError(t, err)
		set := sq.Select(ctx, false, &storage.SelectHints{Start: t0, End: t0 + 60_000, Limit: 2}, upMatcher)
		var n int
		for set.Next() {
			n++
		}
		require.NoError(t, set.Err())
		require.Equal(t, 2, n)
	})

	t.Run("label calls pass the range, matchers and limit", func(t *testing.T) {
		cq, err := q.ChunkQuerier(t0, t0+60_000)
		require.NoError(t, err)
		names, _, err := cq.LabelNames(ctx, &storage.LabelHints{Limit: 2}, upMatcher)
		require.NoError(t, err)
		require.Equal(t, []string{"__name__", "instance"}, names)
		vals, _, err := cq.LabelValues(ctx, "instance", nil, upMatcher, labels.MustNewMatcher(labels.MatchNotRegexp, "job", "d.*"))
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, vals)
	})

	// 3 series of up with 4 chunks each, 2 series of temperature (room y
	// has 361 samples: 4 chunks), and the limited select's 2 series.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP argus_querier_chunks_fetched_total Chunks received from series sources.
# TYPE argus_querier_chunks_fetched_total counter
argus_querier_chunks_fetched_total 10
# HELP argus_querier_series_fetched_total Series received from series sources.
# TYPE argus_querier_series_fetched_total counter
argus_querier_series_fetched_total 7
`), "argus_querier_chunks_fetched_total", "argus_querier_series_fetched_total"))
}

func indexOf(t *testing.T, ss []fixtureSeries, lset labels.Labels) int {
	t.Helper()
	for i, s := range ss {
		if labels.Equal(s.lset, lset) {
			return i
		}
	}
	t.Fatalf("series %s is not in the fixture", lset)
	return -1
}

func samplesOf(t *testing.T, s storage.Series) []sample {
	t.Helper()
	var out []sample
	it := s.Iterator(nil)
	for it.Next() != 0 {
		ts, v := it.At()
		out = append(out, sample{t: ts, v: v})
	}
	require.NoError(t, it.Err())
	return out
}

func TestQueryable_SourceErrors(t *testing.T) {
	_, client := newFakeSource(t)
	q := newTestQueryable(t, client, nil)
	tests := []struct {
		tenant   string
		wantIs   error
		wantCode int
	}{
		{tenant: "down", wantIs: ErrUnavailable, wantCode: 503},
		{tenant: "invalid", wantIs: ErrInvalidRequest, wantCode: 422},
		{tenant: "broken", wantCode: 0}, // Prometheus's default for the error type
	}
	for _, tc := range tests {
		t.Run(tc.tenant, func(t *testing.T) {
			ctx := tenant.With(context.Background(), tc.tenant)
			sq, err := q.Querier(t0, t0+60_000)
			require.NoError(t, err)
			set := sq.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
			require.False(t, set.Next())
			_, _, lnErr := sq.LabelNames(ctx, nil)
			_, _, lvErr := sq.LabelValues(ctx, "job", nil)
			for _, err := range []error{set.Err(), lnErr, lvErr} {
				require.Error(t, err)
				if tc.wantIs != nil {
					require.ErrorIs(t, err, tc.wantIs)
				}
				code, override := httpStatus(0, err)
				require.Equal(t, tc.wantCode, code)
				require.Equal(t, tc.wantCode != 0, override)
			}
		})
	}
}

// brokenStream is a SeriesSource whose Series answers what the test says,
// to check that protocol violations are caught.
type brokenStream struct {
	arguspb.UnimplementedSeriesSourceServer
	resp []*arguspb.SeriesResponse
}

func (b *brokenStream) Series(_ *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	for _, r := range b.resp {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

func TestQueryable_ProtocolViolations(t *testing.T) {
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
		t.Run(name, func(t *testing.T) {
			q := newTestQueryable(t, startSource(t, &brokenStream{resp: resp}), nil)
			sq, err := q.Querier(0, 1)
			require.NoError(t, err)
			set := sq.Select(tenant.With(context.Background(), tenantA), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
			require.False(t, set.Next())
			require.ErrorIs(t, set.Err(), ErrProtocol)
			code, _ := httpStatus(0, set.Err())
			require.Equal(t, 500, code)
		})
	}
}

// emptyXOR is the data of an XOR chunk without samples: its sample count.
var emptyXOR = []byte{0, 0}

func xorChunk(minT, maxT int64, data []byte) *arguspb.Chunk {
	return &arguspb.Chunk{MinTimeMs: minT, MaxTimeMs: maxT, Encoding: arguspb.ChunkEncoding_CHUNK_ENCODING_XOR, Data: data}
}

func TestFromGRPC_ContextErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := fromGRPC(ctx, "series", status.Error(codes.Canceled, "context canceled"))
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	err = fromGRPC(ctx, "series", status.Error(codes.DeadlineExceeded, "deadline"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	code, _ := httpStatus(0, err)
	require.Equal(t, 503, code)

	// A source's own deadline, with the query's context still live, is not
	// the query's timeout.
	err = fromGRPC(context.Background(), "series", status.Error(codes.DeadlineExceeded, "deadline"))
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}
