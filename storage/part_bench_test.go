package storage

import (
	"context"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/benchdata"
)

// The density benchmark's data has the shape of internal/benchcmp's: pods
// exposing 2 counters, 2 full-mantissa random-walk gauges and a constant,
// about 10 labels per series, scraped every 15s.
const (
	densitySeries   = 10_000
	densityScrapes  = 3 * 3600 / 15 // 3h
	densityInterval = 15_000
)

type densitySeriesData struct {
	lbls    labels.Labels
	samples []sample
}

// densityData generates the series, sorted by labels.
func densityData() []densitySeriesData {
	rng := rand.New(rand.NewPCG(0x5eed, 1))
	metrics := benchMetrics
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	out := make([]densitySeriesData, densitySeries)
	var pod []string
	for i := range out {
		p := i / len(metrics)
		if i%len(metrics) == 0 {
			pod = benchPodLabels(p, rng)
		}
		kind := i % len(metrics)
		out[i].lbls = labels.FromStrings(append([]string{"__name__", metrics[kind]}, pod...)...)
		vr := rand.New(rand.NewPCG(0x5eed, uint64(i)+2))
		var v float64
		switch {
		case kind < 2:
			v = float64(vr.Uint64() % 100_000)
		case kind < 4:
			v = float64(vr.Uint64()%1_000_000) / 7
		default:
			v = 1
		}
		out[i].samples = make([]sample, densityScrapes)
		for k := range out[i].samples {
			switch {
			case kind < 2:
				if x := vr.Uint64() % 15; x < 10 {
					v += float64(x)
				}
			case kind < 4:
				v += float64(vr.Uint64()>>11)/(1<<52) - 1
			}
			out[i].samples[k] = sample{base + int64(k)*densityInterval, v}
		}
	}
	sortDensity(out)
	return out
}

func sortDensity(d []densitySeriesData) {
	idx := make([]Series, len(d))
	for i := range d {
		idx[i] = Series{Labels: d[i].lbls, Chunks: []Chunk{{MinTime: int64(i)}}}
	}
	sortSeries(idx)
	sorted := make([]densitySeriesData, len(d))
	for i, s := range idx {
		sorted[i] = d[s.Chunks[0].MinTime]
	}
	copy(d, sorted)
}

// densitySource cuts the data into XOR chunks of 120 samples.
func densitySource(b testing.TB, data []densitySeriesData) memSource {
	series := make([]Series, len(data))
	for i, d := range data {
		series[i].Labels = d.lbls
		for lo := 0; lo < len(d.samples); lo += benchSamplesPerChunk {
			series[i].Chunks = append(series[i].Chunks, xorChunk(b, d.samples[lo:min(lo+benchSamplesPerChunk, len(d.samples))]))
		}
	}
	return memSource{"bench": series}
}

// dirSize returns the bytes of the files under path.
func dirSize(t testing.TB, path string) int64 {
	var n int64
	require.NoError(t, filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	}))
	return n
}

// BenchmarkPartDensity reports the on-disk bytes per sample of 10K series
// over 3h: as a part (raw, zstd and S2 blobs), as a ChunkStore file and as a
// Prometheus block of the same samples. One iteration is the whole run; use
// -benchtime=1x.
func BenchmarkPartDensity(b *testing.B) {
	data := densityData()
	src := densitySource(b, data)
	samples := float64(densitySeries * densityScrapes)
	var chunkBytes int
	for _, s := range src["bench"] {
		for _, c := range s.Chunks {
			chunkBytes += len(c.Data)
		}
	}
	dir := b.TempDir()
	for b.Loop() {
		b.ReportMetric(float64(chunkBytes)/samples, "xor-data-B/sample")
		for _, c := range []struct {
			name     string
			compress bool
			codec    byte
			plain    bool
		}{
			{"part-raw", false, codecRaw, false},
			{"part-zstd", true, codecZstd, false},
			{"part-zstd-notranscode", true, codecZstd, true},
			{"part-s2", true, codecS2, false},
		} {
			old := blobCodec
			blobCodec = c.codec
			path := filepath.Join(dir, c.name)
			start := time.Now()
			opts := partWriteOptions{Compress: c.compress, NoTranscode: c.plain, NoSync: true}
			require.NoError(b, writePart(path, partMeta{}, src, opts))
			blobCodec = old
			st, err := os.Stat(path)
			require.NoError(b, err)
			b.ReportMetric(float64(st.Size())/samples, c.name+"-B/sample")
			b.ReportMetric(time.Since(start).Seconds(), c.name+"-write-s")
		}
		b.ReportMetric(float64(chunkStoreSize(b, filepath.Join(dir, "chunks.db"), src["bench"]))/samples, "chunkstore-B/sample")
		b.ReportMetric(float64(promBlockSize(b, filepath.Join(dir, "prom"), data))/samples, "prom-block-B/sample")
	}
}

// chunkStoreSize appends the series to a ChunkStore one chunk round per
// batch, as the ingester flushes, and returns the file size.
func chunkStoreSize(b testing.TB, path string, series []Series) int64 {
	s, err := Open(path, Options{NoSync: true})
	require.NoError(b, err)
	for k := 0; ; k++ {
		var batch []Series
		for _, sr := range series {
			if k < len(sr.Chunks) {
				batch = append(batch, Series{Labels: sr.Labels, Chunks: sr.Chunks[k : k+1]})
			}
		}
		if len(batch) == 0 {
			break
		}
		require.NoError(b, s.Append(batch))
	}
	require.NoError(b, s.Close())
	st, err := os.Stat(path)
	require.NoError(b, err)
	return st.Size()
}

// promBlockSize writes the samples as one Prometheus block and returns the
// bytes of its directory.
func promBlockSize(b testing.TB, dir string, data []densitySeriesData) int64 {
	series := make([]promstorage.Series, len(data))
	for i, d := range data {
		ss := make([]chunks.Sample, len(d.samples))
		for k, s := range d.samples {
			ss[k] = benchdata.FloatSample{Time: s.t, Value: s.v}
		}
		series[i] = promstorage.NewListSeries(d.lbls, ss)
	}
	require.NoError(b, os.MkdirAll(dir, 0o755))
	block, err := tsdb.CreateBlock(series, dir, 8*3600*1000, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	return dirSize(b, block)
}

// BenchmarkPartRead compares reads of the density data from parts (raw and
// compressed) with the same reads from a Prometheus block: Select with
// chunks, label names and label values.
func BenchmarkPartRead(b *testing.B) {
	data := densityData()
	src := densitySource(b, data)
	dir := b.TempDir()
	parts := map[string]*part{}
	for name, opts := range map[string]partWriteOptions{
		"part-raw":              {},
		"part-zstd":             {Compress: true},
		"part-zstd-notranscode": {Compress: true, NoTranscode: true},
	} {
		path := filepath.Join(dir, name)
		opts.NoSync = true
		require.NoError(b, writePart(path, partMeta{}, src, opts))
		p, err := openPart(path)
		require.NoError(b, err)
		b.Cleanup(func() { _ = p.Close() })
		parts[name] = p
	}
	blockDir := filepath.Join(dir, "prom")
	require.NoError(b, os.MkdirAll(blockDir, 0o755))
	series := make([]promstorage.Series, len(data))
	for i, d := range data {
		ss := make([]chunks.Sample, len(d.samples))
		for k, s := range d.samples {
			ss[k] = benchdata.FloatSample{Time: s.t, Value: s.v}
		}
		series[i] = promstorage.NewListSeries(d.lbls, ss)
	}
	blockPath, err := tsdb.CreateBlock(series, blockDir, 8*3600*1000, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	block, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), blockPath, nil, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = block.Close() })

	last := data[0].samples[len(data[0].samples)-1].t
	m := labels.MustNewMatcher
	cases := []struct {
		name       string
		mint       int64
		ms         []*labels.Matcher
		wantSeries int
	}{
		{"metric=one/range=3h", 0, []*labels.Matcher{m(labels.MatchEqual, "__name__", "node_load1")}, 2000},
		{"metric=regexp/range=30m", last - 1_800_000, []*labels.Matcher{m(labels.MatchRegexp, "__name__", "container_.*")}, 4000},
		{"metric=one/job=regexp/range=30m", last - 1_800_000, []*labels.Matcher{
			m(labels.MatchEqual, "__name__", "http_requests_total"), m(labels.MatchRegexp, "job", "kube.*|payments")}, 600},
		{"series=one/range=3h", 0, []*labels.Matcher{m(labels.MatchEqual, "__name__", "node_load1"), m(labels.MatchEqual, "instance", "10.0.3.7:8080")}, 1},
	}
	for _, c := range cases {
		for _, name := range []string{"part-raw", "part-zstd", "part-zstd-notranscode"} {
			b.Run("select/"+c.name+"/store="+name, func(b *testing.B) {
				for b.Loop() {
					got, err := parts[name].Select("bench", c.mint, last, SelectOptions{}, c.ms)
					require.NoError(b, err)
					require.Len(b, got, c.wantSeries)
				}
			})
		}
		b.Run("select/"+c.name+"/store=prom-block", func(b *testing.B) {
			for b.Loop() {
				q, err := tsdb.NewBlockChunkQuerier(block, c.mint, last)
				require.NoError(b, err)
				ss := q.Select(context.Background(), true, nil, c.ms...)
				n := 0
				var it chunks.Iterator
				for ss.Next() {
					it = ss.At().Iterator(it)
					for it.Next() {
						_ = it.At().Chunk.Bytes()
					}
					n++
				}
				require.NoError(b, q.Close())
				require.NoError(b, ss.Err())
				require.Equal(b, c.wantSeries, n)
			}
		})
	}
	for _, name := range []string{"part-raw", "part-zstd"} {
		b.Run("label_values/name=pod/store="+name, func(b *testing.B) {
			for b.Loop() {
				v, err := parts[name].LabelValues("bench", "pod", nil)
				require.NoError(b, err)
				require.Len(b, v, 2000)
			}
		})
		b.Run("label_names/store="+name, func(b *testing.B) {
			for b.Loop() {
				v, err := parts[name].LabelNames("bench", nil)
				require.NoError(b, err)
				require.Len(b, v, 10)
			}
		})
	}
	b.Run("label_values/name=pod/store=prom-block", func(b *testing.B) {
		for b.Loop() {
			q, err := tsdb.NewBlockQuerier(block, 0, last)
			require.NoError(b, err)
			v, _, err := q.LabelValues(context.Background(), "pod", nil)
			require.NoError(b, q.Close())
			require.NoError(b, err)
			require.Len(b, v, 2000)
		}
	})
	b.Run("label_names/store=prom-block", func(b *testing.B) {
		for b.Loop() {
			q, err := tsdb.NewBlockQuerier(block, 0, last)
			require.NoError(b, err)
			v, _, err := q.LabelNames(context.Background(), nil)
			require.NoError(b, q.Close())
			require.NoError(b, err)
			require.Len(b, v, 10)
		}
	})
}
