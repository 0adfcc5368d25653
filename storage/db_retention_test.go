package storage

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDBRetentionFastForward runs three tenants through ten days of hourly
// flushes with an injected clock, sealing, compacting and applying
// retention every hour as an ingester would (one tenant keeps a day, the
// others three). The directory size reaches a plateau, partitions older than
// every cut-off are gone from disk, reads inside each tenant's retention are
// exact and reads before its cut-off return nothing.
func TestDBRetentionFastForward(t *testing.T) {
	ctx := context.Background()
	var now time.Time
	db, dir := newTestDB(t, DBOptions{Now: func() time.Time { return now }})
	periods := map[string]time.Duration{"short": 24 * time.Hour, "long-1": 72 * time.Hour, "long-2": 72 * time.Hour}
	policy := RetentionPolicy{Period: func(tenant string) time.Duration { return periods[tenant] }}
	m := model{}
	var sizes []int64
	var files []int
	for h := int64(0); h < 10*24; h++ {
		for tenant := range periods {
			batch := genBatch(t, tenant, 10, h*hourMs, (h+1)*hourMs, 60_000, 30*60_000)
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
		}
		now = time.UnixMilli((h + 1) * hourMs)
		require.NoError(t, db.Compact(ctx, now.UnixMilli()-hourMs))
		require.NoError(t, db.ApplyRetention(ctx, policy))
		if (h+1)%24 != 0 {
			continue
		}
		sizes = append(sizes, dirSize(t, dir))
		files = append(files, len(partitionFiles(t, dir)))
		for tenant, period := range periods {
			cutoff := now.UnixMilli() - period.Milliseconds()
			m.deleteRange(tenant, math.MinInt64, cutoff-1)
			requireSelect(t, db, m, tenant, all[0], all[1])
			requireSelect(t, db, m, tenant, cutoff-2*hourMs, cutoff+2*hourMs)
			got, err := db.Select(tenant, math.MinInt64, cutoff-1, SelectOptions{})
			require.NoError(t, err)
			require.Empty(t, got, "%s before its cut-off", tenant)
			names, err := db.LabelNames(tenant, math.MinInt64, cutoff-1)
			require.NoError(t, err)
			require.Empty(t, names)
		}
		oldest := now.UnixMilli() - 72*hourMs
		for _, p := range db.Partitions() {
			require.GreaterOrEqual(t, p.MaxTime, oldest, "partition %s is older than every cut-off", p.Path)
		}
	}
	t.Logf("directory bytes at the end of each day: %v; partition files: %v", sizes, files)
	// From day 4 on, every day adds a day and drops a day.
	for d := 4; d < len(sizes); d++ {
		require.Equal(t, files[3], files[d], "partition files at the end of day %d", d+1)
		require.LessOrEqual(t, sizes[d], sizes[3]*6/5, "directory size at the end of day %d", d+1)
	}
}

// TestDBRetentionMaxBytes deletes the oldest partitions while the store is
// over its size bound, never the newest one.
func TestDBRetentionMaxBytes(t *testing.T) {
	ctx := context.Background()
	db, dir := newTestDB(t, DBOptions{})
	m := model{}
	for h := int64(0); h < 12; h++ {
		batch := genBatch(t, "t", 20, h*hourMs, (h+1)*hourMs, 15_000, 30*60_000)
		require.NoError(t, db.Append("t", batch))
		m.add(t, "t", batch)
	}
	require.NoError(t, db.Compact(ctx, 6*hourMs)) // three sealed windows (not yet merged into the day so far), three level-0 ones
	before := db.Partitions()
	require.Len(t, before, 6)
	bound := dirSize(t, dir) - before[0].Bytes/2
	require.NoError(t, db.ApplyRetention(ctx, RetentionPolicy{MaxBytes: bound}))
	after := db.Partitions()
	require.Equal(t, before[1:], after, "only the oldest partition is gone")
	require.LessOrEqual(t, dirSize(t, dir), bound)
	m.deleteRange("t", math.MinInt64, before[0].MaxTime)
	requireSelect(t, db, m, "t", all[0], all[1])

	require.NoError(t, db.ApplyRetention(ctx, RetentionPolicy{MaxBytes: 1}))
	require.Len(t, db.Partitions(), 1, "the newest partition stays")
}
