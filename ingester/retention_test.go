package ingester

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// retentionLimits gives each tenant its retention period (0 if absent).
type retentionLimits map[string]time.Duration

func (r retentionLimits) For(tenant string) *limits.Limits {
	return &limits.Limits{RetentionPeriod: r[tenant]}
}

const day = 24 * time.Hour

// TestRetention_FastForward runs two tenants through three days of samples
// every 10 minutes on an injected clock, with flushes, retention passes and
// WAL truncations as Running would do them: t1 keeps one day, t2 keeps
// everything. t1's data older than a day is gone from its head and from
// the WAL (a series with every sample past the retention does not come back
// at a restart); t2's is all there.
func TestRetention_FastForward(t *testing.T) {
	start := int64(100 * day / time.Millisecond)
	clock := &testClock{ms: start}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	deps := Deps{Limits: retentionLimits{"t1": day}}
	ing := startIngesterDeps(t, cfg, deps, withClock)
	a := []string{"__name__", "a"}
	old := []string{"__name__", "old"}
	want := map[string]map[string][]sample{"t1": {}, "t2": {}}
	const step = 10 * time.Minute
	for n := 0; clock.ms < start+int64(3*day/time.Millisecond); n++ {
		clock.ms += step.Milliseconds()
		for _, id := range []string{"t1", "t2"} {
			tss := []*arguspb.TimeSeries{ts(a, sample{clock.ms, float64(n)})}
			want[id][lstr(a...)] = append(want[id][lstr(a...)], sample{clock.ms, float64(n)})
			if clock.ms < start+int64(day/time.Millisecond)/2 {
				tss = append(tss, ts(old, sample{clock.ms, float64(n)}))
				want[id][lstr(old...)] = append(want[id][lstr(old...)], sample{clock.ms, float64(n)})
			}
			require.Zero(t, push(t, ing, id, tss...).RejectedSamples)
		}
		switch {
		case n%36 == 35: // Every 6 hours.
			require.NoError(t, ing.applyRetention(t.Context()))
			truncateTenants(t, ing)
		case n%6 == 5:
			flushTenants(t, ing, cutIdleChunks)
		}
	}
	require.NoError(t, ing.applyRetention(t.Context()))
	truncateTenants(t, ing)
	truncateTenants(t, ing)
	cutoff := clock.ms - int64(day/time.Millisecond)

	h1 := ing.getTenant("t1")
	require.GreaterOrEqual(t, h1.minMemoryTime(), cutoff)
	require.Nil(t, h1.series.getByHash(lsetHash(old...), labelsOf(old...)), "idle and empty: removed from the head")
	wal := readWAL(t, cfg.Dir)
	require.NotContains(t, wal["t1"], lstr(old...), "its series record left the WAL")
	for _, tm := range wal.times("t1", a...) {
		require.GreaterOrEqual(t, tm, cutoff)
	}
	// t2 keeps every sample: from the DB and the head.
	requireSamples(t, want["t2"], queryAll(t, ing, "t2", 0, math.MaxInt64))
	// t1 reads nothing older than a day, from the DB or the head, and "old" not at all.
	require.Empty(t, inRange(queryAll(t, ing, "t1", 0, cutoff-1), 0, cutoff-1))
	require.NotContains(t, queryAll(t, ing, "t1", 0, math.MaxInt64), lstr(old...))

	// A sample past the retention is refused as too old, even for a new series.
	resp := push(t, ing, "t1", ts([]string{"__name__", "new"}, sample{cutoff - 1, 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)

	ing2 := restart(t, ing, withClock)
	require.Nil(t, ing2.getTenant("t1").series.getByHash(lsetHash(old...), labelsOf(old...)))
	requireSamples(t, want["t2"], queryAll(t, ing2, "t2", 0, math.MaxInt64))
	got := queryAll(t, ing2, "t1", cutoff, math.MaxInt64)
	var inWindow []sample
	for _, s := range want["t1"][lstr(a...)] {
		if s.t >= cutoff {
			inWindow = append(inWindow, s)
		}
	}
	requireSamples(t, map[string][]sample{lstr(a...): inWindow}, inRange(got, cutoff, math.MaxInt64))
	require.Empty(t, inRange(queryAll(t, ing2, "t1", 0, cutoff-1), 0, cutoff-1), "the restart applied the retention before serving")
}

// inRange keeps the samples in [mint, maxt] (chunks may carry samples
// outside the range of a query) and the series left with some.
func inRange(m map[string][]sample, mint, maxt int64) map[string][]sample {
	out := map[string][]sample{}
	for k, ss := range m {
		for _, s := range ss {
			if s.t >= mint && s.t <= maxt {
				out[k] = append(out[k], s)
			}
		}
	}
	return out
}

// TestRetention_DropsExpiredInMemory: samples that expire while still in
// memory (never flushed) are dropped by the retention pass, so that no
// flush writes them and the checkpoint drops them, and the series whose
// every sample expired leaves the head at once, and the WAL at the next
// checkpoint.
func TestRetention_DropsExpiredInMemory(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngesterDeps(t, cfg, Deps{Limits: retentionLimits{"t3": time.Hour}}, withClock)
	s := []string{"__name__", "s"}
	push(t, ing, "t3", ts(s, seq(clock.ms, 60_000, 50)...)) // 50 minutes, one open chunk.
	clock.ms += 2 * time.Hour.Milliseconds()

	require.NoError(t, ing.applyRetention(t.Context()))
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.chunksExpired), 0)
	require.Nil(t, ing.getTenant("t3").series.getByHash(lsetHash(s...), labelsOf(s...)), "every sample expired: the series left the head")
	require.Empty(t, queryAll(t, ing, "t3", 0, math.MaxInt64))
	truncateTenants(t, ing)
	require.NotContains(t, readWAL(t, cfg.Dir)["t3"], lstr(s...), "its record and samples left the WAL")
	require.Equal(t, 0, storedChunks(t, ing, "t3"), "nothing expired was flushed")
	ing2 := restart(t, ing, withClock)
	require.Nil(t, ing2.getTenant("t3"), "nothing of t3 is left in the WAL to open a head")
}

// TestRetention_ExpiredInWALAtRestart: a crash leaves a series in the WAL
// whose samples expire before the restart. Replay skips the samples and the
// start's retention pass removes the series before the first read, so it
// does not come back, not even as a label name.
func TestRetention_ExpiredInWALAtRestart(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	deps := Deps{Limits: retentionLimits{"t3": time.Hour}}
	ing := startIngesterDeps(t, cfg, deps, withClock)
	r := []string{"__name__", "r", "gone", "yes"}
	push(t, ing, "t3", ts(r, seq(clock.ms, 60_000, 10)...))
	push(t, ing, "t3", ts([]string{"__name__", "kept"}, sample{clock.ms + 2*time.Hour.Milliseconds(), 1}))
	cfg.Dir = crash(t, ing)
	clock.ms += 2 * time.Hour.Milliseconds()

	ing2 := startIngesterDeps(t, cfg, deps, withClock)
	require.InDelta(t, 10, testutil.ToFloat64(ing2.metrics.replaySkipped.WithLabelValues("retention")), 0)
	h := ing2.getTenant("t3")
	require.Nil(t, h.series.getByHash(lsetHash(r...), labelsOf(r...)))
	names, err := ing2.LabelNames(tenantCtx("t3"), &arguspb.LabelNamesRequest{MinTimeMs: 0, MaxTimeMs: math.MaxInt64})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__"}, names.Names)
	requireSamples(t, map[string][]sample{lstr("__name__", "kept"): {{clock.ms, 1}}}, queryAll(t, ing2, "t3", 0, math.MaxInt64))
}
