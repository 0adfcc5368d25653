package storage

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUntranscodeMatchesChunkenc transcodes XOR chunks of many shapes
// (constant, counter, gauge, irregular and huge timestamp steps, negative
// times, NaN and infinities, one and two samples) and checks that the
// rebuild, and encodeXOR, give chunkenc's bytes back.
func TestUntranscodeMatchesChunkenc(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	shapes := map[string]func(i int, prev sample) sample{
		"constant":  func(i int, p sample) sample { return sample{p.t + 15_000, 1} },
		"counter":   func(i int, p sample) sample { return sample{p.t + 15_000, p.v + float64(rng.IntN(10))} },
		"gauge":     func(i int, p sample) sample { return sample{p.t + 15_000, p.v + rng.Float64() - 0.5} },
		"jitter":    func(i int, p sample) sample { return sample{p.t + 14_000 + rng.Int64N(2_000), p.v * 1.5} },
		"huge-step": func(i int, p sample) sample { return sample{p.t + rng.Int64N(1<<40), -p.v} },
		"negative-time": func(i int, p sample) sample {
			return sample{p.t + 1 + rng.Int64N(1<<21), math.Float64frombits(rng.Uint64())}
		},
		"special": func(i int, p sample) sample {
			vs := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64}
			return sample{p.t + 30_000, vs[rng.IntN(len(vs))]}
		},
	}
	var x xorScratch
	for name, next := range shapes {
		for _, n := range []int{1, 2, 3, 120, 500} {
			first := sample{1_700_000_000_000, 1000}
			if name == "negative-time" {
				first.t = -1 << 40
			}
			ss := []sample{first}
			for i := 1; i < n; i++ {
				ss = append(ss, next(i, ss[i-1]))
			}
			c := xorChunk(t, ss)
			tc, ok := transcodeXOR(nil, c.Data)
			require.True(t, ok, "%s n=%d", name, n)
			got, ok := x.untranscode(tc)
			require.True(t, ok, "%s n=%d", name, n)
			require.Equal(t, c.Data, got, "%s n=%d", name, n)
			require.Equal(t, c.Data, encodeXOR(sampleBits(ss)), "%s n=%d", name, n)
		}
	}
}

func sampleBits(ss []sample) ([]int64, []uint64) {
	ts := make([]int64, len(ss))
	vs := make([]uint64, len(ss))
	for i, s := range ss {
		ts[i], vs[i] = s.t, math.Float64bits(s.v)
	}
	return ts, vs
}

// encodeXOR encodes samples (times ts, float bits vs) with xorWriter's
// per-sample methods, which the rebuild's loop (xorWriter.rest) inlines:
// FuzzPartEncodeXOR checks them against chunkenc.
func encodeXOR(ts []int64, vs []uint64) []byte {
	var w xorWriter
	w.begin(nil, len(ts))
	if len(ts) > 0 {
		w.first(ts[0], vs[0])
	}
	if len(ts) > 1 {
		w.second(uint64(ts[1]-ts[0]), vs[1]^vs[0])
	}
	tDelta := uint64(0)
	if len(ts) > 1 {
		tDelta = uint64(ts[1] - ts[0])
	}
	for i := 2; i < len(ts); i++ {
		d := uint64(ts[i] - ts[i-1])
		w.dod(int64(d - tDelta))
		tDelta = d
		w.value(vs[i] ^ vs[i-1])
	}
	return w.finish()
}
