package ingester

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// pushByRef pushes series as one PushStream request of tenant id would
// arrive, through c's refs (refs as in argus.proto), and requires it taken
// whole.
func pushByRef(t *testing.T, ing *Ingester, c *streamSeries, id string, refs []uint64, series ...*arguspb.TimeSeries) {
	t.Helper()
	req := &arguspb.PushStreamRequest{Tenant: id, SeriesRefs: refs, Request: &arguspb.WriteRequest{Timeseries: series}}
	hints, err := c.resolve(req)
	require.NoError(t, err)
	resp, err := ing.push(tenant.With(context.Background(), id), req.Request, hints.get())
	hints.release()
	require.NoError(t, err)
	require.Zero(t, resp.RejectedSamples, resp.String())
}

// headSeries returns h's series of labels lbls, or nil.
func headSeries(h *tenantHead, lbls []string) *memSeries {
	series := ts(lbls).Labels
	var hasher labelHasher
	for _, l := range series {
		hasher.add(l.Name, l.Value)
	}
	return h.series.getByProto(hasher.sum(), series)
}

// hinted returns the series ref's hint names if it is current in h.
func hinted(c *streamSeries, ref uint64, h *tenantHead) *memSeries {
	s, _ := c.get(ref).hint.series(h)
	return s
}

// TestRefHints_FollowTheHead pushes series by ref through a GC pass that
// removes one of them and through the tenant's head being closed as idle
// and opened again: the hints name the head's series while it is current,
// go stale at each change, and every sample lands in the series of its
// labels (the query answers exactly what was pushed).
func TestRefHints_FollowTheHead(t *testing.T) {
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxChunkIdle = time.Minute
	cfg.TenantIdleTimeout = time.Hour
	ing := startIngesterDeps(t, cfg, Deps{}, func(i *Ingester) { i.now = clock.now })
	a, b := metricName(1), metricName(2)
	var c streamSeries
	t0 := clock.ms

	pushByRef(t, ing, &c, "t1", []uint64{1<<1 | 1, 2<<1 | 1}, ts(a, sample{t0, 1}), ts(b, sample{t0, 2}))
	h := ing.getTenant("t1")
	sa, sb := hinted(&c, 1, h), hinted(&c, 2, h)
	require.NotNil(t, sa)
	require.NotNil(t, sb)
	require.NotSame(t, sa, sb)
	require.Same(t, sa, headSeries(h, a))
	pushByRef(t, ing, &c, "t1", []uint64{2 << 1, 1 << 1}, noLabels(ts(b, sample{t0 + 1, 20})), noLabels(ts(a, sample{t0 + 1, 10})))
	require.Same(t, sa, hinted(&c, 1, h), "a current hint is kept")

	// a goes idle and GC removes it; b is pushed meanwhile and stays.
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	t1 := clock.ms
	pushByRef(t, ing, &c, "t1", []uint64{2 << 1}, noLabels(ts(b, sample{t1, 21})))
	truncateTenants(t, ing)
	require.Nil(t, headSeries(h, a), "a was removed")
	require.Nil(t, hinted(&c, 1, h), "GC made the hints stale")
	require.Nil(t, hinted(&c, 2, h))
	// By ref again: a is created anew, b found again, both remembered.
	pushByRef(t, ing, &c, "t1", []uint64{1 << 1, 2 << 1}, noLabels(ts(a, sample{t1, 11})), noLabels(ts(b, sample{t1 + 1, 22})))
	sa2 := hinted(&c, 1, h)
	require.NotNil(t, sa2)
	require.NotSame(t, sa, sa2)
	require.False(t, sa2.deleted)
	require.Same(t, sb, hinted(&c, 2, h))

	// The tenant goes idle, its head is closed; a push by ref opens a new
	// head, and the old head's hints do not apply to it.
	clock.ms += 2 * hourMs
	flushTenants(t, ing, cutIdleChunks)
	truncateTenants(t, ing)
	clock.ms += 2 * hourMs
	truncateTenants(t, ing)
	require.Empty(t, tenantIDs(ing))
	t2 := clock.ms
	pushByRef(t, ing, &c, "t1", []uint64{1 << 1}, noLabels(ts(a, sample{t2, 12})))
	h2 := ing.getTenant("t1")
	require.NotSame(t, h, h2)
	require.Nil(t, hinted(&c, 2, h2))
	require.Same(t, headSeries(h2, a), hinted(&c, 1, h2))

	requireSamples(t, map[string][]sample{
		lstr(a...): {{t0, 1}, {t0 + 1, 10}, {t1, 11}, {t2, 12}},
		lstr(b...): {{t0, 2}, {t0 + 1, 20}, {t1, 21}, {t1 + 1, 22}},
	}, queryAll(t, ing, "t1", 0, math.MaxInt64))
}

// TestRefHints_TenantsApart defines the same labels under two refs of two
// tenants on one stream: each ref's hint names its own tenant's series.
func TestRefHints_TenantsApart(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := metricName(1)
	var c streamSeries
	pushByRef(t, ing, &c, "t1", []uint64{1<<1 | 1}, ts(a, sample{1000, 1}))
	pushByRef(t, ing, &c, "t2", []uint64{2<<1 | 1}, ts(a, sample{1000, 2}))
	pushByRef(t, ing, &c, "t2", []uint64{2 << 1}, noLabels(ts(a, sample{2000, 20})))
	pushByRef(t, ing, &c, "t1", []uint64{1 << 1}, noLabels(ts(a, sample{2000, 10})))
	h1, h2 := ing.getTenant("t1"), ing.getTenant("t2")
	require.Nil(t, hinted(&c, 1, h2))
	require.Nil(t, hinted(&c, 2, h1))
	require.Same(t, headSeries(h1, a), hinted(&c, 1, h1))
	require.Same(t, headSeries(h2, a), hinted(&c, 2, h2))
	requireSamples(t, map[string][]sample{lstr(a...): {{1000, 1}, {2000, 10}}}, queryAll(t, ing, "t1", 0, math.MaxInt64))
	requireSamples(t, map[string][]sample{lstr(a...): {{1000, 2}, {2000, 20}}}, queryAll(t, ing, "t2", 0, math.MaxInt64))
}
