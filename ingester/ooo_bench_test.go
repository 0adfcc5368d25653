package ingester

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/tsdb/record"
)

// BenchmarkAppendMixed measures appendMixedLocked on one series: per op an
// in-order sample, then one a scrape older (the series' open chunk holds
// 0-120 samples, as in steady state).
func BenchmarkAppendMixed(b *testing.B) {
	s := newMemSeries(1, "", math.MinInt64, 0)
	var buf []oooSample
	k := int64(0)
	smps := make([]record.RefSample, 2)
	b.ReportAllocs()
	for b.Loop() {
		smps[0] = record.RefSample{Ref: 1, T: (2*k + 2) * 15_000, V: float64(k)}
		smps[1] = record.RefSample{Ref: 1, T: (2*k + 1) * 15_000, V: float64(k)}
		k++
		s.appendMixedLocked(smps, 0, &buf)
		if s.finished != nil && s.finished.next != nil {
			s.finished = s.finished.next // Keep the list short, as flushes do.
		}
	}
}
