package promimport

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/storage"
)

const (
	hourMs  = int64(time.Hour / time.Millisecond)
	stepMs  = int64(15 * time.Second / time.Millisecond)
	tenantA = "team-a"
)

// sample is a float or histogram sample of a test series.
type sample struct {
	t int64
	f float64
	h *histogram.Histogram
}

func (s sample) T() int64                      { return s.t }
func (s sample) ST() int64                     { return 0 }
func (s sample) F() float64                    { return s.f }
func (s sample) H() *histogram.Histogram       { return s.h }
func (s sample) FH() *histogram.FloatHistogram { return nil }
func (s sample) Copy() chunks.Sample           { return s }
func (s sample) Type() chunkenc.ValueType {
	if s.h != nil {
		return chunkenc.ValHistogram
	}
	return chunkenc.ValFloat
}

// floats returns samples every stepMs in [from, to), with values from fn.
func floats(from, to int64, fn func(t int64) float64) []sample {
	var out []sample
	for t := from; t < to; t += stepMs {
		out = append(out, sample{t: t, f: fn(t)})
	}
	return out
}

// writeBlock writes one Prometheus block of blockRange (its head's chunk
// range too, so chunks may cross 2h boundaries when it is longer) into dir.
func writeBlock(t *testing.T, dir string, blockRange int64, series map[string][]sample) {
	t.Helper()
	var ss []promstorage.Series
	for name, samples := range series {
		cs := make([]chunks.Sample, len(samples))
		for i, s := range samples {
			cs[i] = s
		}
		ss = append(ss, promstorage.NewListSeries(labels.FromStrings("__name__", name, "job", "j"), cs))
	}
	_, err := tsdb.CreateBlock(ss, dir, blockRange, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
}

// recordingSink is a Sink that checks what storage.DB requires of a batch
// and keeps the decoded float samples of every series.
type recordingSink struct {
	t       *testing.T
	rangeMs int64
	appends int
	samples map[string][]sample // by labels.String()
	lastMax map[string]int64
}

func newRecordingSink(t *testing.T) *recordingSink {
	return &recordingSink{t: t, rangeMs: 2 * hourMs, samples: map[string][]sample{}, lastMax: map[string]int64{}}
}

func (r *recordingSink) Append(tenant string, batch []storage.Series) error {
	require.Equal(r.t, tenantA, tenant)
	r.appends++
	for _, s := range batch {
		key := s.Labels.String()
		for _, c := range s.Chunks {
			require.Equal(r.t, chunkenc.EncXOR, c.Encoding, "%s", key)
			require.Equal(r.t, partitionOf(c.MinTime, r.rangeMs), partitionOf(c.MaxTime, r.rangeMs),
				"%s: chunk [%d, %d] crosses a partition boundary", key, c.MinTime, c.MaxTime)
			if last, ok := r.lastMax[key]; ok {
				require.Greater(r.t, c.MinTime, last, "%s: chunks out of order", key)
			}
			r.lastMax[key] = c.MaxTime
			xc, err := chunkenc.FromData(c.Encoding, c.Data)
			require.NoError(r.t, err)
			it := xc.Iterator(nil)
			var got []sample
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				got = append(got, sample{t: ts, f: v})
			}
			require.NoError(r.t, it.Err())
			require.NotEmpty(r.t, got)
			require.Equal(r.t, c.MinTime, got[0].t, "%s: chunk min time", key)
			require.Equal(r.t, c.MaxTime, got[len(got)-1].t, "%s: chunk max time", key)
			r.samples[key] = append(r.samples[key], got...)
		}
	}
	return nil
}

func seriesKey(name string) string { return labels.FromStrings("__name__", name, "job", "j").String() }

func TestImport(t *testing.T) {
	dir := t.TempDir()
	counter := func(t int64) float64 { return float64(t / stepMs) }
	gauge := func(t int64) float64 { return math.Sin(float64(t)) * 1e3 }
	// A 6h block: its chunks of 120 samples (30 min) are cut in the 6h
	// chunk range, so some cross the 2h boundaries and must be split.
	writeBlock(t, filepath.Join(dir, "a"), 6*hourMs, map[string][]sample{
		"counter": floats(0, 6*hourMs, counter),
		"gauge":   floats(7*stepMs, 6*hourMs-3*stepMs, gauge),
		"histo":   histograms(0, hourMs),
	})
	// A 2h block after it, and one that overlaps it with the same samples
	// and one more series (a compaction whose sources were left behind).
	writeBlock(t, filepath.Join(dir, "b"), 2*hourMs, map[string][]sample{"counter": floats(6*hourMs, 8*hourMs, counter)})
	writeBlock(t, filepath.Join(dir, "c"), 2*hourMs, map[string][]sample{
		"counter": floats(6*hourMs, 8*hourMs, counter),
		"late":    floats(6*hourMs+stepMs, 7*hourMs, gauge),
	})
	blocks := findAll(t, dir)
	require.Len(t, blocks, 3)

	sink := newRecordingSink(t)
	stats, err := Import(t.Context(), sink, blocks, Options{Tenant: tenantA, BatchChunks: 7})
	require.NoError(t, err)

	want := map[string][]sample{
		seriesKey("counter"): floats(0, 8*hourMs, counter),
		seriesKey("gauge"):   floats(7*stepMs, 6*hourMs-3*stepMs, gauge),
		seriesKey("late"):    floats(6*hourMs+stepMs, 7*hourMs, gauge),
	}
	require.Equal(t, want, sink.samples)
	var wantSamples int64
	for _, s := range want {
		wantSamples += int64(len(s))
	}
	require.Equal(t, wantSamples, stats.Samples)
	require.Equal(t, int64(3), stats.Series)
	require.Equal(t, 3, stats.Blocks)
	require.Positive(t, stats.SplitChunks, "the 6h block has chunks across 2h boundaries")
	require.Equal(t, int64(hourMs/stepMs), stats.HistogramSamples)
	require.Positive(t, stats.HistogramChunks)
	require.Equal(t, int64(0), stats.MinTime)
	require.Equal(t, 8*hourMs-stepMs, stats.MaxTime)
	require.Greater(t, sink.appends, 1, "batches of about 7 chunks")
}

// TestImportTombstones imports a block from which a Prometheus DB deleted
// a range: the deleted samples are not imported.
func TestImportTombstones(t *testing.T) {
	dir := t.TempDir()
	counter := func(t int64) float64 { return float64(t) }
	writeBlock(t, dir, 2*hourMs, map[string][]sample{"counter": floats(0, 2*hourMs, counter), "other": floats(0, hourMs, counter)})
	db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	require.NoError(t, db.Delete(context.Background(), 30*60*1000, hourMs, labels.MustNewMatcher(labels.MatchEqual, "__name__", "counter")))
	require.NoError(t, db.Delete(context.Background(), math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "other")))
	require.NoError(t, db.Close())

	sink := newRecordingSink(t)
	stats, err := Import(t.Context(), sink, findAll(t, dir), Options{Tenant: tenantA})
	require.NoError(t, err)
	want := append(floats(0, 30*60*1000, counter), floats(hourMs+stepMs, 2*hourMs, counter)...)
	require.Equal(t, map[string][]sample{seriesKey("counter"): want}, sink.samples)
	require.Equal(t, int64(1), stats.Series)
	require.Equal(t, int64(len(want)), stats.Samples)
}

func TestFindBlocks(t *testing.T) {
	dir := t.TempDir()
	writeBlock(t, dir, 2*hourMs, map[string][]sample{"m": floats(2*hourMs, 3*hourMs, func(int64) float64 { return 1 })})
	writeBlock(t, dir, 2*hourMs, map[string][]sample{"m": floats(0, hourMs, func(int64) float64 { return 1 })})
	// Not blocks: a directory being written, the head, a file.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "01JAAAAAAAAAAAAAAAAAAAAAAA.tmp-for-creation"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "wal"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wal", "00000000"), make([]byte, 1000), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lock"), nil, 0o644))

	blocks, err := FindBlocks(dir)
	require.NoError(t, err)
	require.Len(t, blocks, 2)
	require.Equal(t, int64(0), blocks[0].MinTime)
	require.Equal(t, 2*hourMs, blocks[1].MinTime)
	require.Equal(t, uint64(1), blocks[0].Series)
	require.Equal(t, uint64(hourMs/stepMs), blocks[0].Samples)

	one, err := FindBlocks(blocks[1].Dir)
	require.NoError(t, err)
	require.Equal(t, blocks[1:], one, "a block directory is its own only block")

	head, err := HeadBytes(dir)
	require.NoError(t, err)
	require.Equal(t, int64(1000), head)
}

func TestPartitionOf(t *testing.T) {
	for _, c := range []struct{ t, want int64 }{
		{0, 0}, {1, 0}, {2*hourMs - 1, 0}, {2 * hourMs, 1}, {-1, -1}, {-2 * hourMs, -1}, {-2*hourMs - 1, -2},
	} {
		require.Equal(t, c.want, partitionOf(c.t, 2*hourMs), "t=%d", c.t)
	}
}

// histograms returns integer native histogram samples every stepMs in
// [from, to).
func histograms(from, to int64) []sample {
	var out []sample
	for t := from; t < to; t += stepMs {
		out = append(out, sample{t: t, h: tsdbutil.GenerateTestHistogram(t / stepMs)})
	}
	return out
}

// findAll returns the blocks under dir and its subdirectories a, b, c.
func findAll(t *testing.T, dir string) []Block {
	t.Helper()
	var all []Block
	for _, sub := range []string{"", "a", "b", "c"} {
		d := filepath.Join(dir, sub)
		if _, err := os.Stat(d); err != nil {
			continue
		}
		bs, err := FindBlocks(d)
		require.NoError(t, err, "%s", fmt.Sprint(d))
		all = append(all, bs...)
	}
	return all
}

// TestImportIntoDB imports into a real storage.DB and reads every sample
// back through Select.
func TestImportIntoDB(t *testing.T) {
	src := t.TempDir()
	counter := func(t int64) float64 { return float64(t / stepMs) }
	writeBlock(t, filepath.Join(src, "a"), 6*hourMs, map[string][]sample{"counter": floats(0, 6*hourMs, counter)})
	writeBlock(t, filepath.Join(src, "b"), 2*hourMs, map[string][]sample{"counter": floats(6*hourMs, 8*hourMs, counter), "gauge": floats(6*hourMs, 7*hourMs, counter)})

	dir := t.TempDir()
	db, err := storage.OpenDB(dir, storage.DBOptions{NoSync: true})
	require.NoError(t, err)
	stats, err := Import(t.Context(), db, findAll(t, src), Options{Tenant: tenantA, BatchChunks: 10})
	require.NoError(t, err)
	require.Equal(t, int64(2), stats.Series)

	got, err := db.Select(tenantA, math.MinInt64, math.MaxInt64, storage.SelectOptions{}, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.NoError(t, err)
	gotSamples := map[string][]sample{}
	for _, s := range got {
		for _, c := range s.Chunks {
			xc, err := chunkenc.FromData(c.Encoding, c.Data)
			require.NoError(t, err)
			it := xc.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				gotSamples[s.Labels.String()] = append(gotSamples[s.Labels.String()], sample{t: ts, f: v})
			}
		}
	}
	require.Equal(t, map[string][]sample{
		seriesKey("counter"): floats(0, 8*hourMs, counter),
		seriesKey("gauge"):   floats(6*hourMs, 7*hourMs, counter),
	}, gotSamples)
	tenants, err := db.Tenants()
	require.NoError(t, err)
	require.Equal(t, []string{tenantA}, tenants)
	require.NoError(t, db.Close())
	require.NoError(t, storage.CheckDB(dir))
}
