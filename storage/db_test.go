package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestDBAppendSelectAcrossWindowsAndTenants(t *testing.T) {
	db, dir := newTestDB(t, DBOptions{})
	m := model{}
	// 5h of data for two tenants: three 2h windows, 30-minute chunks.
	for _, tenant := range []string{"a", "b"} {
		batch := genBatch(t, "job-"+tenant, 6, 0, 5*hourMs, 60_000, 30*60_000)
		require.NoError(t, db.Append(tenant, batch))
		m.add(t, tenant, batch)
	}
	require.Len(t, partitionFiles(t, dir), 3, "one level-0 file per window, shared by the tenants")
	for _, tenant := range []string{"a", "b", "c"} {
		requireSelect(t, db, m, tenant, all[0], all[1])
		requireSelect(t, db, m, tenant, hourMs+1, 3*hourMs-1, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "metric_[12]"))
		requireSelect(t, db, m, tenant, 4*hourMs, 4*hourMs, labels.MustNewMatcher(labels.MatchNotEqual, "instance", "host-1"))
	}
	tenants, err := db.Tenants()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, tenants)

	last, ok, err := db.LastTime("a", m["a"][`{__name__="metric_0", instance="host-0", job="job-a"}`].lbls)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 5*hourMs-60_000, last)
	_, ok, err = db.LastTime("b", m["a"][`{__name__="metric_0", instance="host-0", job="job-a"}`].lbls)
	require.NoError(t, err)
	require.False(t, ok, "tenants are isolated")
}

func TestDBAppendValidation(t *testing.T) {
	db, _ := newTestDB(t, DBOptions{})
	m := model{}
	batch := genBatch(t, "api", 2, 0, 3*hourMs, 60_000, 30*60_000)
	require.NoError(t, db.Append("t", batch))
	m.add(t, "t", batch)

	crossing := genBatch(t, "api", 1, 3*hourMs, 5*hourMs, 60_000, 2*hourMs) // [3h, 5h) crosses 4h
	require.ErrorIs(t, db.Append("t", crossing), ErrInvalidChunk)

	// A batch spanning two windows whose second part is out of order
	// changes nothing, the first window included.
	fresh := genBatch(t, "api", 1, 3*hourMs, 4*hourMs+hourMs/2, 60_000, 30*60_000)
	fresh[0].Labels = labels.FromStrings("__name__", "other")
	old := genBatch(t, "api", 1, 2*hourMs, 3*hourMs, 60_000, 30*60_000)
	both := append(fresh, old...)
	require.ErrorIs(t, db.Append("t", both), ErrOutOfOrderChunk)
	requireSelect(t, db, m, "t", all[0], all[1])

	// So does one with invalid labels in its second window.
	bad := genBatch(t, "api", 1, 4*hourMs, 4*hourMs+hourMs/2, 60_000, 30*60_000)
	bad[0].Labels = labels.FromStrings("__name__", "")
	require.ErrorIs(t, db.Append("t", append(fresh, bad...)), ErrInvalidLabels)
	requireSelect(t, db, m, "t", all[0], all[1])
	require.ErrorIs(t, db.Append("t", bad), ErrInvalidLabels)

	// Out of order within one window is caught by its transaction.
	require.ErrorIs(t, db.Append("t", old), ErrOutOfOrderChunk)
	requireSelect(t, db, m, "t", all[0], all[1])
}

func TestDBLabelNamesAndValues(t *testing.T) {
	db, _ := newTestDB(t, DBOptions{})
	f := newFixture(t)
	for _, b := range f.batches {
		require.NoError(t, db.Append("t", b))
	}
	require.NoError(t, db.Append("u", []Series{{Labels: labels.FromStrings("__name__", "late", "zone", "z1"),
		Chunks: []Chunk{xorChunk(t, []sample{{3 * hourMs, 1}})}}}))

	names, err := db.LabelNames("t", all[0], all[1])
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "code", "env", "instance", "job"}, names)
	names, err = db.LabelNames("t", all[0], all[1], labels.MustNewMatcher(labels.MatchEqual, "job", "db"))
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "instance", "job"}, names)
	values, err := db.LabelValues("t", "job", all[0], all[1])
	require.NoError(t, err)
	require.Equal(t, []string{"api", "db"}, values)
	values, err = db.LabelValues("t", "code", all[0], all[1], labels.MustNewMatcher(labels.MatchRegexp, "env", ".+"))
	require.NoError(t, err)
	require.Equal(t, []string{"500"}, values)

	names, err = db.LabelNames("u", 0, hourMs)
	require.NoError(t, err)
	require.Empty(t, names, "no partition of u overlaps [0, 1h]")
	names, err = db.LabelNames("u", 2*hourMs, 2*hourMs)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "zone"}, names, "a partition overlapping the range contributes all its names")

	// Names that extend one another come sorted ("a" before "ab"), merged
	// over two windows.
	require.NoError(t, db.Append("p", []Series{
		{Labels: labels.FromStrings("a", "1", "ab", "2", "b", "3"), Chunks: []Chunk{xorChunk(t, []sample{{1, 1}})}},
		{Labels: labels.FromStrings("aa", "1"), Chunks: []Chunk{xorChunk(t, []sample{{3 * hourMs, 1}})}},
	}))
	names, err = db.LabelNames("p", all[0], all[1])
	require.NoError(t, err)
	require.Equal(t, []string{"a", "aa", "ab", "b"}, names)

	// The same answers after the window is sealed.
	require.NoError(t, db.Compact(context.Background(), 10*hourMs))
	values, err = db.LabelValues("t", "job", all[0], all[1])
	require.NoError(t, err)
	require.Equal(t, []string{"api", "db"}, values)
	names, err = db.LabelNames("t", all[0], all[1], labels.MustNewMatcher(labels.MatchEqual, "job", "db"))
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "instance", "job"}, names)
}

func TestDBCompactKeepsContentsAndMergesDays(t *testing.T) {
	db, dir := newTestDB(t, DBOptions{})
	m := model{}
	ctx := context.Background()
	// Two days and two hours, flushed one hour at a time, compacted as an
	// ingester would: windows that ended an hour ago are sealed.
	for h := int64(0); h < 50; h++ {
		for _, tenant := range []string{"a", "b"} {
			batch := genBatch(t, tenant, 4, h*hourMs, (h+1)*hourMs, 60_000, 30*60_000)
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
		}
		require.NoError(t, db.Compact(ctx, h*hourMs))
		for _, tenant := range []string{"a", "b"} {
			requireSelect(t, db, m, tenant, all[0], all[1])
			require.Equal(t, m.samples(tenant), storedSamples(t, db, tenant), "every sample stored once")
		}
		if h == 33 { // four windows of day 1 sealed: merged into the day so far
			require.True(t, slices.ContainsFunc(db.Partitions(), func(p PartitionInfo) bool {
				return p.Level == 2 && p.MinTime == 24*hourMs && p.MaxTime == 32*hourMs-1
			}), "%v", db.Partitions())
		}
	}
	levels := map[int]int{}
	for _, p := range db.Partitions() {
		levels[p.Level]++
		require.Equal(t, 2, p.Tenants)
	}
	// Days 0 and 1 merged into level 2; the window [48h, 50h) ends after
	// the last sealBefore (49h), an hour into it: sealed early, level 1.
	require.Equal(t, map[int]int{1: 1, 2: 2}, levels)
	require.NoError(t, db.Compact(ctx, 50*hourMs))
	levels = map[int]int{}
	for _, p := range db.Partitions() {
		levels[p.Level]++
	}
	require.Equal(t, map[int]int{1: 1, 2: 2}, levels)
	require.Len(t, partitionFiles(t, dir), 3)
	for _, tenant := range []string{"a", "b"} {
		requireSelect(t, db, m, tenant, all[0], all[1])
		requireSelect(t, db, m, tenant, 23*hourMs, 25*hourMs, labels.MustNewMatcher(labels.MatchEqual, "instance", "host-2"))
		require.Equal(t, m.samples(tenant), storedSamples(t, db, tenant))
	}

	// A late flush into a sealed window goes to a new level-0 file; reads
	// merge it, and the next Compact merges it into the day.
	late := []Series{{Labels: labels.FromStrings("__name__", "late"), Chunks: genBatch(t, "x", 1, 3*hourMs, 3*hourMs+600_000, 60_000, hourMs)[0].Chunks}}
	require.NoError(t, db.Append("a", late))
	m.add(t, "a", late)
	requireSelect(t, db, m, "a", all[0], all[1])
	// Out of order against the sealed partition.
	require.ErrorIs(t, db.Append("a", genBatch(t, "a", 1, 2*hourMs, 3*hourMs, 60_000, hourMs)), ErrOutOfOrderChunk)
	require.NoError(t, db.Compact(ctx, 50*hourMs))
	require.Len(t, partitionFiles(t, dir), 3)
	requireSelect(t, db, m, "a", all[0], all[1])
	require.Equal(t, m.samples("a"), storedSamples(t, db, "a"))

	// Reopened, the same.
	require.NoError(t, db.Close())
	db2 := openTestDB(t, dir, DBOptions{})
	requireSelect(t, db2, m, "a", all[0], all[1])
	requireSelect(t, db2, m, "b", all[0], all[1])
}

func TestDBClosed(t *testing.T) {
	db, err := OpenDB(t.TempDir(), DBOptions{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.NoError(t, db.Close(), "idempotent")
	ctx := context.Background()
	require.ErrorIs(t, db.Append("t", genBatch(t, "a", 1, 0, hourMs, 60_000, hourMs)), ErrClosed)
	_, err = db.Select("t", 0, 1, SelectOptions{})
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, db.Compact(ctx, 0), ErrClosed)
	require.ErrorIs(t, db.ApplyRetention(ctx, RetentionPolicy{}), ErrClosed)
	require.ErrorIs(t, db.CleanTombstones(ctx, nil), ErrClosed)
	require.ErrorIs(t, db.DeleteTenant("t"), ErrClosed)
	require.ErrorIs(t, db.DeleteSeries("t", Tombstone{0, 1, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "a", "b")}}), ErrClosed)
}
