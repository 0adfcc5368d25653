package ingester

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

const scrapeMs = 15_000

// scrapeData pushes scrapes [from, to) of n series (one sample per
// scrape, every 15 s from time 0) to ing for tenant t1, perPush scrapes per
// push, calling tick after each push; it adds the samples to want.
func scrapeData(t *testing.T, ing *Ingester, n, from, to, perPush int, want map[string][]sample, tick func(lastMs int64)) {
	t.Helper()
	for k := from; k < to; k += perPush {
		var tss []*arguspb.TimeSeries
		for s := range n {
			var smps []sample
			for j := k; j < min(k+perPush, to); j++ {
				smps = append(smps, sample{int64(j) * scrapeMs, float64(j*1000 + s)})
			}
			tss = append(tss, ts(metricName(s), smps...))
			want[lstr(metricName(s)...)] = append(want[lstr(metricName(s)...)], smps...)
		}
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
		if tick != nil {
			tick(int64(min(k+perPush, to)-1) * scrapeMs)
		}
	}
}

// walDirBytes returns the bytes of every file of the WAL under dir
// (segments and checkpoints).
func walDirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, walDirName), func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	}))
	return n
}

// snapshotSteps sets a hook that copies the data directory of ing at each
// step of a truncation, as a kill -9 there would leave it, into snaps.
func snapshotSteps(t *testing.T, ing *Ingester, snaps map[truncStep]string) {
	ing.wal.testStep = func(s truncStep) {
		dst := t.TempDir()
		require.NoError(t, os.CopyFS(dst, os.DirFS(ing.cfg.Dir)))
		snaps[s] = dst
	}
}

var allSteps = []truncStep{stepFlushed, stepGCed, stepCut, stepCheckpointed, stepTruncated, stepDone}

// TestTruncation_CrashAtEachStep kills the ingester (a copy of its data
// directory) at every step of the size-triggered truncation and of the
// truncation of a clean stop, with chunks persisted, a series removed by
// GC and open chunks in memory: each restart has every sample exactly once,
// and the stop's last step leaves only what the next start needs.
func TestTruncation_CrashAtEachStep(t *testing.T) {
	for _, trigger := range []string{"size", "stop"} {
		t.Run(trigger, func(t *testing.T) {
			clock := &testClock{}
			withClock := func(i *Ingester) { i.now = clock.now }
			cfg := testConfig(t, t.TempDir())
			cfg.WALSegmentSize = walPageSize
			ing := startIngester(t, cfg, withClock)
			want := map[string][]sample{}
			gone := []string{"__name__", "gone"}
			push(t, ing, "t1", ts(gone, sample{0, 42}))
			want[lstr(gone...)] = []sample{{0, 42}}
			clock.ms = cfg.MaxChunkIdle.Milliseconds() + 1000
			flushTenants(t, ing, cutIdleChunks) // "gone" persisted, idle: GC removes it.
			// 300 scrapes: two finished chunks per series, 60 samples open,
			// not idle.
			clock.ms = 300 * scrapeMs
			scrapeData(t, ing, 100, 0, 300, 20, want, nil)

			snaps := map[truncStep]string{}
			snapshotSteps(t, ing, snaps)
			if trigger == "size" {
				due, err := ing.walTruncationDue()
				require.NoError(t, err)
				require.True(t, due, "over a segment since the start, and mint moved")
				ing.truncateWALIfDue(t.Context())
				require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.walTruncations.WithLabelValues(truncateOutcomeOK)), 0)
			} else {
				require.NoError(t, ing.Stopping(t.Context()))
				checkStores(t, cfg.Dir)
			}
			require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.seriesGCed), 0)
			for _, s := range allSteps {
				require.Contains(t, snaps, s)
			}
			// A crash inside wlog.Checkpoint leaves its temporary directory.
			_, last, err := wlog.Segments(filepath.Join(snaps[stepCut], walDirName))
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(wlog.CheckpointDir(filepath.Join(snaps[stepCut], walDirName), last-1)+".tmp", 0o777))

			for _, s := range allSteps {
				t.Run(string(s), func(t *testing.T) {
					c := cfg
					c.Dir = snaps[s]
					ing2 := startIngester(t, c, withClock)
					requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
					// And it keeps going: a new sample, a crash, everything again.
					w2 := map[string][]sample{}
					for k, v := range want {
						w2[k] = slices.Clone(v)
					}
					scrapeData(t, ing2, 100, 300, 301, 1, w2, nil)
					ing3 := restart(t, ing2, withClock)
					requireSamples(t, w2, queryAll(t, ing3, "t1", 0, math.MaxInt64))
				})
			}
			if trigger == "stop" {
				// What the stop left: the series records of the head and
				// the samples of the open chunks (scrapes 240-299), nothing
				// of "gone", which GC removed.
				got := readWAL(t, cfg.Dir)["t1"]
				require.Len(t, got, 100)
				var open []int64
				for k := 240; k < 300; k++ {
					open = append(open, int64(k)*scrapeMs)
				}
				for s := range 100 {
					require.Equal(t, open, got[lstr(metricName(s)...)], "series %d", s)
				}
			}
		})
	}
}

// TestWAL_FastIngestStaysBounded pushes 12 hours of 15 s scrapes of 200
// series through the ingester as fast as it goes, with the flush loop's
// tick after every push and the truncation timer never firing: the size
// trigger keeps the WAL under a bound far below what was written, and a
// crash at the end loses nothing.
func TestWAL_FastIngestStaysBounded(t *testing.T) {
	clock := &testClock{}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = 4 * walPageSize
	ing := startIngester(t, cfg, withClock)
	var written, maxBytes, prev int64
	tick := func(lastMs int64) {
		clock.ms = lastMs
		n, err := ing.wal.segmentBytes()
		require.NoError(t, err)
		written += max(0, n-prev)
		ing.flushAll(t.Context(), cutIdleChunks)
		ing.truncateWALIfDue(t.Context())
		maxBytes = max(maxBytes, walDirBytes(t, cfg.Dir))
		prev, err = ing.wal.segmentBytes()
		require.NoError(t, err)
	}
	want := map[string][]sample{}
	scrapeData(t, ing, 200, 0, 12*240, 4, want, tick)

	truncations := testutil.ToFloat64(ing.metrics.walTruncations.WithLabelValues(truncateOutcomeOK))
	t.Logf("wal written %d bytes, at most %d on disk, %v truncations", written, maxBytes, truncations)
	require.Zero(t, testutil.ToFloat64(ing.metrics.walTruncations.WithLabelValues(truncateOutcomeErr)))
	// 30 minutes of data (one 120-sample chunk per series) is about 100
	// KiB of WAL here: the WAL holds at most two of them and a checkpoint.
	const bound = 768 << 10
	require.Less(t, maxBytes, int64(bound))
	require.Greater(t, written, int64(4*bound), "the ingest must write far more than the bound")
	require.GreaterOrEqual(t, truncations, float64(10))

	ing2 := restart(t, ing, withClock)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}

// TestStopping_SmallWAL stops cleanly after 3 hours of data with the WAL
// never truncated before: the stop leaves a checkpoint of the series
// records and the open chunks, and empty segments, a small fraction of the
// WAL before the stop; the next start has every sample.
func TestStopping_SmallWAL(t *testing.T) {
	clock := &testClock{}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing, err := New(cfg, Deps{})
	require.NoError(t, err)
	withClock(ing)
	require.NoError(t, ing.Starting(t.Context()))
	want := map[string][]sample{}
	scrapeData(t, ing, 100, 0, 720, 4, want, func(lastMs int64) {
		clock.ms = lastMs
		ing.flushAll(t.Context(), cutIdleChunks)
	})
	before := walDirBytes(t, cfg.Dir)
	require.NoError(t, ing.Stopping(context.Background()))
	checkStores(t, cfg.Dir)
	after := walDirBytes(t, cfg.Dir)
	series, samples := checkpointRecordBytes(t, cfg.Dir)
	t.Logf("wal %d bytes before the stop, %d after; checkpoint records before compression: series %d bytes, samples %d bytes",
		before, after, series, samples)
	require.Less(t, after*4, before)

	first, last, err := wlog.Segments(filepath.Join(cfg.Dir, walDirName))
	require.NoError(t, err)
	require.Equal(t, first, last, "one segment left")
	fi, err := os.Stat(wlog.SegmentName(filepath.Join(cfg.Dir, walDirName), last))
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "the segment after the checkpoint is empty")
	got := readWAL(t, cfg.Dir)["t1"]
	require.Len(t, got, 100)
	for s := range 100 {
		require.Len(t, got[lstr(metricName(s)...)], 120, "the open chunk of series %d: scrapes 600-719", s)
		require.Equal(t, int64(600*scrapeMs), got[lstr(metricName(s)...)][0])
	}

	ing2 := startIngester(t, cfg, withClock)
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, math.MaxInt64))
}

// checkpointRecordBytes returns the bytes of the series records and of the
// samples records of the last checkpoint under dir, before compression.
func checkpointRecordBytes(t testing.TB, dir string) (series, samples int) {
	t.Helper()
	cpDir, _, err := wlog.LastCheckpoint(filepath.Join(dir, walDirName))
	require.NoError(t, err)
	rc, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1})
	require.NoError(t, err)
	defer rc.Close()
	rd := wlog.NewReader(rc)
	dec := record.NewDecoder(nil, nil)
	for rd.Next() {
		switch dec.Type(rd.Record()) {
		case record.Series:
			series += len(rd.Record())
		case record.Samples, record.SamplesV2:
			samples += len(rd.Record())
		}
	}
	require.NoError(t, rd.Err())
	return series, samples
}
