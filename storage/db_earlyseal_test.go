package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDBEarlySeal follows one window through early seals: Compact seals
// the level-0 file of a window that has not ended once sealBefore is
// SealStep into it, or once no Append wrote to it for SealIdle; later
// flushes go to a new level-0 file, checked for order against the parts;
// a step seal writes its part alone until the window has maxEarlyParts,
// then merges them; an idle seal merges; the window ends as one part. Reads are
// exact and hold every sample once at every stage, and after a reopen.
func TestDBEarlySeal(t *testing.T) {
	ctx := context.Background()
	const minute = 60_000
	clock := time.UnixMilli(0)
	opts := DBOptions{Now: func() time.Time { return clock }, SealStep: 20 * time.Minute}
	db, dir := newTestDB(t, opts)
	m := model{}
	appendBoth := func(from, to, span int64) {
		t.Helper()
		for _, tenant := range []string{"a", "b"} {
			batch := genBatch(t, tenant, 4, from, to, 15_000, span)
			require.NoError(t, db.Append(tenant, batch))
			m.add(t, tenant, batch)
		}
	}
	requireFiles := func(want ...string) {
		t.Helper()
		var got []string
		for _, name := range partitionFiles(t, dir) {
			p, _ := parsePartitionName(name)
			got = append(got, fmt.Sprintf("L%d@%s", p.level, time.Duration(p.minT)*time.Millisecond))
		}
		slices.Sort(got)
		slices.Sort(want)
		require.Equal(t, want, got)
		for _, tenant := range []string{"a", "b"} {
			requireSelect(t, db, m, tenant, all[0], all[1])
			require.Equal(t, m.samples(tenant), storedSamples(t, db, tenant), "every sample stored once")
		}
	}

	appendBoth(0, 40*minute, 20*minute)
	require.NoError(t, db.Compact(ctx, 10*minute)) // less than SealStep into the window
	requireFiles("L0@0s")
	require.NoError(t, db.Compact(ctx, 40*minute))
	requireFiles("L1@0s")

	appendBoth(40*minute, 70*minute, 10*minute) // a new level-0 file, checked against the part
	requireFiles("L0@0s", "L1@0s")
	late := genBatch(t, "a", 1, 30*minute, 35*minute, 15_000, 5*minute)
	require.ErrorIs(t, db.Append("a", late), ErrOutOfOrderChunk, "a chunk older than the part's")
	require.NoError(t, db.Compact(ctx, 50*minute)) // 10 minutes since the last early seal
	requireFiles("L0@0s", "L1@0s")
	require.NoError(t, db.Compact(ctx, 60*minute)) // a second part, written alone
	requireFiles("L1@0s", "L1@0s")
	appendBoth(70*minute, 80*minute, 10*minute)
	require.NoError(t, db.Compact(ctx, 80*minute)) // a third
	requireFiles("L1@0s", "L1@0s", "L1@0s")
	appendBoth(80*minute, 90*minute, 10*minute)
	require.NoError(t, db.Compact(ctx, 100*minute)) // maxEarlyParts: merged
	requireFiles("L1@0s")

	appendBoth(90*minute, 100*minute, 10*minute)
	clock = clock.Add(59 * time.Second)
	require.NoError(t, db.Compact(ctx, 100*minute))
	requireFiles("L0@0s", "L1@0s")
	clock = clock.Add(time.Second) // idle for SealIdle: merged with the part
	require.NoError(t, db.Compact(ctx, 100*minute))
	requireFiles("L1@0s")

	appendBoth(100*minute, 120*minute, 10*minute)
	appendBoth(120*minute, 150*minute, 10*minute)
	require.NoError(t, db.Compact(ctx, 125*minute)) // the first window ended: one part
	requireFiles("L1@0s", "L0@2h0m0s")

	require.NoError(t, db.Close())
	db = openTestDB(t, dir, opts)
	requireFiles("L1@0s", "L0@2h0m0s")
	require.NoError(t, db.Compact(ctx, 150*minute)) // SealStep into the second window
	requireFiles("L1@0s", "L1@2h0m0s")
}

// TestDBEarlySealOff checks that negative SealStep and SealIdle seal a
// window only once it has ended.
func TestDBEarlySealOff(t *testing.T) {
	ctx := context.Background()
	clock := time.UnixMilli(0)
	db, dir := newTestDB(t, DBOptions{SealStep: -1, SealIdle: -1, Now: func() time.Time { return clock }})
	batch := genBatch(t, "a", 2, 0, 100*60_000, 15_000, 20*60_000)
	require.NoError(t, db.Append("a", batch))
	clock = clock.Add(time.Hour)
	require.NoError(t, db.Compact(ctx, 110*60_000))
	files := partitionFiles(t, dir)
	require.Len(t, files, 1)
	require.True(t, strings.HasPrefix(files[0], "L0_"), files[0])
	require.NoError(t, db.Compact(ctx, 2*hourMs))
	files = partitionFiles(t, dir)
	require.Len(t, files, 1)
	require.True(t, strings.HasPrefix(files[0], "L1_"), files[0])
}
