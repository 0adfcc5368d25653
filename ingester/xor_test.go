package ingester

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// randomSamples returns n samples with increasing times whose deltas and
// values exercise every branch of the XOR encoding: regular and jittered
// scrapes, time deltas of every size class, constant, integer, random and
// special values.
func randomSamples(rng *rand.Rand, n int) ([]int64, []float64) {
	ts, vs := make([]int64, n), make([]float64, n)
	t := rng.Int64N(1<<40) - 1<<39
	step := []int64{1, 15_000, 60_000, 1 << 13, 1 << 16, 1 << 19, 1 << 30}[rng.IntN(7)]
	v := rng.NormFloat64()
	for k := range n {
		switch rng.IntN(6) {
		case 0:
			t += step
		case 1:
			t += step + rng.Int64N(1<<uint(rng.IntN(24)+1))
		case 2:
			t += 1 + rng.Int64N(step)
		default:
			t += step
		}
		switch rng.IntN(8) {
		case 0: // Same value.
		case 1:
			v = float64(rng.IntN(100))
		case 2:
			v += float64(rng.IntN(10))
		case 3:
			v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.MaxFloat64, math.SmallestNonzeroFloat64}[rng.IntN(7)]
		case 4:
			v = math.Float64frombits(rng.Uint64())
		default:
			v += rng.NormFloat64()
		}
		ts[k], vs[k] = t, v
	}
	return ts, vs
}

// TestXORAppend_MatchesChunkenc appends random samples with xorAppend and
// with chunkenc's XOR appender: the bytes are the same after every sample,
// and chunkenc reads them back exactly.
func TestXORAppend_MatchesChunkenc(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for round := range 3000 {
		ts, vs := randomSamples(rng, 1+rng.IntN(samplesPerChunk))
		want := chunkenc.NewXORChunk()
		app, err := want.Appender()
		require.NoError(t, err)
		got := make([]byte, xorHeaderSize, xorHeaderSize+rng.IntN(64))
		var st xorState
		for k := range ts {
			app.Append(0, ts[k], vs[k])
			xorAppend(&got, &st, ts[k], vs[k])
			require.Equal(t, want.Bytes(), got, "round %d, sample %d", round, k)
		}
		var c chunkenc.XORChunk
		c.Reset(got)
		it := c.Iterator(nil)
		for k := range ts {
			require.Equal(t, chunkenc.ValFloat, it.Next())
			gt, gv := it.At()
			require.Equal(t, ts[k], gt)
			require.Equal(t, math.Float64bits(vs[k]), math.Float64bits(gv))
		}
		require.Equal(t, chunkenc.ValNone, it.Next())
		require.NoError(t, it.Err())
	}
}

// TestMemSeries_AppendCutRead appends to a series across cuts (full chunks
// and 2h boundaries) and reads every chunk back with chunkenc.
func TestMemSeries_AppendCutRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	s := newMemSeries(1, "", math.MinInt64, 0)
	ts, vs := randomSamples(rng, 2000)
	for k := range ts {
		s.appendLocked(ts[k], vs[k], 0)
	}
	var chks [][]byte
	for c := s.finished; c != nil; c = c.next {
		require.Equal(t, len(c.data), cap(c.data), "a finished chunk has no spare capacity")
		chks = append(chks, c.data)
	}
	chks = append(chks, s.openBytesLocked())
	k := 0
	for _, data := range chks {
		c, err := chunkenc.FromData(chunkenc.EncXOR, data)
		require.NoError(t, err)
		require.LessOrEqual(t, c.NumSamples(), samplesPerChunk)
		it := c.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			gt, gv := it.At()
			require.Equal(t, ts[k], gt)
			require.Equal(t, math.Float64bits(vs[k]), math.Float64bits(gv))
			k++
		}
		require.NoError(t, it.Err())
	}
	require.Equal(t, len(ts), k)
	require.Equal(t, ts[0], s.firstInMemoryLocked())
	lt, lv, ok := s.lastSampleLocked()
	require.True(t, ok)
	require.Equal(t, ts[len(ts)-1], lt)
	require.Equal(t, math.Float64bits(vs[len(vs)-1]), math.Float64bits(lv))
}
