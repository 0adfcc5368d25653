package ingester

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func userStats(t *testing.T, ing *Ingester, tenantID string) *arguspb.UserStatsResponse {
	t.Helper()
	resp, err := ing.UserStats(tenantCtx(tenantID), &arguspb.UserStatsRequest{})
	require.NoError(t, err)
	return resp
}

func TestUserStats(t *testing.T) {
	clock := &testClock{ms: 1_000_000} // The start of a rate bucket.
	ing := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(1000, 0), newFakeRing(3, 9),
		func(i *Ingester) { i.now = clock.now })

	// A tenant that never pushed: no series, no rate, its share.
	require.Equal(t, &arguspb.UserStatsResponse{LocalSeriesLimit: 334}, userStats(t, ing, "t1"))

	// 3 series, 600 samples, in the bucket of 1_000_000 (5s wide).
	for k := range 200 {
		push(t, ing, "t1", ts(numbered("m", 0), sample{int64(k), 1}), ts(numbered("m", 1), sample{int64(k), 1}),
			ts(numbered("m", 2), sample{int64(k), 1}))
	}
	st := userStats(t, ing, "t1")
	require.Equal(t, int64(3), st.MemorySeries)
	require.Equal(t, int64(334), st.LocalSeriesLimit)
	require.Zero(t, st.IngestionRate, "the current bucket is not complete yet")

	clock.ms += 4_999
	push(t, ing, "t1", ts(numbered("m", 0), sample{1000, 1})) // Same bucket.
	clock.ms++
	require.InDelta(t, 601.0/60, userStats(t, ing, "t1").IngestionRate, 1e-9)

	// Another 120 samples 30s later: both buckets are in the last minute.
	clock.ms += 30_000
	push(t, ing, "t1", ts(numbered("m", 0), seq(2000, 1, 120)...))
	clock.ms += 5_000
	require.InDelta(t, 721.0/60, userStats(t, ing, "t1").IngestionRate, 1e-9)

	// The first bucket leaves the window 60s after it ended; then the second.
	clock.ms = 1_000_000 + 65_000 - 1
	require.InDelta(t, 721.0/60, userStats(t, ing, "t1").IngestionRate, 1e-9)
	clock.ms++
	require.InDelta(t, 120.0/60, userStats(t, ing, "t1").IngestionRate, 1e-9)
	clock.ms += 10 * 60_000
	st = userStats(t, ing, "t1")
	require.Zero(t, st.IngestionRate, "no push for a minute decays to 0")
	require.Equal(t, int64(3), st.MemorySeries)

	// Other tenants are apart.
	require.Equal(t, &arguspb.UserStatsResponse{LocalSeriesLimit: 334}, userStats(t, ing, "t2"))
}

func TestUserStats_NoLimits(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	push(t, ing, "t1", ts(numbered("m", 0), sample{1, 1}))
	st := userStats(t, ing, "t1")
	require.Equal(t, int64(1), st.MemorySeries)
	require.Zero(t, st.LocalSeriesLimit, "unlimited")
}

func TestUserStats_Errors(t *testing.T) {
	ing, err := New(testConfig(t, t.TempDir()), Deps{})
	require.NoError(t, err)
	_, err = ing.UserStats(tenantCtx("t1"), &arguspb.UserStatsRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "not started")

	ing = startIngester(t, testConfig(t, t.TempDir()))
	_, err = ing.UserStats(context.Background(), &arguspb.UserStatsRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no tenant")
	_, err = ing.UserStats(tenantCtx(".."), &arguspb.UserStatsRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "invalid tenant")
}

func TestRateWindow(t *testing.T) {
	var r rateWindow
	r.current = floorDiv(-7_000, rateBucketMs) // Negative times work too.
	r.add(-7_000, 60)
	require.Zero(t, r.perSecond(-7_000))
	require.InDelta(t, 1.0, r.perSecond(-5_000), 1e-9)
	// A clock that goes back counts in the current bucket.
	r.add(-20_000, 60)
	require.InDelta(t, 1.0, r.perSecond(-5_000), 1e-9)
	require.InDelta(t, 2.0, r.perSecond(0), 1e-9)
	// A jump far ahead clears everything.
	require.Zero(t, r.perSecond(1<<40))
	r.add(1<<40, 6)
	require.InDelta(t, 0.1, r.perSecond(1<<40+rateBucketMs), 1e-9)
}
