package ingester

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// TestCompaction_UnderPushesAndQueries runs the service loops (flush, WAL
// truncation, DB compaction and retention) with short periods while a day
// and a half of samples is pushed on an injected clock and queried between
// pushes: every query is exact while partitions are sealed and merged, and
// so is a restart after a crash.
func TestCompaction_UnderPushesAndQueries(t *testing.T) {
	const series = 8
	clock := &atomicClock{}
	start := int64(10 * day / time.Millisecond)
	clock.ms.Store(start)
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	cfg.FlushPeriod = 2 * time.Millisecond
	cfg.WALTruncatePeriod = 10 * time.Millisecond
	ing := startIngester(t, cfg, withClock)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ing.Running(ctx) }()

	want := map[string][]sample{}
	for round := 0; clock.ms.Load() < start+int64(36*time.Hour/time.Millisecond); round++ {
		now := clock.ms.Add(time.Minute.Milliseconds())
		var tss []*arguspb.TimeSeries
		for n := range series {
			lbls := []string{"__name__", "c", "n", fmt.Sprint(n)}
			smp := sample{now, float64(round*series + n)}
			tss = append(tss, ts(lbls, smp))
			want[lstr(lbls...)] = append(want[lstr(lbls...)], smp)
		}
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
		if round%120 == 0 {
			requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))
			time.Sleep(5 * time.Millisecond) // Lets the loops run between pushes.
		}
	}
	// The sealed watermark trails the head by less than a chunk range plus
	// the head's valid window; wait for a compaction past the first day.
	require.Eventually(t, func() bool {
		for _, p := range ing.db.(*storage.DB).Partitions() {
			if p.Level > 0 && p.MaxTime-p.MinTime+1 >= int64(day/time.Millisecond) {
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "a day of partitions is merged")
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))
	cancel()
	require.NoError(t, <-done)
	require.Greater(t, ing.sealed.Load(), start+int64(day/time.Millisecond))

	ing2 := restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}

// TestSealBefore: the watermark is the oldest time any flush can still
// write, and a tenant that pushes for the first time is held to it.
func TestSealBefore(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	hour := time.Hour.Milliseconds()
	base := clock.ms
	push(t, ing, "t1", ts([]string{"__name__", "a"}, seq(base, 60_000, 10)...))
	push(t, ing, "t2", ts([]string{"__name__", "b"}, sample{base + 3*hour, 1}))
	// t1 holds it back most: its minimum valid time, 1h before its newest
	// sample, is older than its oldest sample in memory (t2's is base+2h).
	w := base + 9*60_000 - hour
	require.Equal(t, w, ing.sealBefore())
	require.NoError(t, ing.compactDB(t.Context()))
	require.Equal(t, w, ing.sealed.Load())

	// A new tenant cannot write below the watermark.
	resp := push(t, ing, "t3", ts([]string{"__name__", "c"}, sample{w - 1, 1}, sample{w, 2}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)

	// t1 moves on and is flushed; t3's own minimum valid time (w-1h) is
	// below the watermark, which never goes down.
	push(t, ing, "t1", ts([]string{"__name__", "a"}, sample{base + 3*hour, 1}))
	flushTenants(t, ing, keepOpenChunks)
	require.Equal(t, w, ing.sealBefore())
}
