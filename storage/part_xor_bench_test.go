package storage

import (
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// BenchmarkPartUntranscode rebuilds XOR chunks of each kind of the density
// data from their transcoded form.
func BenchmarkPartUntranscode(b *testing.B) {
	data := densityData()
	src := densitySource(b, data)
	for _, kind := range []string{"http_requests_total", "node_load1", "kube_pod_container_status_ready"} {
		var tcs [][]byte
		for _, s := range src["bench"] {
			if s.Labels.Get("__name__") != kind {
				continue
			}
			for _, c := range s.Chunks {
				tc, ok := transcodeXOR(nil, c.Data)
				require.True(b, ok)
				tcs = append(tcs, tc)
			}
			if len(tcs) > 600 {
				break
			}
		}
		b.Run("metric="+kind, func(b *testing.B) {
			var x xorScratch
			i := 0
			for b.Loop() {
				_, ok := x.untranscode(tcs[i%len(tcs)])
				require.True(b, ok)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSamplesPerChunk), "ns/sample")
		})
	}
}

// BenchmarkXORDecodeReference iterates the same chunks with chunkenc, as a
// reference for the rebuild's cost per sample.
func BenchmarkXORDecodeReference(b *testing.B) {
	data := densityData()
	src := densitySource(b, data)
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
			var it chunkenc.Iterator
			i := 0
			var sum float64
			for b.Loop() {
				ch, _ := chunkenc.FromData(chunkenc.EncXOR, cs[i%len(cs)])
				it = ch.Iterator(it)
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
