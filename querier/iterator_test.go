package querier

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
)

// TestSampleIterator compares sampleIterator, over samples cut into chunks,
// with Prometheus's iterator over the same samples in a list, on random
// sequences of Next and Seek, reusing one iterator across series.
func TestSampleIterator(t *testing.T) {
	const seed = 7
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	var it chunkenc.Iterator
	for round := range 200 {
		// Up to 5 chunks of up to 4 samples, some empty, with gaps.
		var (
			samples []chunks.Sample
			metas   []chunks.Meta
			ts      = int64(rng.IntN(10))
		)
		for range rng.IntN(6) {
			c := chunkenc.NewXORChunk()
			app, err := c.Appender()
			require.NoError(t, err)
			minT, n := ts, rng.IntN(5)
			for range n {
				v := rng.Float64()
				app.Append(0, ts, v)
				samples = append(samples, floatSample{t: ts, f: v})
				ts += 1 + int64(rng.IntN(3))
			}
			maxT := ts - 1 // Chunk bounds may be wider than the samples.
			if n > 0 && rng.IntN(2) == 0 {
				maxT = samples[len(samples)-1].T()
			}
			metas = append(metas, chunks.Meta{Chunk: c, MinTime: minT, MaxTime: maxT})
			ts += int64(rng.IntN(4))
		}
		series := &sampleSeries{ChunkSeries: &fetchedSeries{labels: labels.FromStrings("round", "x"), chunks: metas}}
		it = series.Iterator(it)
		want := storage.NewListSeriesIterator(chunks.SampleSlice(samples))
		var ops []string
		for range 12 {
			var got, exp chunkenc.ValueType
			if rng.IntN(2) == 0 {
				ops = append(ops, "next")
				got, exp = it.Next(), want.Next()
			} else {
				st := int64(rng.IntN(int(ts) + 3))
				ops = append(ops, fmt.Sprintf("seek %d", st))
				got, exp = it.Seek(st), want.Seek(st)
			}
			require.Equal(t, exp, got, "round %d, ops %v", round, ops)
			if got != chunkenc.ValNone {
				wt, wv := want.At()
				gt, gv := it.At()
				require.Equal(t, wt, gt, "round %d, ops %v", round, ops)
				require.Equal(t, wt, it.AtT())
				require.Equal(t, wv, gv)
			}
		}
		require.NoError(t, it.Err())
	}
}

// floatSample is a float sample for storage.NewListSeriesIterator.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                    { return s.t }
func (floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                  { return s.f }
func (floatSample) H() *histogram.Histogram       { return nil }
func (floatSample) FH() *histogram.FloatHistogram { return nil }
func (floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample         { return s }
