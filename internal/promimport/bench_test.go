package promimport

// go test -run='^$' -bench=BenchmarkImport -benchtime=5x ./internal/promimport/

import (
	"fmt"
	"log/slog"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/storage"
)

// BenchmarkImport imports one Prometheus block of 2,000 series x 2h at 15 s
// (960K samples, counters and gauges) into a fresh storage.DB per op, and
// reports samples per second and the bytes per sample of the store.
func BenchmarkImport(b *testing.B) {
	const n = 2000
	src := b.TempDir()
	ss := make([]promstorage.Series, 0, n)
	for i := range n {
		cs := make([]chunks.Sample, 0, 2*hourMs/stepMs)
		v := float64(i)
		for t := int64(0); t < 2*hourMs; t += stepMs {
			if i%2 == 0 {
				v += float64(t % 7)
			} else {
				v = math.Sin(float64(t+int64(i))) * 1e3
			}
			cs = append(cs, sample{t: t, f: v})
		}
		ss = append(ss, promstorage.NewListSeries(labels.FromStrings("__name__", fmt.Sprintf("m%d", i%20), "instance", fmt.Sprintf("host-%04d", i/20), "job", "bench"), cs))
	}
	// A 48h chunk range keeps CreateBlock's head from refusing the next
	// series' first samples after it commits (its window is half the range).
	_, err := tsdb.CreateBlock(ss, src, 48*hourMs, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	blocks, err := FindBlocks(src)
	if err != nil {
		b.Fatal(err)
	}
	var st Stats
	var dbBytes int64
	for b.Loop() {
		db, err := storage.OpenDB(b.TempDir(), storage.DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if st, err = Import(b.Context(), db, blocks, Options{Tenant: tenantA}); err != nil {
			b.Fatal(err)
		}
		dbBytes = 0
		for _, p := range db.Partitions() {
			dbBytes += p.Bytes
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if st.Samples != n*2*hourMs/stepMs {
		b.Fatalf("imported %d samples, want %d", st.Samples, n*2*hourMs/stepMs)
	}
	b.ReportMetric(float64(st.Samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(dbBytes)/float64(st.Samples), "file-bytes/sample")
}
