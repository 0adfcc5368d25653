package ingester

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

var (
	_ TenantLimits = (*limits.Overrides)(nil)
	_ RingCounter  = (*ring.KV)(nil)
	_ RingCounter  = (*ring.Static)(nil)
)

// fakeLimits gives every tenant the same series limits, which the test
// replaces as a runtime reload does (a new *limits.Limits, never an edit).
type fakeLimits struct{ cur atomic.Pointer[limits.Limits] }

func newFakeLimits(perUser, perMetric int) *fakeLimits {
	f := &fakeLimits{}
	f.set(perUser, perMetric)
	return f
}

func (f *fakeLimits) set(perUser, perMetric int) {
	f.cur.Store(&limits.Limits{MaxGlobalSeriesPerUser: perUser, MaxGlobalSeriesPerMetric: perMetric})
}

func (f *fakeLimits) For(string) *limits.Limits { return f.cur.Load() }

// fakeRing is a RingCounter whose counts the test changes.
type fakeRing struct{ rf, healthy atomic.Int64 }

func newFakeRing(rf, healthy int) *fakeRing {
	r := &fakeRing{}
	r.set(rf, healthy)
	return r
}

func (r *fakeRing) set(rf, healthy int) {
	r.rf.Store(int64(rf))
	r.healthy.Store(int64(healthy))
}

func (r *fakeRing) ReplicationFactor() int     { return int(r.rf.Load()) }
func (r *fakeRing) HealthyInstancesCount() int { return int(r.healthy.Load()) }

func TestNewLocalShare(t *testing.T) {
	for _, c := range []struct {
		name                string
		global, rf, healthy int
		want                int
		wantRF, wantHealthy int
	}{
		{"unlimited", 0, 3, 9, 0, 3, 9},
		{"single ingester", 1000, 1, 1, 1000, 1, 1},
		{"rf3 of 9 rounds up", 1000, 3, 9, 334, 3, 9},
		{"exact", 900, 3, 9, 300, 3, 9},
		{"rf1 of 3", 10, 1, 3, 4, 1, 3},
		{"rf equals ingesters", 1000, 3, 3, 1000, 3, 3},
		{"fewer ingesters than rf is capped", 1000, 3, 2, 1000, 3, 2},
		{"no healthy ingester counts as one", 1000, 3, 0, 1000, 3, 1},
		{"rf 0 counts as one", 1000, 0, 4, 250, 1, 4},
		{"tiny share is at least one", 1, 3, 100, 1, 3, 100},
		{"no overflow", math.MaxInt, 3, 10, 2767011611056432743, 3, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := newLocalShare(c.global, c.rf, c.healthy)
			require.Equal(t, localShare{local: c.want, global: c.global, rf: c.wantRF, healthy: c.wantHealthy}, got)
		})
	}
}

// limitsIngester starts an ingester with the series limits lim and the ring
// r, with its own registry so that its metrics can be gathered.
func limitsIngester(t *testing.T, cfg Config, lim TenantLimits, r RingCounter, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	return startIngesterDeps(t, cfg, Deps{Limits: lim, Ring: r, Registerer: prometheus.NewRegistry()}, opts...)
}

// numbered returns the labels of series n of metric name.
func numbered(name string, n int) []string {
	return []string{"__name__", name, "n", fmt.Sprint(n)}
}

// requireRejected checks the only rejected series of resp.
func requireRejected(t *testing.T, resp *arguspb.PushResponse, lbls []string, reason arguspb.RejectReason, samples int64, msg string) {
	t.Helper()
	require.Equal(t, samples, resp.RejectedSamples)
	require.Len(t, resp.Rejected, 1)
	r := resp.Rejected[0]
	require.Equal(t, lstr(lbls...), labelsString(r.Labels))
	require.Equal(t, reason, r.Reason)
	require.Equal(t, samples, r.RejectedSamples)
	require.Equal(t, msg, r.Message)
}

func rejectedByKind(ing *Ingester, k rejectKind) float64 {
	return testutil.ToFloat64(ing.metrics.rejected[k])
}

func TestSeriesLimit_PerUser(t *testing.T) {
	ing := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(5, 0), nil)
	require.Equal(t, int(numRejectKinds), testutil.CollectAndCount(ing.metrics.samplesRejected),
		"every reason exists from the start")
	require.Zero(t, rejectedByKind(ing, rejectPerUserLimit))

	var tss []*arguspb.TimeSeries
	want := map[string][]sample{}
	for n := range 5 {
		tss = append(tss, ts(numbered("m", n), sample{1000, 1}))
		want[lstr(numbered("m", n)...)] = []sample{{1000, 1}}
	}
	require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples, "5 series fit")

	// The 6th is rejected whole; the existing series of the push are appended.
	resp := push(t, ing, "t1",
		ts(numbered("m", 0), sample{2000, 2}),
		ts(numbered("m", 5), sample{2000, 2}, sample{3000, 3}),
		ts(numbered("m", 1), sample{2000, 2}))
	requireRejected(t, resp, numbered("m", 5), arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT, 2,
		`tenant "t1" has 5 in-memory series on this ingester, its share of -ingester.max-global-series-per-user=5 is 5 (5 x replication factor 1 / 1 healthy ingesters, rounded up)`)
	want[lstr(numbered("m", 0)...)] = append(want[lstr(numbered("m", 0)...)], sample{2000, 2})
	want[lstr(numbered("m", 1)...)] = append(want[lstr(numbered("m", 1)...)], sample{2000, 2})
	require.InDelta(t, 2, rejectedByKind(ing, rejectPerUserLimit), 0)

	// At the limit, every existing series keeps taking samples.
	tss = tss[:0]
	for n := range 5 {
		tss = append(tss, ts(numbered("m", n), sample{4000, 4}))
		want[lstr(numbered("m", n)...)] = append(want[lstr(numbered("m", n)...)], sample{4000, 4})
	}
	require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))
	require.Equal(t, 5, ing.getTenant("t1").memorySeries())

	// Another tenant has its own count.
	require.Zero(t, push(t, ing, "t2", ts(numbered("m", 5), sample{1000, 1})).RejectedSamples)
}

func TestSeriesLimit_PerMetric(t *testing.T) {
	ing := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(0, 3), nil)
	var tss []*arguspb.TimeSeries
	for n := range 3 {
		tss = append(tss, ts(numbered("a", n), sample{1000, 1}))
	}
	tss = append(tss, ts(numbered("b", 0), sample{1000, 1}))
	require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)

	resp := push(t, ing, "t1",
		ts(numbered("a", 3), sample{2000, 2}),
		ts(numbered("b", 1), sample{2000, 2}),
		ts(numbered("a", 0), sample{2000, 2}))
	requireRejected(t, resp, numbered("a", 3), arguspb.RejectReason_REJECT_REASON_PER_METRIC_SERIES_LIMIT, 1,
		`tenant "t1" has 3 in-memory series of metric "a" on this ingester, its share of -ingester.max-global-series-per-metric=3 is 3 (3 x replication factor 1 / 1 healthy ingesters, rounded up)`)
	require.InDelta(t, 1, rejectedByKind(ing, rejectPerMetricLimit), 0)
	require.Zero(t, rejectedByKind(ing, rejectPerUserLimit))
	got := queryAll(t, ing, "t1", 0, math.MaxInt64)
	require.Len(t, got, 5)
	require.Equal(t, []sample{{1000, 1}, {2000, 2}}, got[lstr(numbered("a", 0)...)])
	require.Equal(t, []sample{{2000, 2}}, got[lstr(numbered("b", 1)...)])
}

func TestSeriesLimitError(t *testing.T) {
	require.ErrorIs(t, seriesLimitError{kind: rejectPerUserLimit}, ErrMaxSeriesPerUser)
	require.NotErrorIs(t, seriesLimitError{kind: rejectPerUserLimit}, ErrMaxSeriesPerMetric)
	require.ErrorIs(t, seriesLimitError{kind: rejectPerMetricLimit}, ErrMaxSeriesPerMetric)
	require.NotErrorIs(t, seriesLimitError{kind: rejectPerMetricLimit}, ErrMaxSeriesPerUser)
	capped := seriesLimitError{kind: rejectPerUserLimit, tenant: "t1", count: 1200, share: newLocalShare(1000, 3, 2)}
	require.Equal(t, `tenant "t1" has 1200 in-memory series on this ingester, its share of -ingester.max-global-series-per-user=1000 is 1000 (1000 x replication factor 3 / 2 healthy ingesters, capped at 1000)`,
		capped.Error())
}

// TestSeriesLimit_ShareAndReload checks that the local limit follows the
// ring and the limits, both read again by the next push that creates a
// series, and that the gauge shows it.
func TestSeriesLimit_ShareAndReload(t *testing.T) {
	lim, r := newFakeLimits(1000, 0), newFakeRing(3, 9)
	ing := limitsIngester(t, testConfig(t, t.TempDir()), lim, r)
	gauge := func() float64 { return testutil.ToFloat64(newLocalLimitCollector(ing)) }
	pushNew := func(from, n int) *arguspb.PushResponse {
		var tss []*arguspb.TimeSeries
		for k := from; k < from+n; k++ {
			tss = append(tss, ts(numbered("m", k), sample{1000, 1}))
		}
		return push(t, ing, "t1", tss...)
	}

	require.Zero(t, pushNew(0, 334).RejectedSamples, "ceil(1000 x 3 / 9)")
	require.InDelta(t, 334, gauge(), 0)
	requireRejected(t, pushNew(334, 1), numbered("m", 334), arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT, 1,
		`tenant "t1" has 334 in-memory series on this ingester, its share of -ingester.max-global-series-per-user=1000 is 334 (1000 x replication factor 3 / 9 healthy ingesters, rounded up)`)

	// Ingesters leave the ring: the share grows.
	r.set(3, 6)
	require.Zero(t, pushNew(334, 166).RejectedSamples)
	require.InDelta(t, 500, gauge(), 0)
	require.Equal(t, int64(1), pushNew(500, 1).RejectedSamples)

	// A reload lowers the limit under the count: existing series take
	// samples, new ones are refused.
	lim.set(600, 0)
	resp := push(t, ing, "t1", ts(numbered("m", 0), sample{2000, 2}), ts(numbered("m", 600), sample{2000, 2}))
	requireRejected(t, resp, numbered("m", 600), arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT, 1,
		`tenant "t1" has 500 in-memory series on this ingester, its share of -ingester.max-global-series-per-user=600 is 300 (600 x replication factor 3 / 6 healthy ingesters, rounded up)`)
	require.InDelta(t, 300, gauge(), 0)

	// A reload to unlimited lets anything in.
	lim.set(0, 0)
	require.Zero(t, pushNew(1000, 10).RejectedSamples)
	require.Zero(t, gauge())

	// The gauge follows a reload without a push too, and goes with the tenant.
	lim.set(90, 0)
	require.InDelta(t, 45, gauge(), 0)
	require.NoError(t, ing.Stopping(t.Context()))
	require.Zero(t, testutil.CollectAndCount(newLocalLimitCollector(ing)))
}

// TestSeriesLimit_ReplayIsNotLimited restarts with a limit lowered under the
// series in the WAL: replay brings them all back, and they keep taking
// samples, but no new series gets in (per user or, counted from the replay
// too, per metric).
func TestSeriesLimit_ReplayIsNotLimited(t *testing.T) {
	lim := newFakeLimits(10, 0)
	cfg := testConfig(t, t.TempDir())
	ing := limitsIngester(t, cfg, lim, nil)
	var tss []*arguspb.TimeSeries
	want := map[string][]sample{}
	for n := range 10 {
		tss = append(tss, ts(numbered("m", n), sample{1000, 1}))
		want[lstr(numbered("m", n)...)] = []sample{{1000, 1}}
	}
	require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)

	lim.set(3, 0)
	cfg.Dir = crash(t, ing)
	ing2 := limitsIngester(t, cfg, lim, nil)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
	require.Equal(t, 10, ing2.getTenant("t1").memorySeries())

	resp := push(t, ing2, "t1", ts(numbered("m", 0), sample{2000, 2}), ts(numbered("m", 10), sample{2000, 2}))
	requireRejected(t, resp, numbered("m", 10), arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT, 1,
		`tenant "t1" has 10 in-memory series on this ingester, its share of -ingester.max-global-series-per-user=3 is 3 (3 x replication factor 1 / 1 healthy ingesters, rounded up)`)

	lim.set(0, 10)
	resp = push(t, ing2, "t1", ts(numbered("m", 10), sample{2000, 2}), ts(numbered("other", 0), sample{2000, 2}))
	requireRejected(t, resp, numbered("m", 10), arguspb.RejectReason_REJECT_REASON_PER_METRIC_SERIES_LIMIT, 1,
		`tenant "t1" has 10 in-memory series of metric "m" on this ingester, its share of -ingester.max-global-series-per-metric=10 is 10 (10 x replication factor 1 / 1 healthy ingesters, rounded up)`)
}

// TestSeriesLimit_GCFreesCapacity removes idle series at a WAL truncation:
// the counts drop, per user and per metric, and new series fit again.
func TestSeriesLimit_GCFreesCapacity(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	cfg := testConfig(t, t.TempDir())
	ing := limitsIngester(t, cfg, newFakeLimits(4, 3), nil, func(i *Ingester) { i.now = clock.now })
	require.Zero(t, push(t, ing, "t1",
		ts(numbered("a", 0), sample{1000, 1}), ts(numbered("a", 1), sample{1000, 1}),
		ts(numbered("a", 2), sample{1000, 1}), ts(numbered("b", 0), sample{1000, 1})).RejectedSamples)
	require.Equal(t, int64(1), push(t, ing, "t1", ts(numbered("b", 1), sample{1000, 1})).RejectedSamples)

	// a/0 and a/1 go idle and are removed; a/2 and b/0 stay.
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts(numbered("a", 2), sample{2000, 2}), ts(numbered("b", 0), sample{2000, 2}))
	truncateTenants(t, ing)
	require.InDelta(t, 2, testutil.ToFloat64(ing.metrics.seriesGCed), 0)
	h := ing.getTenant("t1")
	require.Equal(t, seriesCounts{total: 2, byMetric: map[string]int{"a": 1, "b": 1}}, h.counts)

	// Two slots are free: a/0 comes back, then b/1 fills the last one.
	require.Zero(t, push(t, ing, "t1", ts(numbered("a", 0), sample{3000, 3}), ts(numbered("b", 1), sample{3000, 3})).RejectedSamples)
	require.Equal(t, int64(1), push(t, ing, "t1", ts(numbered("a", 3), sample{3000, 3})).RejectedSamples)

	// Everything idle is removed: the counts are empty.
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	truncateTenants(t, ing)
	require.Equal(t, seriesCounts{total: 0, byMetric: map[string]int{}}, h.counts)
	require.Zero(t, h.memorySeries())
}

// TestSeriesLimit_RecreatedByGCIsNotLimited removes a series between the
// resolve and the append of a push while other pushes fill the limit: the
// push recreates it anyway, since it was within the limit when resolved.
func TestSeriesLimit_RecreatedByGCIsNotLimited(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	cfg := testConfig(t, t.TempDir())
	ing := limitsIngester(t, cfg, newFakeLimits(2, 0), nil, func(i *Ingester) { i.now = clock.now })
	require.Zero(t, push(t, ing, "t1", ts(numbered("m", 0), sample{1000, 1})).RejectedSamples)
	h := ing.getTenant("t1")

	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	b := getPushBatch()
	defer putPushBatch(b)
	require.NoError(t, h.resolve(&arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(numbered("m", 0), sample{2000, 2})}}, nil, b))
	truncateTenants(t, ing) // m/0 is removed.
	require.True(t, b.entries[0].s.deleted)
	require.Zero(t, push(t, ing, "t1", ts(numbered("m", 1), sample{2000, 2}), ts(numbered("m", 2), sample{2000, 2})).RejectedSamples)
	require.NoError(t, h.appendBatch(b))
	require.Zero(t, b.rej.total)
	require.Equal(t, 3, h.memorySeries())
	require.Equal(t, []sample{{1000, 1}, {2000, 2}}, queryAll(t, ing, "t1", 0, math.MaxInt64)[lstr(numbered("m", 0)...)])
}

// TestSeriesLimit_ConcurrentCreators pushes new series from several
// goroutines at once: exactly the limit gets in, per user and per metric,
// and the counts match the head. Run it with -race.
func TestSeriesLimit_ConcurrentCreators(t *testing.T) {
	const (
		writers   = 8
		perWriter = 40
		perUser   = 100
		perMetric = 30
	)
	ing := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(perUser, perMetric), nil)
	var accepted, rejectedUser, rejectedMetric atomic.Int64
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for n := range perWriter {
				// 5 metrics with 64 series each offered: each is capped at 30,
				// and 5 x 30 = 150 > 100, so the per-user limit bites too.
				name := fmt.Sprintf("m%d", (w*perWriter+n)%5)
				resp, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
					ts([]string{"__name__", name, "n", fmt.Sprint(n), "w", fmt.Sprint(w)}, sample{1000, 1}),
				}})
				if err != nil {
					return err
				}
				switch {
				case resp.RejectedSamples == 0:
					accepted.Add(1)
				case resp.Rejected[0].Reason == arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT:
					rejectedUser.Add(1)
				case resp.Rejected[0].Reason == arguspb.RejectReason_REJECT_REASON_PER_METRIC_SERIES_LIMIT:
					rejectedMetric.Add(1)
				default:
					return fmt.Errorf("unexpected rejection %v", resp.Rejected[0])
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	require.Equal(t, int64(perUser), accepted.Load())
	require.Equal(t, int64(writers*perWriter-perUser), rejectedUser.Load()+rejectedMetric.Load())
	h := ing.getTenant("t1")
	require.Equal(t, perUser, h.memorySeries())
	got := queryAll(t, ing, "t1", 0, math.MaxInt64)
	require.Len(t, got, perUser)
	for k := range 5 {
		name := fmt.Sprintf("m%d", k)
		n := len(queryAll(t, ing, "t1", 0, math.MaxInt64, &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: name}))
		require.LessOrEqual(t, n, perMetric, name)
		require.Equal(t, n, h.counts.byMetric[name], name)
	}
	require.InDelta(t, float64(rejectedUser.Load()), rejectedByKind(ing, rejectPerUserLimit), 0)
	require.InDelta(t, float64(rejectedMetric.Load()), rejectedByKind(ing, rejectPerMetricLimit), 0)
}
