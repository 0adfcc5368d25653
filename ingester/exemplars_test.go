package ingester

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// exemplarLimits gives every tenant max_global_exemplars_per_user n.
type exemplarLimits struct{ n int }

func (l exemplarLimits) For(string) *limits.Limits {
	return &limits.Limits{MaxGlobalExemplarsPerUser: l.n}
}

// testExemplar is one exemplar of a test: its trace ID, value and time.
type testExemplar struct {
	trace string
	v     float64
	t     int64
}

// withExemplars returns a series with only exemplars, as Prometheus sends
// them (apart from the samples).
func withExemplars(t testing.TB, lbls []string, exs ...testExemplar) *arguspb.TimeSeries {
	t.Helper()
	out := ts(lbls)
	for _, e := range exs {
		pe := prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: e.trace}}, Value: e.v, Timestamp: e.t}
		b, err := pe.Marshal()
		require.NoError(t, err)
		out.Exemplars = append(out.Exemplars, b)
	}
	return out
}

// queryExemplars returns every exemplar of tenant, by series, in [mint, maxt].
func queryExemplars(t testing.TB, ing *Ingester, tenantID string, mint, maxt int64) map[string][]testExemplar {
	t.Helper()
	resp, err := ing.QueryExemplars(tenantCtx(tenantID), &arguspb.ExemplarsRequest{MinTimeMs: mint, MaxTimeMs: maxt,
		MatcherSets: []*arguspb.LabelMatchers{{Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: ".+"}}}}})
	require.NoError(t, err)
	out := map[string][]testExemplar{}
	for _, s := range resp.GetSeries() {
		for _, e := range s.GetExemplars() {
			require.Len(t, e.GetLabels(), 1)
			out[labelsString(s.GetLabels())] = append(out[labelsString(s.GetLabels())], testExemplar{e.GetLabels()[0].GetValue(), e.GetValue(), e.GetTimestampMs()})
		}
	}
	return out
}

func TestExemplars_PushQueryRestart(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := limitsIngester(t, cfg, exemplarLimits{100}, newFakeRing(1, 1))
	a, b := []string{"__name__", "a"}, []string{"__name__", "b", "job", "x"}
	push(t, ing, "t1", ts(a, seq(1000, 1000, 5)...), withExemplars(t, a, testExemplar{"t1", 1, 1000}, testExemplar{"t2", 2, 2000}),
		ts(b, sample{1000, 1}))
	resp := push(t, ing, "t1", withExemplars(t, b, testExemplar{"t3", 3, 1500}),
		withExemplars(t, []string{"__name__", "unknown"}, testExemplar{"t4", 4, 1000}), // no sample: dropped
		withExemplars(t, a, testExemplar{"t2", 2, 2000}),                               // duplicate: ignored
		withExemplars(t, a, testExemplar{"t0", 0, 500}))                                // out of order: dropped
	// The response names the series of the request whose exemplars were
	// not stored (a duplicate is stored), for the written headers.
	require.Equal(t, []*arguspb.ExemplarDrops{{SeriesIndex: 1, Dropped: 1}, {SeriesIndex: 3, Dropped: 1}}, resp.GetDroppedExemplars())
	want := map[string][]testExemplar{
		lstr(a...): {{"t1", 1, 1000}, {"t2", 2, 2000}},
		lstr(b...): {{"t3", 3, 1500}},
	}
	require.Equal(t, want, queryExemplars(t, ing, "t1", 0, 10_000))
	require.Equal(t, map[string][]testExemplar{lstr(a...): {{"t2", 2, 2000}}}, queryExemplars(t, ing, "t1", 1600, 10_000))
	require.Empty(t, queryExemplars(t, ing, "t2", 0, 10_000))
	require.InDelta(t, 3, testutil.ToFloat64(ing.metrics.exemplarsAppended), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.exemplarsRejected[exemplarUnknownSeries]), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.exemplarsRejected[exemplarOutOfOrder]), 0)

	restartEx := func(ing *Ingester) *Ingester {
		cfg := ing.cfg
		cfg.Dir = crash(t, ing)
		return limitsIngester(t, cfg, exemplarLimits{100}, newFakeRing(1, 1))
	}
	ing2 := restartEx(ing)
	require.Equal(t, want, queryExemplars(t, ing2, "t1", 0, 10_000), "after kill -9")
	// A checkpoint keeps the exemplars not older than the oldest in-memory
	// sample (all of them here).
	truncateTenants(t, ing2)
	ing3 := restartEx(ing2)
	require.Equal(t, want, queryExemplars(t, ing3, "t1", 0, 10_000), "after a truncation")
}

// TestExemplars_Limit checks that a tenant keeps its share of
// max_global_exemplars_per_user, the newest exemplars, and that the share
// follows the ring.
func TestExemplars_Limit(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	r := newFakeRing(3, 6) // a share of 10 × 3 / 6 = 5
	ing := limitsIngester(t, cfg, exemplarLimits{10}, r)
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 10)...))
	for k := range int64(8) {
		push(t, ing, "t1", withExemplars(t, a, testExemplar{"t", float64(k), k * 1000}))
	}
	got := queryExemplars(t, ing, "t1", 0, 10_000)[lstr(a...)]
	require.Equal(t, []testExemplar{{"t", 3, 3000}, {"t", 4, 4000}, {"t", 5, 5000}, {"t", 6, 6000}, {"t", 7, 7000}}, got)

	r.set(3, 3) // the share grows to 10: nothing is lost, room is made
	for k := int64(8); k < 12; k++ {
		push(t, ing, "t1", withExemplars(t, a, testExemplar{"t", float64(k), k * 1000}))
	}
	require.Len(t, queryExemplars(t, ing, "t1", 0, 20_000)[lstr(a...)], 9)

	disabled := limitsIngester(t, testConfig(t, t.TempDir()), exemplarLimits{0}, r)
	push(t, disabled, "t1", ts(a, sample{0, 1}), withExemplars(t, a, testExemplar{"t", 1, 0}))
	require.Empty(t, queryExemplars(t, disabled, "t1", 0, 10_000))
	require.InDelta(t, 1, testutil.ToFloat64(disabled.metrics.exemplarsRejected[exemplarDisabled]), 0)
}

// TestExemplars_RingGrows checks that a store that starts small keeps every
// exemplar up to the tenant's share, and the newest ones past it.
func TestExemplars_RingGrows(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := limitsIngester(t, cfg, exemplarLimits{3000}, newFakeRing(1, 1))
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, sample{0, 0}))
	const n = 3500
	for k := int64(0); k < n; k += 100 {
		var exs []testExemplar
		for j := k; j < k+100; j++ {
			exs = append(exs, testExemplar{"t", float64(j), j})
		}
		push(t, ing, "t1", withExemplars(t, a, exs...))
	}
	got := queryExemplars(t, ing, "t1", 0, n)[lstr(a...)]
	require.Equal(t, 3000, len(got)) // not require.Len: it prints the list
	require.Equal(t, testExemplar{"t", n - 3000, n - 3000}, got[0])
	require.Equal(t, testExemplar{"t", n - 1, n - 1}, got[len(got)-1])
	require.Equal(t, int64(3000), ing.getTenant("t1").exemplars.capacity)
}

// TestExemplars_OutOfOrderWindow: with an out-of-order window, an exemplar
// older than its series' newest is stored if it is less than the window
// older, as Prometheus's exemplar store does with the TSDB's window, and
// dropped before it; it is replayed after kill -9 as it was stored.
func TestExemplars_OutOfOrderWindow(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	lim := &windowLimits{limits.Limits{MaxGlobalExemplarsPerUser: 100, OutOfOrderTimeWindow: time.Minute}}
	ing := limitsIngester(t, cfg, lim, newFakeRing(1, 1))
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, seq(1000, 1000, 100)...), withExemplars(t, a, testExemplar{"t1", 1, 90_000}))
	push(t, ing, "t1", withExemplars(t, a, testExemplar{"t0", 0, 40_000})) // 50s older: inside
	push(t, ing, "t1", withExemplars(t, a, testExemplar{"tx", 9, 20_000})) // 70s older: before the window
	want := map[string][]testExemplar{lstr(a...): {{"t0", 0, 40_000}, {"t1", 1, 90_000}}}
	require.Equal(t, want, queryExemplars(t, ing, "t1", 0, 200_000))
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.exemplarsRejected[exemplarOutOfOrder]), 0)

	cfg.Dir = crash(t, ing)
	ing = limitsIngester(t, cfg, lim, newFakeRing(1, 1))
	require.Equal(t, want, queryExemplars(t, ing, "t1", 0, 200_000), "after kill -9")

	// Without a window (the default), the same exemplar is dropped.
	lim.l.OutOfOrderTimeWindow = 0
	push(t, ing, "t1", withExemplars(t, a, testExemplar{"t2", 2, 80_000}))
	require.Equal(t, want, queryExemplars(t, ing, "t1", 0, 200_000))
}
