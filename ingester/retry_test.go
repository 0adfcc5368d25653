package ingester

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestRetry_PersistedSamples retries pushes whose samples a flush moved to
// the DB between the first push and the retry, without an out-of-order
// window (refused by the head as out of order, or as too old once the head
// moved an hour on) and with one (too old for the window): exact duplicates
// are accepted and stored once, another value at a persisted time is a
// duplicate-timestamp error, a new sample older than the series' chunks in
// memory keeps the head's refusal. Then the series leaves the head (GC) and
// the ingester restarts: the retry is still taken whole.
func TestRetry_PersistedSamples(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  time.Duration
		late    bool // a sample 3 h later moves the head on (and lets the window's flush persist)
		oldKind arguspb.RejectReason
	}{
		{"no window", 0, false, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER},
		{"no window, head moved on", 0, true, arguspb.RejectReason_REJECT_REASON_TOO_OLD},
		{"30m window", 30 * time.Minute, true, arguspb.RejectReason_REJECT_REASON_TOO_OLD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{ms: 4 * 3600_000}
			withClock := func(i *Ingester) { i.now = clock.now }
			ing := oooIngester(t, testConfig(t, t.TempDir()), tc.window, withClock)
			a := []string{"__name__", "a"}
			first := seq(0, 1000, 200) // 120 in a finished chunk, 80 open.
			want := slices.Clone(first)
			require.Zero(t, push(t, ing, "t1", ts(a, first...)).RejectedSamples)
			if tc.late {
				late := sample{3 * 3600_000, 1}
				require.Zero(t, push(t, ing, "t1", ts(a, late)).RejectedSamples)
				want = append(want, late)
			}
			flushTenants(t, ing, keepOpenChunks) // The finished chunks leave memory.
			require.Equal(t, map[bool]int{false: 1, true: 2}[tc.late], storedChunks(t, ing, "t1"))

			// The whole push again: its persisted part, and its in-memory
			// part if any, are accepted and not stored again.
			resp := push(t, ing, "t1", ts(a, first...))
			require.Zero(t, resp.RejectedSamples, "%v", resp.Rejected)
			require.InDelta(t, map[bool]float64{false: 120, true: 200}[tc.late], testutil.ToFloat64(ing.metrics.persistedDuplicates), 0)

			// Another value at a persisted time; a new sample before the
			// series' first, in a push with duplicates.
			resp = push(t, ing, "t1", ts(a, sample{5000, 42}))
			require.Equal(t, int64(1), resp.RejectedSamples)
			require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
			resp = push(t, ing, "t1", ts(a, sample{-1000, 1}, sample{1000, 1}, sample{2000, 2}))
			require.Equal(t, int64(1), resp.RejectedSamples, "%v", resp.Rejected)
			require.Equal(t, tc.oldKind, resp.Rejected[0].Reason)
			require.Contains(t, resp.Rejected[0].Message, "-1000")
			require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.rejected[rejectDuplicate]), 0)
			require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.rejected[rejectOutOfOrder])+
				testutil.ToFloat64(ing.metrics.rejected[rejectTooOld]), 0)
			requireSamples(t, map[string][]sample{lstr(a...): want}, queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))

			// Everything of a persisted and the series removed from the
			// head (another series moved the head an hour past it), then a
			// restart: the retry is taken whole, stored once.
			b := []string{"__name__", "b"}
			require.Zero(t, push(t, ing, "t1", ts(b, sample{4 * 3600_000, 1})).RejectedSamples)
			clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 2000
			flushTenants(t, ing, cutIdleChunks)
			truncateTenants(t, ing)
			require.Nil(t, ing.getTenant("t1").series.getByHash(lsetHash(a...), labelsOf(a...)), "the series left the head")
			ing = oooRestart(t, ing, tc.window, withClock)
			resp = push(t, ing, "t1", ts(a, first...))
			require.Zero(t, resp.RejectedSamples, "%v", resp.Rejected)
			resp = push(t, ing, "t1", ts(a, sample{7000, 8}, sample{199_000, 199}))
			require.Equal(t, int64(1), resp.RejectedSamples)
			require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
			requireSamples(t, map[string][]sample{lstr(a...): want, lstr(b...): {{4 * 3600_000, 1}}},
				queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))
		})
	}
}

// TestRetry_PersistedHistograms retries native histograms after their
// chunks were persisted: exact duplicates are accepted, another histogram
// or a float histogram at a persisted time are duplicates.
func TestRetry_PersistedHistograms(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := oooIngester(t, cfg, 0)
	a := []string{"__name__", "h"}
	var smps []anySample
	for k := range 150 {
		smps = append(smps, anySample{t: int64(k) * 1000, h: expHistogram(k)})
	}
	require.Zero(t, push(t, ing, "t1", histTS(t, a, smps...)).RejectedSamples)
	// 3 h later: the histogram chunks are cut and flushed, and the retry
	// is older than the head's minimum valid time.
	require.Zero(t, push(t, ing, "t1", histTS(t, a, anySample{t: 3 * 3600_000, h: expHistogram(150)})).RejectedSamples)
	before, _ := queryAny(t, ing, "t1")
	flushTenants(t, ing, keepOpenChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))

	resp := push(t, ing, "t1", histTS(t, a, smps...))
	require.Zero(t, resp.RejectedSamples, "%v", resp.Rejected)
	other := expHistogram(3)
	other.Sum++
	resp = push(t, ing, "t1", histTS(t, a, anySample{t: 3000, h: other}, anySample{t: 4000, fh: expHistogram(4).ToFloat(nil)}))
	require.Equal(t, int64(2), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
	require.Equal(t, int64(2), resp.Rejected[0].RejectedHistograms)
	after, _ := queryAny(t, ing, "t1")
	require.Equal(t, before, after)
}

// TestRetry_ConcurrentFlush retries each push's last few batches while
// flushes and WAL truncations run concurrently, so that retried samples are
// in memory, being persisted, or persisted: every retry is accepted whole,
// and every sample is stored exactly once, before and after a restart.
func TestRetry_ConcurrentFlush(t *testing.T) {
	const (
		rounds  = 300
		perPush = 10
		behind  = 15 // batches retried after each push: more than a chunk
	)
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = 2 * walPageSize
	ing := oooIngester(t, cfg, 0)
	series := [][]string{{"__name__", "a"}, {"__name__", "b", "x", "1"}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	background, bctx := errgroup.WithContext(ctx)
	background.Go(func() error {
		for bctx.Err() == nil {
			for _, h := range ing.tenantList() {
				if err := h.flush(bctx, keepOpenChunks); err != nil && bctx.Err() == nil {
					return err
				}
			}
		}
		return nil
	})
	background.Go(func() error {
		for bctx.Err() == nil {
			if err := ing.truncateWAL(bctx); err != nil && bctx.Err() == nil {
				return err
			}
		}
		return nil
	})
	batch := func(r int) []*arguspb.TimeSeries {
		var tss []*arguspb.TimeSeries
		for k, lbls := range series {
			smps := seq(int64(r*perPush)*1000, 1000, perPush)
			for j := range smps {
				smps[j].v = float64(r*perPush+j) + float64(k)/2
			}
			tss = append(tss, ts(lbls, smps...))
		}
		return tss
	}
	for r := range rounds {
		require.Zero(t, push(t, ing, "t1", batch(r)...).RejectedSamples, "round %d", r)
		if r%7 == 0 { // However few the background flushes, some retries find their chunk persisted.
			flushTenants(t, ing, keepOpenChunks)
		}
		for b := max(r-behind, 0); b <= r; b++ {
			resp := push(t, ing, "t1", batch(b)...)
			require.Zero(t, resp.RejectedSamples, "round %d, retry of %d: %v", r, b, resp.Rejected)
		}
	}
	cancel()
	require.NoError(t, background.Wait())
	want := map[string][]sample{}
	for k, lbls := range series {
		for j := range rounds * perPush {
			want[lstr(lbls...)] = append(want[lstr(lbls...)], sample{int64(j) * 1000, float64(j) + float64(k)/2})
		}
	}
	requireSamples(t, want, queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))
	require.Positive(t, testutil.ToFloat64(ing.metrics.persistedDuplicates), "some retries were looked up on disk")
	ing2 := oooRestart(t, ing, 0)
	requireSamples(t, want, queryAll(t, ing2, "t1", math.MinInt64, math.MaxInt64))
}
