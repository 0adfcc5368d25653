package storage

// Run and compare with benchstat:
//
//	go test -run='^$' -bench=. -count=6 ./storage/ | tee new.txt
//	benchstat old.txt new.txt

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

const (
	benchSamplesPerChunk = 120
	benchScrapeInterval  = 15_000 // ms
	benchChunkSpan       = benchSamplesPerChunk * benchScrapeInterval
)

// benchLabels returns n label sets shaped like scraped targets; run makes
// them distinct from those of other runs.
func benchLabels(n int, run string) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(
			"__name__", fmt.Sprintf("http_requests_total_%d", i%20),
			"instance", fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250),
			"job", fmt.Sprintf("job-%d", i%10),
			"pod", fmt.Sprintf("api-7d9f8-%05d%s", i, run),
		)
	}
	return out
}

// benchChunkData returns one realistic XOR chunk per series (a counter with
// jittered increments); the benchmarks reuse the bytes at every time range,
// since the store does not parse them.
func benchChunkData(b *testing.B, n int) ([][]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	total := 0
	for i := range out {
		ss := make([]sample, benchSamplesPerChunk)
		v := float64(rng.IntN(1000))
		for j := range ss {
			v += float64(rng.IntN(20))
			ss[j] = sample{int64(j * benchScrapeInterval), v}
		}
		out[i] = xorChunk(b, ss).Data
		total += len(out[i])
	}
	return out, total
}

// benchBatch returns the batch holding chunk number k of every series.
func benchBatch(lbls []labels.Labels, data [][]byte, k int) []Series {
	batch := make([]Series, len(lbls))
	for i := range batch {
		minT := int64(k) * benchChunkSpan
		batch[i] = Series{Labels: lbls[i], Chunks: []Chunk{{
			MinTime: minT, MaxTime: minT + benchChunkSpan - benchScrapeInterval, Encoding: 1, Data: data[i],
		}}}
	}
	return batch
}

// BenchmarkAppend appends one chunk to each series of a batch per
// iteration: mode=extend to existing series (the steady state of the
// ingester), mode=create to new ones. The store runs with NoSync, so fsync
// cost is not measured.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, mode := range []string{"extend", "create"} {
			b.Run(fmt.Sprintf("series=%d/mode=%s", n, mode), func(b *testing.B) {
				s, path := newTestStore(b)
				data, batchBytes := benchChunkData(b, n)
				lbls := benchLabels(n, "")
				require.NoError(b, s.Append(benchBatch(lbls, data, 0)))
				b.SetBytes(int64(batchBytes))
				b.ReportAllocs()
				k := 1
				for b.Loop() {
					if mode == "create" {
						lbls = benchLabels(n, fmt.Sprintf("-%d", k))
					}
					require.NoError(b, s.Append(benchBatch(lbls, data, k)))
					k++
				}
				samples := float64(k * n * benchSamplesPerChunk)
				st, err := os.Stat(path)
				require.NoError(b, err)
				b.ReportMetric(float64(batchBytes)/float64(n*benchSamplesPerChunk), "bytes/sample")
				b.ReportMetric(float64(st.Size())/samples, "file-bytes/sample")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64((k-1)*n*benchSamplesPerChunk), "ns/sample")
			})
		}
	}
}

// BenchmarkSelect queries 10,000 series of 20 chunks (10h) each.
func BenchmarkSelect(b *testing.B) {
	const n, chunks = 10_000, 20
	s, _ := newTestStore(b)
	data, _ := benchChunkData(b, n)
	lbls := benchLabels(n, "")
	for k := range chunks {
		require.NoError(b, s.Append(benchBatch(lbls, data, k)))
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
		{"matcher=equal/range=1h/skip_chunks", last - 3_600_000, last, SelectOptions{SkipChunks: true}, []*labels.Matcher{eq("job", "job-3")}, 1000},
		{"matcher=one_series/range=all", minT, maxT, SelectOptions{}, []*labels.Matcher{eq("pod", "api-7d9f8-00042")}, 1},
		{"matcher=regexp_and_not_equal/range=1h", last - 3_600_000, last, SelectOptions{}, []*labels.Matcher{re("__name__", "http_requests_total_1.*"), neq("job", "job-1")}, 4500},
		{"matcher=none/range=1h", last - 3_600_000, last, SelectOptions{SkipChunks: true}, nil, n},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.Select(c.mint, c.maxt, c.opts, c.ms...)
				require.NoError(b, err)
				require.Equal(b, c.wantSeries, len(got))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.wantSeries), "ns/series")
		})
	}
}
