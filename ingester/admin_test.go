package ingester

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

func pm(t arguspb.LabelMatcher_Type, name, value string) *arguspb.LabelMatcher {
	return &arguspb.LabelMatcher{Type: t, Name: name, Value: value}
}

// deletionData is what TestDeleteSeries pushes: 300 samples (three chunks
// of 120 or fewer) of five series, 1s apart.
var deletionData = [][]string{
	{"__name__", "a", "i", "0", "job", "x"},
	{"__name__", "a", "i", "1", "job", "x"},
	{"__name__", "a", "i", "2", "job", "y"},
	{"__name__", "b", "job", "x"},
	{"__name__", "b", "job", "z"},
}

// withoutRange returns want without the samples in [mint, maxt] of the
// series (by label string) that keep selects.
func withoutRange(want map[string][]sample, keep func(labels.Labels) bool, mint, maxt int64) map[string][]sample {
	out := map[string][]sample{}
	for k, ss := range want {
		lset, err := parseLabels(k)
		if err != nil {
			panic(err)
		}
		var kept []sample
		for _, s := range ss {
			if !keep(lset) || s.t < mint || s.t > maxt {
				kept = append(kept, s)
			}
		}
		if len(kept) > 0 {
			out[k] = kept
		}
	}
	return out
}

func parseLabels(s string) (labels.Labels, error) {
	for _, d := range append(deletionData, []string{"__name__", "a", "i", "9", "job", "x"}) {
		if lstr(d...) == s {
			return labels.FromStrings(d...), nil
		}
	}
	return labels.EmptyLabels(), nil
}

// TestDeleteSeries deletes with each matcher kind and several ranges (one
// sample, across chunk boundaries, a whole series, open-ended) and checks
// every sample that Series returns afterwards, before and after a crash
// (the tombstones are durable), with and without chunks; a sample pushed
// after an open-ended deletion stays visible.
func TestDeleteSeries(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	const start, step, n = 1_000_000, 1000, 300
	want := map[string][]sample{}
	for _, d := range deletionData {
		ss := seq(start, step, n)
		push(t, ing, "t", ts(d, ss...))
		want[lstr(d...)] = ss
	}
	a := ing.AdminServer()
	at := func(i int) int64 { return start + int64(i)*step }
	deletions := []struct {
		name       string
		ms         []*arguspb.LabelMatcher
		mint, maxt int64
		keep       func(labels.Labels) bool
	}{
		{"equal, one sample", []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "i", "0")}, at(5), at(5),
			func(l labels.Labels) bool { return l.Get("i") == "0" }},
		{"not equal, across chunks", []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a"), pm(arguspb.LabelMatcher_NEQ, "job", "x")}, at(100), at(250),
			func(l labels.Labels) bool { return l.Get("__name__") == "a" && l.Get("job") != "x" }},
		{"regexp, whole series", []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "job", "z|w")}, math.MinInt64, math.MaxInt64,
			func(l labels.Labels) bool { return l.Get("job") == "z" }},
		{"not regexp, open end", []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a"), pm(arguspb.LabelMatcher_NRE, "i", "0|2")}, at(290), math.MaxInt64,
			func(l labels.Labels) bool { return l.Get("__name__") == "a" && l.Get("i") != "0" && l.Get("i") != "2" }},
	}
	for _, d := range deletions {
		_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: d.mint, MaxTimeMs: d.maxt, Matchers: d.ms})
		require.NoError(t, err, d.name)
		want = withoutRange(want, d.keep, d.mint, d.maxt)
		requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	}
	require.NotContains(t, want, lstr("__name__", "b", "job", "z"))
	requireSeriesNames(t, ing, want)

	// The open-ended deletion was clamped to the newest sample: later
	// samples are kept.
	later := sample{t: at(n), v: 42}
	push(t, ing, "t", ts(deletionData[1], later))
	k := lstr(deletionData[1]...)
	want[k] = append(want[k], later)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))

	ing = restart(t, ing)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	requireSeriesNames(t, ing, want)
	// Another tenant's data is untouched.
	require.Empty(t, ing.db.Tombstones("other"))
}

// requireSeriesNames checks the series a skip_chunks read returns.
func requireSeriesNames(t testing.TB, ing *Ingester, want map[string][]sample) {
	t.Helper()
	ss := querySeries(t, ing, "t", &arguspb.SeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64, SkipChunks: true,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "__name__", ".+")}})
	var got []string
	for _, s := range ss {
		got = append(got, labelsString(s.Labels))
	}
	require.Equal(t, keys(want), got)
}

// TestDeleteSeries_Invalid checks that each invalid deletion is refused
// with InvalidArgument and records nothing.
func TestDeleteSeries_Invalid(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	push(t, ing, "t", ts(deletionData[0], seq(1000, 1000, 10)...))
	a := ing.AdminServer()
	for name, req := range map[string]*arguspb.DeleteSeriesRequest{
		"no matcher":           {MinTimeMs: 0, MaxTimeMs: 1},
		"all match empty":      {MaxTimeMs: 1, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "job", ".*"), pm(arguspb.LabelMatcher_NEQ, "i", "x")}},
		"start after end":      {MinTimeMs: 2, MaxTimeMs: 1, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "i", "0")}},
		"bad regexp":           {MaxTimeMs: 1, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "i", "(")}},
		"unknown matcher type": {MaxTimeMs: 1, Matchers: []*arguspb.LabelMatcher{pm(7, "i", "0")}},
	} {
		_, err := a.DeleteSeries(tenantCtx("t"), req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
	}
	require.Empty(t, ing.db.Tombstones("t"))
	requireSamples(t, map[string][]sample{lstr(deletionData[0]...): seq(1000, 1000, 10)}, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))

	// A tenant without data here records nothing, and succeeds.
	_, err := a.DeleteSeries(tenantCtx("nobody"), &arguspb.DeleteSeriesRequest{MaxTimeMs: 1, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "i", "0")}})
	require.NoError(t, err)
	require.Empty(t, ing.db.Tombstones("nobody"))
	_, err = a.CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
}

func TestMaskChunks(t *testing.T) {
	c := xorChunk(t, seq(0, 10, 50))
	got, err := maskChunks([]storageChunk{c}, []interval{{0, 95}, {200, 210}, {480, 1000}})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, int64(100), got[0].MinTime)
	require.Equal(t, int64(470), got[0].MaxTime)
	var want []sample
	for _, s := range seq(0, 10, 50) {
		if s.t >= 100 && (s.t < 200 || s.t > 210) && s.t < 480 {
			want = append(want, s)
		}
	}
	require.Equal(t, want, chunkSamples(t, got[0]))

	got, err = maskChunks([]storageChunk{c}, []interval{{-5, 490}})
	require.NoError(t, err)
	require.Empty(t, got, "a chunk left without samples is dropped")
	got, err = maskChunks([]storageChunk{c}, []interval{{500, 600}})
	require.NoError(t, err)
	require.Equal(t, []storageChunk{c}, got, "an untouched chunk is kept as is")
}

type storageChunk = storage.Chunk

func xorChunk(t testing.TB, ss []sample) storage.Chunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, s := range ss {
		app.Append(0, s.t, s.v)
	}
	return storage.Chunk{MinTime: ss[0].t, MaxTime: ss[len(ss)-1].t, Encoding: chunkenc.EncXOR, Data: c.Bytes()}
}

func chunkSamples(t testing.TB, c storage.Chunk) []sample {
	t.Helper()
	xc, err := chunkenc.FromData(c.Encoding, c.Data)
	require.NoError(t, err)
	var out []sample
	it := xc.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	require.NoError(t, it.Err())
	return out
}

// TestDeleteSeries_Persisted deletes data that is only in the DB (flushed
// and out of the head): the DB masks it at once, after a crash, and after
// compaction and clean_tombstones, which purge it.
func TestDeleteSeries_Persisted(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	withClock := func(i *Ingester) { i.now = clock.now }
	ing := startIngester(t, testConfig(t, t.TempDir()), withClock)
	start := clock.ms
	want := map[string][]sample{}
	for _, d := range deletionData {
		ss := seq(start, 1000, 300)
		push(t, ing, "t", ts(d, ss...))
		want[lstr(d...)] = ss
	}
	clock.ms += time.Hour.Milliseconds() // Every open chunk is idle.
	flushTenants(t, ing, cutIdleChunks)
	require.Equal(t, noTime, ing.getTenant("t").minMemoryTime(), "everything is in the DB")
	require.Equal(t, 3*len(deletionData), storedChunks(t, ing, "t"))

	a := ing.AdminServer()
	_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: start + 100_000, MaxTimeMs: start + 250_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a"), pm(arguspb.LabelMatcher_NRE, "i", "1")}})
	require.NoError(t, err)
	_, err = a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "job", "z")}})
	require.NoError(t, err)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("__name__") == "a" && l.Get("i") != "1" }, start+100_000, start+250_000)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("job") == "z" }, math.MinInt64, math.MaxInt64)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	requireSeriesNames(t, ing, want)

	ing = restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))

	// A day later the partitions of the data are sealed and compacted.
	clock.ms += int64(day / time.Millisecond)
	later := sample{t: clock.ms, v: 1}
	push(t, ing, "t", ts(deletionData[3], later))
	k := lstr(deletionData[3]...)
	want[k] = append(want[k], later)
	require.NoError(t, ing.compactDB(t.Context()))
	require.True(t, slices.ContainsFunc(ing.db.(*storage.DB).Partitions(), func(p storage.PartitionInfo) bool {
		return p.Level > 0 && p.MinTime <= start
	}), "the deleted data's partition is sealed: %+v", ing.db.(*storage.DB).Partitions())
	_, err = ing.AdminServer().CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	require.Empty(t, ing.db.Tombstones("t"), "both end before the head's oldest sample, later: nothing can be under them")
	ing = restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))

	// A deletion of a sample still in memory (and in the WAL) outlives the
	// clean: a restart replays the sample, and the tombstone masks it.
	_, err = ing.AdminServer().DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: later.t, MaxTimeMs: later.t,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", deletionData[3][1])}})
	require.NoError(t, err)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("__name__") == deletionData[3][1] }, later.t, later.t)
	require.Equal(t, later.t, ing.getTenant("t").minMemoryTime())
	_, err = ing.AdminServer().CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
	require.Len(t, ing.db.Tombstones("t"), 1, "a sample in memory is under it")
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	ing = restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}

// TestCleanTombstones_Level0 deletes part of data persisted in a level-0
// partition (not sealed) and cleans the tombstones: the purge rewrites the
// partition, and reads answer the same before and after, and after a crash.
func TestCleanTombstones_Level0(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	withClock := func(i *Ingester) { i.now = clock.now }
	ing := startIngester(t, testConfig(t, t.TempDir()), withClock)
	start := clock.ms
	want := map[string][]sample{}
	for _, d := range deletionData {
		ss := seq(start, 1000, 300)
		push(t, ing, "t", ts(d, ss...))
		want[lstr(d...)] = ss
	}
	// A series whose only chunk, open, holds the deleted range.
	young := []string{"__name__", "a", "i", "9", "job", "x"}
	push(t, ing, "t", ts(young, seq(start+90_000, 1000, 51)...))
	want[lstr(young...)] = seq(start+90_000, 1000, 51)
	flushTenants(t, ing, keepOpenChunks) // The two cut chunks of each series; the open one stays.
	a := ing.AdminServer()
	_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: start + 100_000, MaxTimeMs: start + 130_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a")}})
	require.NoError(t, err)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("__name__") == "a" }, start+100_000, start+130_000)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	ing = restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	_, err = ing.AdminServer().CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	ing = restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}

// TestCleanTombstones_FlushedAfterDeletion: the chunks under a tombstone
// reach the DB after it was recorded; cleaning must still purge them.
func TestCleanTombstones_FlushedAfterDeletion(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	start := clock.ms
	want := map[string][]sample{}
	for _, d := range deletionData {
		ss := seq(start, 1000, 300)
		push(t, ing, "t", ts(d, ss...))
		want[lstr(d...)] = ss
	}
	a := ing.AdminServer()
	_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: start + 100_000, MaxTimeMs: start + 130_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a")}})
	require.NoError(t, err)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("__name__") == "a" }, start+100_000, start+130_000)
	flushTenants(t, ing, keepOpenChunks)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	_, err = a.CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}

// TestCleanTombstones_PartlyDeletedChunk: clean_tombstones on a level-0
// partition whose chunk is deleted in its middle purges the deleted
// samples and drops the tombstone (it ends before the oldest sample in
// memory); they must not come back, neither from the DB nor from the WAL
// after a restart.
func TestCleanTombstones_PartlyDeletedChunk(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	start := time.Now().Add(-300 * time.Second).UnixMilli()
	want := map[string][]sample{}
	for _, d := range deletionData {
		ss := seq(start, 1000, 300)
		push(t, ing, "t", ts(d, ss...))
		want[lstr(d...)] = ss
	}
	flushTenants(t, ing, keepOpenChunks)
	a := ing.AdminServer()
	_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: start + 100_000, MaxTimeMs: start + 110_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "a")}})
	require.NoError(t, err)
	want = withoutRange(want, func(l labels.Labels) bool { return l.Get("__name__") == "a" }, start+100_000, start+110_000)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	require.Greater(t, ing.getTenant("t").minMemoryTime(), start+110_000, "the deleted chunk is persisted")
	_, err = a.CleanTombstones(tenantCtx("t"), &arguspb.CleanTombstonesRequest{})
	require.NoError(t, err)
	require.Empty(t, ing.db.Tombstones("t"), "nothing can be under it any more")
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
	ing = restart(t, ing)
	requireSamples(t, want, queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}

// BenchmarkSeriesWithTombstones reads 10K head series of 240 samples (two
// chunks each) without tombstones, with one that covers nothing read, and
// with one that deletes a minute of a tenth of them:
// go test -run '^$' -bench SeriesWithTombstones ./ingester/
func BenchmarkSeriesWithTombstones(b *testing.B) {
	for _, tc := range []struct {
		name string
		del  *arguspb.DeleteSeriesRequest
	}{
		{"tombstones=0", nil},
		{"tombstones=1/matching=none", &arguspb.DeleteSeriesRequest{MinTimeMs: 0, MaxTimeMs: 1 << 40,
			Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "job", "other")}}},
		{"tombstones=1/matching=10%", &arguspb.DeleteSeriesRequest{MinTimeMs: 60_000, MaxTimeMs: 120_000,
			Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "i", ".*0")}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ing := startIngester(b, testConfig(b, b.TempDir()))
			for n := range 10 {
				var tss []*arguspb.TimeSeries
				for i := range 1000 {
					tss = append(tss, ts([]string{"__name__", "m", "i", fmt.Sprint(n*1000 + i), "job", "bench"}, seq(1000, 1000, 240)...))
				}
				push(b, ing, "t", tss...)
			}
			if tc.del != nil {
				_, err := ing.AdminServer().DeleteSeries(tenantCtx("t"), tc.del)
				require.NoError(b, err)
			}
			req := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 1 << 40, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "m")}}
			b.ReportAllocs()
			for b.Loop() {
				require.Len(b, querySeries(b, ing, "t", req), 10_000)
			}
		})
	}
}

// TestDeleteSeries_ClampPerMatch: an open-ended deletion ends at the newest
// sample of the series it matches, not the tenant's, so a series behind
// the others keeps what it receives afterwards, as in Prometheus; and a
// tenant whose data is all persisted, with no head after a restart, is
// deleted too.
func TestDeleteSeries_ClampPerMatch(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	late, ahead := []string{"__name__", "late"}, []string{"__name__", "ahead"}
	push(t, ing, "t", ts(late, seq(100_000, 1000, 10)...), ts(ahead, seq(100_000, 1000, 100)...))
	a := ing.AdminServer()
	_, err := a.DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "late")}})
	require.NoError(t, err)
	push(t, ing, "t", ts(late, sample{150_000, 7}))
	requireSamples(t, map[string][]sample{lstr(late...): {{150_000, 7}}, lstr(ahead...): seq(100_000, 1000, 100)},
		queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}

func TestDeleteSeries_PersistedTenantWithoutHead(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	withClock := func(i *Ingester) { i.now = clock.now }
	ing := startIngester(t, testConfig(t, t.TempDir()), withClock)
	push(t, ing, "t", ts(deletionData[0], seq(clock.ms, 1000, 10)...), ts(deletionData[1], seq(clock.ms, 1000, 10)...))
	clock.ms += 2 * time.Hour.Milliseconds() // Idle: cut, persisted, then out of the head and the WAL.
	flushTenants(t, ing, cutIdleChunks)
	truncateTenants(t, ing)
	truncateTenants(t, ing)
	ing = restart(t, ing, withClock)
	require.Nil(t, ing.getTenant("t"), "no head: the tenant's data is all persisted")
	_, err := ing.AdminServer().DeleteSeries(tenantCtx("t"), &arguspb.DeleteSeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "i", "0")}})
	require.NoError(t, err)
	requireSamples(t, map[string][]sample{lstr(deletionData[1]...): seq(10*int64(day/time.Millisecond), 1000, 10)},
		queryAll(t, ing, "t", math.MinInt64, math.MaxInt64))
}
