package storage

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// TestTranscodedChunkIterates checks that a TranscodedChunk reads the
// samples of the XOR chunk it was transcoded from, bit for bit, through
// Next and Seek (against chunkenc's iterator), with a reused iterator, and
// that Bytes gives the XOR bytes back.
func TestTranscodedChunkIterates(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := map[string]func(p sample) sample{
		"constant": func(p sample) sample { return sample{p.t + 15_000, p.v} },
		"counter":  func(p sample) sample { return sample{p.t + 15_000, p.v + float64(rng.IntN(10))} },
		"gauge":    func(p sample) sample { return sample{p.t + 14_000 + rng.Int64N(2_000), p.v + rng.Float64() - 0.5} },
		"random":   func(p sample) sample { return sample{p.t + 1 + rng.Int64N(1<<40), math.Float64frombits(rng.Uint64())} },
		"special": func(p sample) sample {
			vs := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.MaxFloat64, -1}
			return sample{p.t + 30_000, vs[rng.IntN(len(vs))]}
		},
	}
	var reused chunkenc.Iterator
	for name, next := range shapes {
		for _, n := range []int{1, 2, 3, 120, 400} {
			ss := []sample{{-1 << 30, 1000}}
			for i := 1; i < n; i++ {
				ss = append(ss, next(ss[i-1]))
			}
			x := xorChunk(t, ss)
			tc, ok := transcodeXOR(nil, x.Data)
			require.True(t, ok, "%s n=%d", name, n)
			c, err := NewChunk(Chunk{Encoding: EncTranscodedXOR, Data: tc})
			require.NoError(t, err)
			require.Equal(t, chunkenc.EncXOR, c.Encoding())
			require.Equal(t, n, c.NumSamples())
			require.Equal(t, x.Data, c.Bytes(), "%s n=%d", name, n)
			requireSameSamples(t, ss, chunkSamples(t, Chunk{Encoding: EncTranscodedXOR, Data: tc}), "%s n=%d", name, n)
			reused = c.Iterator(reused)
			requireSameSamples(t, ss, iterSamples(t, reused), "%s n=%d reused", name, n)

			xc, err := chunkenc.FromData(chunkenc.EncXOR, x.Data)
			require.NoError(t, err)
			for range 5 {
				seek := ss[rng.IntN(n)].t + rng.Int64N(3) - 1
				want, got := xc.Iterator(nil), c.Iterator(nil)
				for range 2 { // a second Seek to the same time stays
					require.Equal(t, want.Seek(seek), got.Seek(seek), "%s n=%d seek %d", name, n, seek)
					require.Equal(t, want.AtT(), got.AtT())
				}
				requireSameSamples(t, iterSamples(t, want), iterSamples(t, got), "%s n=%d after seek", name, n)
				require.Equal(t, chunkenc.ValNone, got.Seek(seek))
			}
		}
	}
	_, err := NewChunk(Chunk{Encoding: EncTranscodedXOR, Data: []byte{0}})
	require.Error(t, err)
	c := &TranscodedChunk{}
	c.Reset([]byte{2, 0}) // two samples announced, nothing after
	it := c.Iterator(nil)
	require.Equal(t, chunkenc.ValNone, it.Next())
	require.Error(t, it.Err())
}

// iterSamples reads what is left of it.
func iterSamples(t testing.TB, it chunkenc.Iterator) []sample {
	t.Helper()
	var out []sample
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	require.NoError(t, it.Err())
	return out
}
