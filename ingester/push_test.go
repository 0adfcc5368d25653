package ingester

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestPush_ReadBack(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "up", "job", "a"}
	b := []string{"__name__", "up", "job", "b"}
	resp := push(t, ing, "t1", ts(a, seq(1000, 1000, 5)...), ts(b, sample{1000, math.NaN()}, sample{2000, math.Inf(-1)}))
	require.Zero(t, resp.RejectedSamples)
	require.Empty(t, resp.Rejected)
	resp = push(t, ing, "t1", ts(a, seq(6000, 1000, 3)...))
	require.Zero(t, resp.RejectedSamples)

	want := map[string][]sample{
		lstr(a...): append(seq(1000, 1000, 5), seq(6000, 1000, 3)...),
		lstr(b...): {{1000, math.NaN()}, {2000, math.Inf(-1)}},
	}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))

	// The time range selects chunks: nothing before the first sample.
	require.Empty(t, queryAll(t, ing, "t1", 0, 999))
	// skip_chunks lists the series without chunks.
	ss := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 1500, SkipChunks: true,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "up"}}})
	require.Len(t, ss, 2)
	for _, s := range ss {
		require.Empty(t, s.Chunks)
	}
}

func TestPush_ChunkCuts(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	lbls := []string{"__name__", "cut"}
	// 250 samples 15s apart from an aligned start: chunks of 120, 120, 10.
	samples := seq(0, 15_000, 250)
	push(t, ing, "t1", ts(lbls, samples...))
	ss := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "cut"}}})
	require.Len(t, ss, 1)
	require.Len(t, ss[0].Chunks, 3)
	require.Equal(t, int64(0), ss[0].Chunks[0].MinTimeMs)
	require.Equal(t, int64(119*15_000), ss[0].Chunks[0].MaxTimeMs)
	require.Equal(t, int64(120*15_000), ss[0].Chunks[1].MinTimeMs)
	require.Equal(t, int64(240*15_000), ss[0].Chunks[2].MinTimeMs)
	requireSamples(t, map[string][]sample{lstr(lbls...): samples}, decodeSeries(t, ss))

	// A sample across a 2h boundary cuts the chunk even when it is small.
	lbls2 := []string{"__name__", "boundary"}
	samples2 := []sample{{chunkRangeMs - 2000, 1}, {chunkRangeMs - 1, 2}, {chunkRangeMs, 3}, {chunkRangeMs + 1000, 4}}
	push(t, ing, "t1", ts(lbls2, samples2...))
	ss = querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "boundary"}}})
	require.Len(t, ss, 1)
	require.Len(t, ss[0].Chunks, 2)
	require.Equal(t, chunkRangeMs-1, ss[0].Chunks[0].MaxTimeMs)
	require.Equal(t, chunkRangeMs, ss[0].Chunks[1].MinTimeMs)
	requireSamples(t, map[string][]sample{lstr(lbls2...): samples2}, decodeSeries(t, ss))

	// Only chunks overlapping the range are sent.
	ss = querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: chunkRangeMs, MaxTimeMs: chunkRangeMs,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "boundary"}}})
	require.Len(t, ss, 1)
	require.Len(t, ss[0].Chunks, 1)
}

func TestChunkIndex(t *testing.T) {
	for _, c := range []struct{ t, want int64 }{
		{0, 0}, {chunkRangeMs - 1, 0}, {chunkRangeMs, 1}, {-1, -1}, {-chunkRangeMs, -1}, {-chunkRangeMs - 1, -2},
	} {
		require.Equal(t, c.want, chunkIndex(c.t), "t=%d", c.t)
	}
}

func TestPush_Rejections(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir())
	ing, err := New(cfg, Deps{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, ing.Starting(t.Context()))
	t.Cleanup(func() {
		require.NoError(t, ing.Stopping(t.Context()))
		checkStores(t, cfg.Dir)
	})
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	const hour = int64(3600_000)
	push(t, ing, "t1", ts(a, sample{10 * hour, 1}), ts(b, sample{10 * hour, 1}))

	resp := push(t, ing, "t1",
		// Out of order, exact duplicate (accepted silently), duplicate with
		// another value, then valid samples.
		ts(a, sample{10*hour - 1, 0}, sample{10 * hour, 1}, sample{10 * hour, 2}, sample{10*hour + 1, 3}),
		// Too old: more than 1h before the head's max time.
		ts(b, sample{9*hour - 1, 0}, sample{10*hour + 5, 5}),
	)
	require.Equal(t, int64(3), resp.RejectedSamples)
	require.Len(t, resp.Rejected, 3)
	byReason := map[arguspb.RejectReason]*arguspb.RejectedSeries{}
	for _, r := range resp.Rejected {
		byReason[r.Reason] = r
		require.Equal(t, int64(1), r.RejectedSamples)
	}
	ooo := byReason[arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER]
	require.NotNil(t, ooo)
	require.Equal(t, "a", ooo.Labels[0].Value)
	require.Contains(t, ooo.Message, "35999999")
	require.Contains(t, ooo.Message, "36000000")
	dup := byReason[arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP]
	require.NotNil(t, dup)
	require.Contains(t, dup.Message, "36000000")
	old := byReason[arguspb.RejectReason_REJECT_REASON_TOO_OLD]
	require.NotNil(t, old)
	require.Equal(t, "b", old.Labels[0].Value)
	require.Contains(t, old.Message, "32399999")

	want := map[string][]sample{
		lstr(a...): {{10 * hour, 1}, {10*hour + 1, 3}},
		lstr(b...): {{10 * hour, 1}, {10*hour + 5, 5}},
	}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))

	rejected := func(reason string) float64 {
		return testutil.ToFloat64(ing.metrics.samplesRejected.WithLabelValues(reason))
	}
	require.InDelta(t, 1, rejected("out_of_order"), 0)
	require.InDelta(t, 1, rejected("duplicate_timestamp"), 0)
	require.InDelta(t, 1, rejected("too_old"), 0)
	require.InDelta(t, 0, rejected("invalid_labels"), 0)
	require.Equal(t, uint64(4), ing.getTenant("t1").appended.Load())
}

func TestPush_SameSeriesTwiceInOneRequest(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "a"}
	resp := push(t, ing, "t1", ts(a, sample{10, 1}, sample{20, 2}), ts(a, sample{15, 9}, sample{30, 3}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	requireSamples(t, map[string][]sample{lstr(a...): {{10, 1}, {20, 2}, {30, 3}}}, queryAll(t, ing, "t1", 0, 100))
}

func TestPush_InvalidSeries(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	valid := []string{"__name__", "ok"}
	for name, lbls := range map[string][]*arguspb.Label{
		"empty":           nil,
		"unsorted":        {{Name: "b", Value: "1"}, {Name: "a", Value: "1"}},
		"duplicate name":  {{Name: "a", Value: "1"}, {Name: "a", Value: "2"}},
		"empty name":      {{Name: "", Value: "1"}},
		"empty value":     {{Name: "a", Value: ""}},
		"invalid utf8":    {{Name: "a", Value: "\xff"}},
		"invalid utf8 nm": {{Name: "\xfe", Value: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp := push(t, ing, "t1",
				&arguspb.TimeSeries{Labels: lbls, Samples: []*arguspb.Sample{{TimestampMs: 1, Value: 1}, {TimestampMs: 2, Value: 2}}},
				ts(valid, sample{1, 1}))
			require.Equal(t, int64(2), resp.RejectedSamples)
			require.Len(t, resp.Rejected, 1)
			require.Equal(t, arguspb.RejectReason_REJECT_REASON_INVALID_LABELS, resp.Rejected[0].Reason)
			require.NotEmpty(t, resp.Rejected[0].Message)
		})
	}
	// A native histogram that does not decode is rejected; the series'
	// float samples are kept.
	hist := ts([]string{"__name__", "h"}, sample{1, 1})
	hist.Histograms = [][]byte{{0x1}}
	resp := push(t, ing, "t1", hist)
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_UNSPECIFIED, resp.Rejected[0].Reason)
	require.Contains(t, resp.Rejected[0].Message, "invalid native histogram")

	requireSamples(t, map[string][]sample{lstr(valid...): {{1, 1}}, `{__name__="h"}`: {{1, 1}}}, queryAll(t, ing, "t1", 0, 100))
}

func TestPush_RejectedSeriesCapped(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	var tss []*arguspb.TimeSeries
	for n := range 20 {
		tss = append(tss, ts(metricName(n), sample{100, 1}))
	}
	push(t, ing, "t1", tss...)
	for _, s := range tss {
		s.Samples[0].TimestampMs = 50
	}
	resp := push(t, ing, "t1", tss...)
	require.Equal(t, int64(20), resp.RejectedSamples)
	require.Len(t, resp.Rejected, maxRejectedSeries)
}

func TestPush_Errors(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing, err := New(cfg, Deps{})
	require.NoError(t, err)

	// Before Starting: not ready, retryable.
	_, err = ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.False(t, ing.Ready())

	require.NoError(t, ing.Starting(t.Context()))
	_, err = ing.Push(t.Context(), &arguspb.WriteRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no tenant")
	_, err = ing.Push(tenantCtx(".."), &arguspb.WriteRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "invalid tenant")

	require.NoError(t, ing.Stopping(t.Context()))
	require.False(t, ing.Ready())
	_, err = ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	st := &seriesStream{ctx: tenantCtx("t1")}
	require.Equal(t, codes.Unavailable, status.Code(ing.Series(&arguspb.SeriesRequest{}, st)))
}

func TestPush_TenantIsolation(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "up"}
	push(t, ing, "t1", ts(a, sample{1, 1}))
	push(t, ing, "t2", ts(a, sample{1, 2}), ts([]string{"__name__", "only_t2"}, sample{5, 5}))
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}}}, queryAll(t, ing, "t1", 0, 10))
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 2}}, lstr("__name__", "only_t2"): {{5, 5}}}, queryAll(t, ing, "t2", 0, 10))
	require.Empty(t, queryAll(t, ing, "t3", 0, 10))

	// Same after persistence and a restart.
	clock := &testClock{ms: 1_000_000_000}
	ing2 := restart(t, ing, func(i *Ingester) { i.now = clock.now })
	clock.ms += ing2.cfg.MaxChunkIdle.Milliseconds() + 1000
	flushTenants(t, ing2, cutIdleChunks)
	require.Equal(t, 1, storedChunks(t, ing2, "t1"))
	require.Equal(t, 2, storedChunks(t, ing2, "t2"))
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}}}, queryAll(t, ing2, "t1", 0, 10))
	requireSamples(t, map[string][]sample{lstr(a...): {{1, 2}}, lstr("__name__", "only_t2"): {{5, 5}}}, queryAll(t, ing2, "t2", 0, 10))
}

func TestValidate(t *testing.T) {
	cfg := testConfig(t, "x")
	require.NoError(t, cfg.Validate())
	require.Equal(t, "x", cfg.Dir)
	bad := cfg
	bad.WALSegmentSize = 1000
	bad.FlushPeriod = 0
	bad.WALSyncPeriod = -1
	err := bad.Validate()
	require.ErrorContains(t, err, "-ingester.wal-segment-size")
	require.ErrorContains(t, err, "-ingester.flush-period")
	require.ErrorContains(t, err, "-ingester.wal-sync-period")
	_, err = New(bad, Deps{})
	require.Error(t, err)
}

// TestPush_RetriedSamplesAreDuplicates checks that a sample at a series'
// latest timestamp with the same value is accepted without being appended
// again wherever that value is: earlier in the same push, in the open chunk,
// in a cut chunk, or in the open chunk rebuilt by a WAL replay.
func TestPush_RetriedSamplesAreDuplicates(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	a := []string{"__name__", "a"}
	nan := math.Float64frombits(0x7ff0000000000123) // A NaN payload must match exactly.

	// Earlier in the same push (the same series twice, and twice in one series).
	resp := push(t, ing, "t1", ts(a, sample{1, 1}, sample{1, 1}), ts(a, sample{1, 1}, sample{2, nan}))
	require.Zero(t, resp.RejectedSamples)
	// In the open chunk: the whole push retried, t=1 older than the latest sample too.
	resp = push(t, ing, "t1", ts(a, sample{1, 1}, sample{2, nan}))
	require.Zero(t, resp.RejectedSamples)
	resp = push(t, ing, "t1", ts(a, sample{1, 2}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
	resp = push(t, ing, "t1", ts(a, sample{2, nan}))
	require.Zero(t, resp.RejectedSamples)
	// Another NaN payload is another value.
	resp = push(t, ing, "t1", ts(a, sample{2, math.NaN()}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)

	// In a cut (finished) chunk, not yet persisted.
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	h := ing.getTenant("t1")
	h.cutIdleChunks()
	resp = push(t, ing, "t1", ts(a, sample{2, nan}))
	require.Zero(t, resp.RejectedSamples)

	// In the open chunk rebuilt by a replay.
	push(t, ing, "t1", ts(a, sample{3, 3}))
	ing2 := restart(t, ing, withClock)
	resp = push(t, ing2, "t1", ts(a, sample{3, 3}))
	require.Zero(t, resp.RejectedSamples)
	resp = push(t, ing2, "t1", ts(a, sample{3, 4}))
	require.Equal(t, int64(1), resp.RejectedSamples)

	requireSamples(t, map[string][]sample{lstr(a...): {{1, 1}, {2, nan}, {3, 3}}}, queryAll(t, ing2, "t1", 0, 10))
}

// TestRemovedSeriesBound checks the bound that lets a new series skip the
// chunk store lookup: series removed from the head raise it, durably, and a
// series recreated once its persisted samples are older than the head's
// minimum valid time is still never appended a sample it already persisted.
func TestRemovedSeriesBound(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	const hour = int64(3600_000)
	old := []string{"__name__", "old"}
	live := []string{"__name__", "live"}
	push(t, ing, "t1", ts(old, sample{10 * hour, 1}), ts(live, sample{10 * hour, 1}))
	require.Equal(t, int64(math.MinInt64), ing.getTenant("t1").removedMaxT.Load())

	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts(live, sample{12 * hour, 2}))
	truncateTenants(t, ing) // "old" is cut, persisted and removed.
	require.Equal(t, 10*hour, ing.getTenant("t1").removedMaxT.Load())

	ing2 := restart(t, ing, withClock)
	h := ing2.getTenant("t1")
	require.Equal(t, 10*hour, h.removedMaxT.Load())
	require.Less(t, h.removedMaxT.Load(), minValidTime(h.maxT.Load()), "new series skip the store lookup")
	// The persisted sample again is an exact duplicate (looked up on disk,
	// retry.go): accepted, not appended; another value at its time is not.
	resp := push(t, ing2, "t1", ts(old, sample{10 * hour, 1}, sample{12 * hour, 5}))
	require.Zero(t, resp.RejectedSamples, "%v", resp.Rejected)
	resp = push(t, ing2, "t1", ts(old, sample{10 * hour, 9}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)

	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	flushTenants(t, ing2, cutIdleChunks)
	requireSamples(t, map[string][]sample{
		lstr(old...):  {{10 * hour, 1}, {12 * hour, 5}},
		lstr(live...): {{10 * hour, 1}, {12 * hour, 2}},
	}, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}
