package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// TestDBConcurrentUse appends, compacts, cleans tombstones, applies
// retention and reads at the same time (run with -race); the contents are
// exact afterwards.
func TestDBConcurrentUse(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t, DBOptions{Now: func() time.Time { return time.UnixMilli(0) }})
	m := model{}
	const hours = 30
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() { // the flusher
		defer wg.Done()
		defer close(done)
		for h := int64(0); h < hours; h++ {
			batch := genBatch(t, "w", 5, h*hourMs, (h+1)*hourMs, 60_000, 30*60_000)
			if err := db.Append("w", batch); err != nil {
				t.Error(err)
				return
			}
			m.add(t, "w", batch)
		}
	}()
	require.NoError(t, db.DeleteSeries("w", Tombstone{2 * hourMs, 3 * hourMs, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "instance", "host-1")}}))
	background := func(fn func(i int64) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := fn(i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	background(func(i int64) error { return db.Compact(ctx, (i%hours)*hourMs) })
	background(func(int64) error {
		return db.CleanTombstones(ctx, func(string) int64 { return 0 })
	})
	background(func(int64) error {
		return db.ApplyRetention(ctx, RetentionPolicy{Period: func(string) time.Duration { return time.Hour }})
	})
	background(func(int64) error {
		if _, err := db.Select("w", 0, math.MaxInt64, SelectOptions{}, labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-[12]")); err != nil {
			return err
		}
		_, err := db.LabelValues("w", "instance", 0, math.MaxInt64)
		return err
	})
	wg.Wait()
	require.NoError(t, db.Compact(ctx, hours*hourMs))
	m.deleteRange("w", 2*hourMs, 3*hourMs, labels.MustNewMatcher(labels.MatchEqual, "instance", "host-1"))
	requireSelect(t, db, m, "w", all[0], all[1])
	requireNoOverlap(t, db, "w")
}

// TestCheckDBFindsProblems checks that CheckDB reports a label pair missing
// from a level-0 file's label-values index, a temporary file, and a source
// still present next to its complete output; OpenDB cleans up the last two.
func TestCheckDBFindsProblems(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.Append("t", genBatch(t, "api", 3, 0, hourMs, 60_000, 30*60_000)))
	require.NoError(t, db.Append("t", genBatch(t, "api", 3, 2*hourMs, 3*hourMs, 60_000, 30*60_000)))
	require.NoError(t, db.Close())
	require.NoError(t, CheckDB(dir))

	files := partitionFiles(t, dir)
	require.Len(t, files, 2)
	l0 := filepath.Join(dir, files[1])
	bdb, err := bbolt.Open(l0, fileMode, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte("t"))
		// A chunk no series lists, and a label pair gone from the index.
		return errors.Join(tb.Bucket(bucketChunks).SetSequence(2000), tb.Bucket(bucketChunks).Put(appendID(nil, 1000), []byte{1, 0, 0}),
			tb.Bucket(bucketLabelValues).Delete([]byte("job\xffapi")))
	}))
	require.NoError(t, bdb.Close())
	err = CheckDB(dir)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, `label pair "job\xffapi" missing from label_values`)
	require.ErrorContains(t, err, "referenced by no series")
	require.NoError(t, os.Remove(l0))

	// Seal the first window, then put its source back as a crash between
	// the output's rename and the source's removal would leave it.
	src := filepath.Join(dir, files[0])
	saved, err := os.ReadFile(src)
	require.NoError(t, err)
	db, err = OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, db.Compact(context.Background(), 2*hourMs))
	require.NoError(t, db.Close())
	require.NoError(t, os.WriteFile(src, saved, fileMode))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "L1_0_1_00000099.db.tmp"), []byte("partial"), fileMode))
	err = CheckDB(dir)
	require.ErrorContains(t, err, "replaced by a complete output but still there")
	require.ErrorContains(t, err, "temporary file")

	db, err = OpenDB(dir, DBOptions{NoSync: true})
	require.NoError(t, err)
	got, err := db.Select("t", all[0], all[1], SelectOptions{})
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.NoError(t, db.Close())
	// The damaged level-0 file removed above is what the manifest misses.
	require.EqualError(t, CheckDB(dir), fmt.Sprintf("check db %s: chunk store corrupt: 1 problems; partition %s is in the manifest but missing from the directory: its data is lost", dir, files[1]))
}
