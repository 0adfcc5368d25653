package storage

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestDBTombstonesAgainstModel deletes with several matcher kinds and
// ranges (inside one chunk, across chunks and windows, open-ended) and
// compares every read with an in-memory model: right after the delete,
// after compaction, after CleanTombstones and after a restart.
func TestDBTombstonesAgainstModel(t *testing.T) {
	db, dir := newTestDB(t, DBOptions{})
	ctx := context.Background()
	m := model{}
	for _, tenant := range []string{"t", "other"} {
		for h := int64(0); h < 30; h++ {
			batch := genBatch(t, "api", 9, h*hourMs, (h+1)*hourMs, 60_000, 30*60_000)
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
		}
	}
	require.NoError(t, db.Compact(ctx, 24*hourMs)) // day 0 at level 2, [24h, 30h) at level 0
	deletes := []Tombstone{
		{5*hourMs + 10*60_000, 5*hourMs + 12*60_000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", "host-1")}},
		{3 * hourMs, 25 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", "metric_[2]")}},
		{math.MinInt64, 2*hourMs - 1, []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotEqual, "job", "nope"), labels.MustNewMatcher(labels.MatchNotRegexp, "instance", "host-[0-5]")}},
		{28 * hourMs, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", "host-3")}},
		{26*hourMs + 1, 26*hourMs + 1, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", "api|db")}}, // no sample there
		{10 * hourMs, 11 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "missing", "")}},        // every series lacks it
	}
	queries := []struct {
		mint, maxt int64
		ms         []*labels.Matcher
	}{
		{all[0], all[1], nil},
		{5 * hourMs, 6 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-[13]")}},
		{20 * hourMs, 29 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "metric_2")}},
		{0, 2 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotEqual, "instance", "host-0")}},
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range queries {
			for _, tenant := range []string{"t", "other"} {
				requireSelect(t, db, m, tenant, q.mint, q.maxt, q.ms...)
			}
		}
		require.Equal(t, m.samples("other"), storedSamples(t, db, "other"), stage)
	}
	require.ErrorIs(t, db.DeleteSeries("t", Tombstone{MinTime: 1, MaxTime: 0, Matchers: deletes[0].Matchers}), ErrInvalidTombstone)
	require.ErrorIs(t, db.DeleteSeries("t", Tombstone{MinTime: 0, MaxTime: 1}), ErrInvalidTombstone)
	for _, d := range deletes {
		require.NoError(t, db.DeleteSeries("t", d))
		m.deleteRange("t", d.MinTime, d.MaxTime, d.Matchers...)
		check("after delete")
	}
	require.Len(t, db.Tombstones("t"), len(deletes))
	stats, err := db.TenantStats("t")
	require.NoError(t, err)
	require.NotZero(t, stats[0].Tombstones)

	require.NoError(t, db.Compact(ctx, 30*hourMs))
	check("after compact")
	require.Greater(t, storedSamples(t, db, "t"), m.samples("t"), "day 0, sealed before the deletes, still holds deleted samples")

	require.NoError(t, db.Close())
	db = openTestDB(t, dir, DBOptions{})
	require.Len(t, db.Tombstones("t"), len(deletes), "tombstones are durable")
	check("after restart")

	// New data in the range of the open-ended tombstone stays masked: it
	// is not dropped while the head may still flush into its range.
	more := genBatch(t, "api", 9, 30*hourMs, 31*hourMs, 60_000, 30*60_000)
	require.NoError(t, db.Append("t", more))
	m.add(t, "t", more)
	m.deleteRange("t", deletes[3].MinTime, deletes[3].MaxTime, deletes[3].Matchers...)
	check("after a flush into a tombstone")
	require.NoError(t, db.CleanTombstones(ctx, func(string) int64 { return 31 * hourMs }))
	check("after clean")
	require.Equal(t, m.samples("t"), storedSamples(t, db, "t"), "CleanTombstones purged level-0 data too")
	left := db.Tombstones("t")
	require.Len(t, left, 1, "only the open-ended tombstone can still match")
	require.Equal(t, deletes[3].MinTime, left[0].MinTime)
}

// TestDBCleanTombstonesPartlyDeletedChunk deletes 11 of the 120 samples of
// one chunk and checks that CleanTombstones, which then drops the
// tombstone, leaves the 109 others: in a level-0 file, a sealed part, and
// one merged by Compact after the delete.
func TestDBCleanTombstonesPartlyDeletedChunk(t *testing.T) {
	lbls := labels.FromStrings("__name__", "m", "job", "a")
	var samples []sample
	for i := int64(0); i < 120; i++ {
		samples = append(samples, sample{t: i * 15_000, v: float64(i)})
	}
	del := Tombstone{MinTime: 30 * 15_000, MaxTime: 40 * 15_000, Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")}}
	want := slices.DeleteFunc(slices.Clone(samples), func(s sample) bool { return s.t >= del.MinTime && s.t <= del.MaxTime })
	require.Len(t, want, 109)
	for _, tc := range []struct {
		name                string
		sealBefore, compact int64 // Compact before and after the delete; 0: none
	}{
		{name: "level 0"},
		{name: "sealed part", sealBefore: 3 * hourMs},
		{name: "merged by Compact", compact: 3 * hourMs},
		{name: "sealed, merged into the day", sealBefore: 3 * hourMs, compact: 2 * dayMs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, dir := newTestDB(t, DBOptions{})
			ctx := context.Background()
			require.NoError(t, db.Append("t", []Series{{Labels: lbls, Chunks: []Chunk{xorChunk(t, samples)}}}))
			if tc.sealBefore != 0 {
				require.NoError(t, db.Compact(ctx, tc.sealBefore))
			}
			require.NoError(t, db.DeleteSeries("t", del))
			if tc.compact != 0 {
				require.NoError(t, db.Compact(ctx, tc.compact))
			}
			requireSeriesSamples(t, db, lbls, want, "before clean")
			require.NoError(t, db.CleanTombstones(ctx, func(string) int64 { return math.MaxInt64 }))
			require.Empty(t, db.Tombstones("t"), "nothing can be under the tombstone")
			requireSeriesSamples(t, db, lbls, want, "after clean")
			require.Equal(t, int64(109), storedSamples(t, db, "t"))
			require.NoError(t, db.Close())
			require.NoError(t, CheckDB(dir))
			db = openTestDB(t, dir, DBOptions{})
			requireSeriesSamples(t, db, lbls, want, "after restart")
		})
	}
}

// requireSeriesSamples checks that the tenant "t" of db holds the one
// series lbls with exactly want.
func requireSeriesSamples(t *testing.T, db *DB, lbls labels.Labels, want []sample, stage string) {
	t.Helper()
	got, err := db.Select("t", math.MinInt64, math.MaxInt64, SelectOptions{})
	require.NoError(t, err)
	require.Len(t, got, 1, stage)
	require.Equal(t, lbls, got[0].Labels, stage)
	var gs []sample
	for _, c := range got[0].Chunks {
		gs = append(gs, chunkSamples(t, c)...)
	}
	requireSameSamples(t, want, gs, stage)
}
