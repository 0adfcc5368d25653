package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// dbBenchSeries returns n label sets and value kinds shaped like the data of
// `make bench` (internal/benchcmp): five metrics per pod (two counters, two
// random-walk gauges, a constant), ten labels each, with random pod names
// and UIDs.
func dbBenchSeries(n int) ([]labels.Labels, []int) {
	rng := rand.New(rand.NewPCG(0x5eed, 1))
	metrics := benchMetrics
	kinds := []int{0, 0, 1, 1, 2}
	out, outKinds := make([]labels.Labels, n), make([]int, n)
	var pod []string
	for i := range n {
		p := i / len(metrics)
		if i%len(metrics) == 0 {
			pod = benchPodLabels(p, rng)
		}
		out[i] = labels.FromStrings(append([]string{"__name__", metrics[i%len(metrics)]}, pod...)...)
		outKinds[i] = kinds[i%len(metrics)]
	}
	return out, outKinds
}

// dbBenchChunks returns, for each of the 6 half-hours of 3h scraped every
// 15s, the batch of one 120-sample chunk per series, as flushes write them.
func dbBenchChunks(b *testing.B, lbls []labels.Labels, kinds []int, start int64) ([][]Series, int64) {
	const perChunk, step = 120, 15_000
	batches := make([][]Series, 6)
	var samples int64
	for i, l := range lbls {
		rng := rand.New(rand.NewPCG(0x5eed, uint64(i)+2))
		v := []float64{float64(rng.Uint64() % 100_000), float64(rng.Uint64()%1_000_000) / 7, 1}[kinds[i]]
		for k := range batches {
			c := chunkenc.NewXORChunk()
			app, err := c.Appender()
			require.NoError(b, err)
			t0 := start + int64(k*perChunk*step)
			for j := range perChunk {
				switch kinds[i] {
				case 0:
					if x := rng.Uint64() % 15; x < 10 {
						v += float64(x)
					}
				case 1:
					v += float64(rng.Uint64()>>11)/(1<<52) - 1
				}
				app.Append(0, t0+int64(j*step), v)
				samples++
			}
			batches[k] = append(batches[k], Series{Labels: l, Chunks: []Chunk{{
				MinTime: t0, MaxTime: t0 + (perChunk-1)*step, Encoding: chunkenc.EncXOR, Data: c.Bytes()}}})
		}
	}
	return batches, samples
}

// BenchmarkDBBytesPerSample writes 10K series x 3h of bench-like data as
// flushes would (a batch of one chunk per series per half-hour) and reports
// the bytes per sample on disk: the ChunkStore file of before, the DB's
// level-0 files, its sealed level-1 parts, and its compacted (compressed)
// level-2 part. Run with -benchtime=1x.
func BenchmarkDBBytesPerSample(b *testing.B) {
	const n = 10_000
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	lbls, kinds := dbBenchSeries(n)
	batches, samples := dbBenchChunks(b, lbls, kinds, start)
	var raw int64
	for _, batch := range batches {
		for _, s := range batch {
			raw += int64(len(s.Chunks[0].Data))
		}
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "chunks.db")
		cs, err := Open(path, Options{NoSync: true})
		require.NoError(b, err)
		for _, batch := range batches {
			require.NoError(b, cs.Append(batch))
		}
		require.NoError(b, cs.Close())
		b.ReportMetric(float64(dirBytes(path))/float64(samples), "chunkstore-bytes/sample")

		dir := b.TempDir()
		db, err := OpenDB(dir, DBOptions{NoSync: true})
		require.NoError(b, err)
		for _, batch := range batches {
			require.NoError(b, db.Append("bench", batch))
		}
		b.ReportMetric(float64(dirSize(b, dir))/float64(samples), "db-level0-bytes/sample")
		require.NoError(b, db.Compact(context.Background(), start+4*hourMs))
		b.ReportMetric(float64(dirSize(b, dir))/float64(samples), "db-sealed-bytes/sample")
		require.NoError(b, db.Compact(context.Background(), start+dayMs))
		b.ReportMetric(float64(dirSize(b, dir))/float64(samples), "db-compacted-bytes/sample")
		got, err := db.Select("bench", start, start+3*hourMs, SelectOptions{SkipChunks: true})
		require.NoError(b, err)
		require.Len(b, got, n)
		require.NoError(b, db.Close())
	}
	b.ReportMetric(float64(raw)/float64(samples), "chunk-data-bytes/sample")
}

// BenchmarkDBAppend is BenchmarkAppend (mode=extend) on a DB: one chunk
// per series per iteration, a new level-0 file every 4 iterations.
func BenchmarkDBAppend(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			db, err := OpenDB(dir, DBOptions{NoSync: true})
			require.NoError(b, err)
			defer db.Close()
			data, batchBytes := benchChunkData(b, n)
			lbls := benchLabels(n, "")
			require.NoError(b, db.Append("bench", benchBatch(lbls, data, 0)))
			b.SetBytes(int64(batchBytes))
			b.ReportAllocs()
			k := 1
			for b.Loop() {
				require.NoError(b, db.Append("bench", benchBatch(lbls, data, k)))
				k++
			}
			b.ReportMetric(float64(dirSize(b, dir))/float64(k*n*benchSamplesPerChunk), "file-bytes/sample")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64((k-1)*n*benchSamplesPerChunk), "ns/sample")
		})
	}
}

// BenchmarkDBSelect is BenchmarkSelect on a DB holding the same 10,000
// series of 20 chunks (10h): five level-0 windows, or the same sealed.
func BenchmarkDBSelect(b *testing.B) {
	const n, chunks = 10_000, 20
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			db, err := OpenDB(b.TempDir(), DBOptions{NoSync: true})
			require.NoError(b, err)
			defer db.Close()
			data, _ := benchChunkData(b, n)
			lbls := benchLabels(n, "")
			for k := range chunks {
				require.NoError(b, db.Append("bench", benchBatch(lbls, data, k)))
			}
			if sealed {
				require.NoError(b, db.Compact(context.Background(), chunks*benchChunkSpan))
			}
			last := int64(chunks*benchChunkSpan - 1)
			cases := []struct {
				name       string
				mint, maxt int64
				opts       SelectOptions
				ms         []*labels.Matcher
				wantSeries int
			}{
				{"matcher=equal/range=1h", last - 3_600_000, last, SelectOptions{}, []*labels.Matcher{eq("job", "job-3")}, 1000},
				{"matcher=one_series/range=all", minT, maxT, SelectOptions{}, []*labels.Matcher{eq("pod", "api-7d9f8-00042")}, 1},
				{"matcher=regexp_and_not_equal/range=1h", last - 3_600_000, last, SelectOptions{}, []*labels.Matcher{re("__name__", "http_requests_total_1.*"), neq("job", "job-1")}, 4500},
				{"matcher=none/range=all/skip_chunks", minT, maxT, SelectOptions{SkipChunks: true}, nil, n},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						got, err := db.Select("bench", c.mint, c.maxt, c.opts, c.ms...)
						require.NoError(b, err)
						require.Equal(b, c.wantSeries, len(got))
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.wantSeries), "ns/series")
				})
			}
		})
	}
}
