package ingester

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestRestart_AfterCrash(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(map[bool]string{true: "snappy", false: "uncompressed"}[compress], func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.WALCompression = compress
			cfg.WALSegmentSize = walPageSize // Many segments.
			ing := startIngester(t, cfg)
			want := map[string][]sample{}
			for round := range 30 {
				var tss []*arguspb.TimeSeries
				for n := range 200 {
					smp := sample{int64(round) * 15_000, float64(round*100 + n)}
					tss = append(tss, ts(metricName(n), smp))
					want[lstr(metricName(n)...)] = append(want[lstr(metricName(n)...)], smp)
				}
				require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
			}
			first, last, err := wlog.Segments(filepath.Join(cfg.Dir, walDirName))
			require.NoError(t, err)
			require.Greater(t, last, first, "the test should span segments")

			ing2 := restart(t, ing)
			requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
			require.InDelta(t, 6000, testutil.ToFloat64(ing2.metrics.replaySamples), 0)

			// The restarted head keeps accepting (in order) and rejecting (out of order).
			resp := push(t, ing2, "t1", ts(metricName(0), sample{30 * 15_000, 1}, sample{0, 1}))
			require.Equal(t, int64(1), resp.RejectedSamples)
			want[lstr(metricName(0)...)] = append(want[lstr(metricName(0)...)], sample{30 * 15_000, 1})

			// And a second crash after that brings back everything again.
			ing3 := restart(t, ing2)
			requireSamples(t, want, queryAll(t, ing3, "t1", 0, math.MaxInt64))
		})
	}
}

// TestRestart_AfterPartialPersistence crashes with some chunks in the store
// and the WAL still holding their samples: each sample comes back once.
func TestRestart_AfterPartialPersistence(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 250)...), ts(b, seq(0, 1000, 100)...))
	flushTenants(t, ing, keepOpenChunks) // a: 2 chunks persisted; b: none
	require.Equal(t, 2, storedChunks(t, ing, "t1"))
	push(t, ing, "t1", ts(a, seq(250_000, 1000, 200)...), ts(b, seq(100_000, 1000, 30)...))
	want := map[string][]sample{
		lstr(a...): append(seq(0, 1000, 250), seq(250_000, 1000, 200)...),
		lstr(b...): append(seq(0, 1000, 100), seq(100_000, 1000, 30)...),
	}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))

	ing2 := restart(t, ing)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
	require.InDelta(t, 240, testutil.ToFloat64(ing2.metrics.replaySkipped.WithLabelValues("persisted")), 0)

	// A retried sample at the persisted boundary is accepted (an exact
	// duplicate, looked up on disk) and not appended twice.
	resp := push(t, ing2, "t1", ts(a, sample{119_000, 119}))
	require.Zero(t, resp.RejectedSamples)

	// Persist everything, restart: still each sample once.
	flushTenants(t, ing2, keepOpenChunks)
	ing3 := restart(t, ing2)
	requireSamples(t, want, queryAll(t, ing3, "t1", 0, math.MaxInt64))
}

// TestRestart_AfterTruncation crashes after checkpoints and truncations,
// including series removed from the head and recreated.
func TestRestart_AfterTruncation(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	a := []string{"__name__", "a"}
	gone := []string{"__name__", "gone"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 130)...), ts(gone, sample{0, 42}))
	truncateTenants(t, ing) // persists a's first chunk; checkpoint.N
	walDir := filepath.Join(cfg.Dir, walDirName)
	_, cp, err := wlog.LastCheckpoint(walDir)
	require.NoError(t, err)
	first, _, err := wlog.Segments(walDir)
	require.NoError(t, err)
	require.Equal(t, cp+1, first, "segments up to the checkpoint are deleted")

	push(t, ing, "t1", ts(a, seq(130_000, 1000, 10)...))
	// "gone" idles out: cut, persisted, then removed from the head.
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts(a, sample{140_000, 140}))
	truncateTenants(t, ing)
	truncateTenants(t, ing) // "gone" now has nothing in memory and is old: removed.
	require.Nil(t, ing.getTenant("t1").series.getByHash(lsetHash(gone...), labelsOf(gone...)))
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.seriesGCed), 0)

	want := map[string][]sample{
		lstr(a...):    append(seq(0, 1000, 130), append(seq(130_000, 1000, 10), sample{140_000, 140})...),
		lstr(gone...): {{0, 42}},
	}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))

	ing2 := restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))

	// The removed series comes back with a new ref; its persisted sample
	// is an exact duplicate (accepted, not appended again), newer ones are
	// appended.
	resp := push(t, ing2, "t1", ts(gone, sample{0, 42}, sample{5000, 43}))
	require.Zero(t, resp.RejectedSamples)
	want[lstr(gone...)] = append(want[lstr(gone...)], sample{5000, 43})
	truncateTenants(t, ing2)
	push(t, ing2, "t1", ts(a, sample{150_000, 150}))
	want[lstr(a...)] = append(want[lstr(a...)], sample{150_000, 150})

	ing3 := restart(t, ing2, withClock)
	requireSamples(t, want, queryAll(t, ing3, "t1", 0, math.MaxInt64))
}

// TestRestart_SeriesRecreatedBeforeCrash covers a series removed by GC and
// recreated under a new ref, then a crash before the next checkpoint: both
// series records are in the WAL, and replay maps the second to the first.
func TestRestart_SeriesRecreatedBeforeCrash(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	s := []string{"__name__", "s"}
	push(t, ing, "t1", ts(s, sample{0, 1}))
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	h := ing.getTenant("t1")
	require.NoError(t, h.flush(t.Context(), cutIdleChunks))
	// Remove the series without checkpointing, as if the checkpoint failed.
	ing.truncMu.Lock()
	n, err := ing.removeIdleSeries(ing.tenantList())
	ing.truncMu.Unlock()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	push(t, ing, "t1", ts(s, sample{1000, 2}))
	require.NotEqual(t, chunksRef(1), ing.getTenant("t1").series.getByHash(lsetHash(s...), labelsOf(s...)).ref)

	want := map[string][]sample{lstr(s...): {{0, 1}, {1000, 2}}}
	ing2 := restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
	require.Len(t, ing2.getTenant("t1").aliases, 1)

	// The alias survives a checkpoint, so the next replay still finds it.
	push(t, ing2, "t1", ts(s, sample{2000, 3}))
	truncateTenants(t, ing2)
	want[lstr(s...)] = append(want[lstr(s...)], sample{2000, 3})
	ing3 := restart(t, ing2, withClock)
	requireSamples(t, want, queryAll(t, ing3, "t1", 0, math.MaxInt64))
}

func TestRestart_CorruptedSegmentTail(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, sample{1, 1}))
	push(t, ing, "t1", ts(a, sample{2, 2}))
	dir := crash(t, ing)

	// A torn write at the end of the last segment (power loss).
	walDir := filepath.Join(dir, walDirName)
	_, last, err := wlog.Segments(walDir)
	require.NoError(t, err)
	f, err := os.OpenFile(wlog.SegmentName(walDir, last), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{2, 0, 50, 1, 2, 3, 4, 9, 9}) // A first-fragment header with a bad CRC.
	require.NoError(t, err)
	require.NoError(t, f.Close())

	cfg.Dir = dir
	ing2 := startIngester(t, cfg)
	require.InDelta(t, 1, testutil.ToFloat64(ing2.metrics.walCorruptions), 0)
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}, {2, 2}}}, queryAll(t, ing2, "t1", 0, 10))
	push(t, ing2, "t1", ts(a, sample{3, 3}))
	ing3 := restart(t, ing2)
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}, {2, 2}, {3, 3}}}, queryAll(t, ing3, "t1", 0, 10))
}

// TestPush_WALFailure: a failed WAL write fails the push, appends nothing,
// refuses later pushes of every tenant (they share the WAL) and makes
// Running return.
func TestPush_WALFailure(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, sample{1, 1}))
	ing.wal.mu.Lock()
	require.NoError(t, ing.wal.wl.Close()) // Writes now fail.
	ing.wal.mu.Unlock()

	_, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{2, 2})}})
	require.Equal(t, codes.Internal, status.Code(err))
	_, err = ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{3, 3})}})
	require.Equal(t, codes.Internal, status.Code(err))
	require.ErrorContains(t, err, ErrWALFailed.Error())
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}}}, queryAll(t, ing, "t1", 0, 10))
	require.Error(t, ing.Running(t.Context()))

	// The WAL is shared: every tenant is refused until a restart.
	_, err = ing.Push(tenantCtx("t2"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1, 1})}})
	require.Equal(t, codes.Internal, status.Code(err))

	ing.wal.mu.Lock()
	ing.wal.wl = nil // Already closed.
	ing.wal.mu.Unlock()
}

// TestStopping persists the finished chunks and leaves the open ones to the
// WAL; a restart brings back everything exactly once.
func TestStopping(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing, err := New(cfg, Deps{})
	require.NoError(t, err)
	require.NoError(t, ing.Starting(t.Context()))
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 130)...))
	require.NoError(t, ing.Stopping(t.Context()))
	checkStores(t, cfg.Dir)

	ing2 := startIngester(t, cfg)
	require.Equal(t, 1, storedChunks(t, ing2, "t1"))
	requireSamples(t, map[string][]sample{lstr(a...): seq(0, 1000, 130)}, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}

// TestRunning runs the service loops with short periods: chunks get
// persisted and the WAL truncated without calls from the test.
func TestRunning(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.FlushPeriod = 10 * time.Millisecond
	cfg.WALTruncatePeriod = 30 * time.Millisecond
	cfg.WALSyncPeriod = 5 * time.Millisecond
	ing := startIngester(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ing.Running(ctx) }()

	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 250)...))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(ing.metrics.chunksPersisted) == 2 &&
			testutil.ToFloat64(ing.metrics.walTruncations.WithLabelValues(truncateOutcomeOK)) >= 1
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	ing2 := restart(t, ing)
	requireSamples(t, map[string][]sample{lstr(a...): seq(0, 1000, 250)}, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}

// TestSyncEveryPush runs with -ingester.wal-sync-period=0.
func TestSyncEveryPush(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WALSyncPeriod = 0
	ing := startIngester(t, cfg)
	a := []string{"__name__", "a"}
	push(t, ing, "t1", ts(a, sample{1, 1}))
	require.False(t, ing.wal.dirty)
	ing2 := restart(t, ing)
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}}}, queryAll(t, ing2, "t1", 0, 10))
}
