package storage

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// BenchmarkL0FirstFlush writes one chunk of each of n new series (ten labels
// each, shaped like `make bench`) into a fresh level-0 partition file, in
// transactions of tx series (the ingester's flushes use 10K), as the first
// flush of a window does, and reports the cost per series. Most of it is the index of the new series: their
// series_by_labels, postings and label-values entries.
func BenchmarkL0FirstFlush(b *testing.B) {
	for _, c := range []struct{ n, tx int }{{20_000, 20_000}, {100_000, 100_000}, {100_000, 10_000}} {
		n := c.n
		b.Run(fmt.Sprintf("series=%d/tx=%d", n, c.tx), func(b *testing.B) {
			lbls, _ := dbBenchSeries(n)
			data := make([]byte, 150) // the size of a 120-sample XOR chunk; never decoded
			data[0] = 1
			batch := make([]Series, n)
			for i, l := range lbls {
				batch[i] = Series{Labels: l, Chunks: []Chunk{{MinTime: 0, MaxTime: 1_785_000, Encoding: chunkenc.EncXOR, Data: data}}}
			}
			b.ReportAllocs()
			var cpu time.Duration // of the process, GC included: the machine is shared
			for b.Loop() {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "l0.db")
				require.NoError(b, createBoltPartition(path, true))
				f, err := openBoltPartition(path, false, true)
				require.NoError(b, err)
				b.StartTimer()
				t0 := processCPU(b)
				for i := 0; i < n; i += c.tx {
					require.NoError(b, f.Append("bench", batch[i:min(i+c.tx, n)]))
				}
				cpu += processCPU(b) - t0
				b.StopTimer()
				require.NoError(b, f.Close())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/series")
		})
	}
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
