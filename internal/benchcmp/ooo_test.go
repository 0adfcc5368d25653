package benchcmp

import (
	"fmt"
	"testing"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// fixedLimits gives every tenant the same limits.
type fixedLimits limits.Limits

func (f fixedLimits) For(string) *limits.Limits {
	l := limits.Limits(f)
	return &l
}

// BenchmarkAppendOutOfOrder measures the append cost of out-of-order
// samples against in-order ones, on both sides with a 1 h out-of-order
// window. One op pushes two samples to each series, in two rounds of
// requests: the next scrape (in order), then
//
//   - order=inorder: the scrape after it (in order);
//   - order=late1: the scrape just before it, skipped so far (one scrape
//     late, the usual out-of-order sample: a sender that retries or two
//     that race);
//   - order=late60: a skipped scrape 60 ops (30 min) back.
//
// Run it with -benchtime=60x: 60 ops fill a chunk (120 samples) once, so
// that every fill of the open chunk the merges rewrite is measured. Its CPU
// per sample counts the whole process (Argus's background flushes too).
//
// Argus merges each out-of-order sample into the series' chunks in memory
// (decoding and re-encoding the chunks that hold or follow it); Prometheus
// appends it to the series' out-of-order head chunk (and its WBL) and pays
// at read time instead.
func BenchmarkAppendOutOfOrder(b *testing.B) {
	const n = 10_000
	for _, order := range []struct {
		name string
		lag  int // ops back; -1: in order
	}{{"inorder", -1}, {"late1", 0}, {"late60", 60}} {
		for _, im := range impls {
			b.Run(fmt.Sprintf("order=%s/impl=%s/series=%d", order.name, im.name, n), func(b *testing.B) {
				ctx := tenant.With(b.Context(), tenantID)
				series := generateSeries(n)
				g := newValueGen(series)
				reqs := newRequests(series, false)
				db := im.open(b, openOptions{oooWindow: time.Hour})
				// Op k pushes scrape 2k, then scrape 2k+1 (in order) or
				// 2(k-lag)-1 (out of order).
				second := func(k int) int {
					if order.lag < 0 {
						return 2*k + 1
					}
					return 2*(k-order.lag) - 1
				}
				op := func(k int) {
					for _, s := range []int{2 * k, second(k)} {
						if s < 0 {
							continue
						}
						g.fill(reqs, scrapeTime(s))
						for _, req := range reqs {
							if err := db.push(ctx, req); err != nil {
								b.Fatalf("push scrape %d (op %d): %v", s, k, err)
							}
						}
					}
				}
				k := 0
				for ; k < max(order.lag, 0)+2; k++ { // Creates the series, fills the window.
					op(k)
				}
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					op(k)
					k++
				}
				samples := 2 * float64(n) * float64(b.N)
				b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
				b.ReportMetric(float64(processCPU()-cpu)/samples, "cpu-ns/sample")
			})
		}
	}
}
