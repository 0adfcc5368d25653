package storage

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// xorIterSamples reads every sample of it as (t, value bits), and its error.
func xorIterSamples(it chunkenc.Iterator) ([][2]uint64, error) {
	var out [][2]uint64
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		out = append(out, [2]uint64{uint64(t), math.Float64bits(v)})
	}
	return out, it.Err()
}

// requireXORLikeChunkenc checks that XORIterator reads the XOR bytes b as
// chunkenc does: the same samples when chunkenc reads them all; otherwise
// at most the samples chunkenc read before its error, and an error.
func requireXORLikeChunkenc(t *testing.T, b []byte, it *XORIterator) {
	t.Helper()
	if len(b) < 2 {
		it.Reset(b)
		require.Equal(t, chunkenc.ValNone, it.Next())
		require.Error(t, it.Err())
		return
	}
	ch, err := chunkenc.FromData(chunkenc.EncXOR, b)
	require.NoError(t, err)
	want, wantErr := xorIterSamples(ch.Iterator(nil))
	it.Reset(b)
	got, gotErr := xorIterSamples(it)
	if wantErr == nil && gotErr == nil {
		require.Equal(t, want, got)
		return
	}
	require.Error(t, gotErr, "chunkenc: %v", wantErr)
	require.LessOrEqual(t, len(got), len(want))
	for i := range got {
		require.Equal(t, want[i], got[i], "sample %d", i)
	}
}

func TestXORIterator(t *testing.T) {
	var it XORIterator
	inputs := [][]sample{
		{{1, 1}},
		{{1, 1}, {2, 2}},
		{{-5, math.NaN()}, {10, math.Inf(1)}, {11, math.Float64frombits(0x7ff0000000000002)}, {1 << 40, 0}, {1<<40 + 1, -0.0}},
		{{0, 1}, {15000, 1}, {30000, 1}, {45001, 2}, {60000, 2.5}, {60000 + 1<<21, 1e300}, {60000 + 1<<40, -1e-300}},
	}
	for _, in := range inputs {
		requireXORLikeChunkenc(t, xorChunk(t, in).Data, &it)
	}
	for _, s := range densitySource(t, densityData())["bench"][:500] {
		for _, c := range s.Chunks {
			requireXORLikeChunkenc(t, c.Data, &it)
		}
	}
	// Cut short: the samples that decode, then an error.
	b := xorChunk(t, inputs[3]).Data
	for n := range len(b) {
		requireXORLikeChunkenc(t, b[:n], &it)
	}
	// Seek stays on a sample at or after t.
	it.Reset(b)
	require.Equal(t, chunkenc.ValFloat, it.Seek(30000))
	require.Equal(t, int64(30000), it.AtT())
	require.Equal(t, chunkenc.ValFloat, it.Seek(100))
	require.Equal(t, int64(30000), it.AtT())
	require.Equal(t, chunkenc.ValNone, it.Seek(math.MaxInt64))
	require.Equal(t, chunkenc.ValNone, it.Next())
	require.NoError(t, it.Err())
}

// FuzzXORIterator checks XORIterator against chunkenc on chunks that
// chunkenc wrote and on arbitrary bytes.
func FuzzXORIterator(f *testing.F) {
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x05\x01\x02\x03\x04\x05\x06\x07\x08\x09\x00\x02\x01\x03\xff\x00\x11"), false)
	f.Add([]byte("\x00\x03\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff\xf0"), true)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		var it XORIterator
		if raw {
			requireXORLikeChunkenc(t, data, &it)
			return
		}
		requireXORLikeChunkenc(t, xorChunk(t, decodeFuzzSamples(&fuzzInput{b: data})).Data, &it)
	})
}

// BenchmarkXORIterator iterates the chunks of BenchmarkXORDecodeReference
// with XORIterator.
func BenchmarkXORIterator(b *testing.B) {
	src := densitySource(b, densityData())
	for _, kind := range []string{"http_requests_total", "node_load1", "kube_pod_container_status_ready"} {
		var cs [][]byte
		for _, s := range src["bench"] {
			if s.Labels.Get("__name__") != kind {
				continue
			}
			for _, c := range s.Chunks {
				cs = append(cs, c.Data)
			}
			if len(cs) > 600 {
				break
			}
		}
		b.Run("metric="+kind, func(b *testing.B) {
			var it XORIterator
			i := 0
			var sum float64
			for b.Loop() {
				it.Reset(cs[i%len(cs)])
				for it.Next() != chunkenc.ValNone {
					_, v := it.At()
					sum += v
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSamplesPerChunk), "ns/sample")
		})
	}
}
