package ingester

import (
	"fmt"
	"testing"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// BenchmarkPushNewSeries pushes 100K new series per op (in requests of
// 1000) to a new tenant: the cost of creating series, the series map's
// growth and the postings included.
func BenchmarkPushNewSeries(b *testing.B) {
	const numSeries, batch = 100_000, 1000
	ing := startIngester(b, testConfig(b, b.TempDir()))
	reqs := make([]*arguspb.WriteRequest, numSeries/batch)
	for k := range reqs {
		reqs[k] = &arguspb.WriteRequest{}
		for n := range batch {
			s := k*batch + n
			reqs[k].Timeseries = append(reqs[k].Timeseries, ts([]string{
				"__name__", fmt.Sprintf("metric_%d", s%100), "instance", fmt.Sprintf("host-%d:9100", s/100), "job", "node",
			}, sample{1000, 1}))
		}
	}
	op := 0
	b.ReportAllocs()
	for b.Loop() {
		op++
		ctx := tenantCtx(fmt.Sprintf("t%d", op))
		for _, req := range reqs {
			if resp, err := ing.Push(ctx, req); err != nil || resp.RejectedSamples > 0 {
				b.Fatalf("push: %v %v", err, resp)
			}
		}
	}
	b.ReportMetric(float64(numSeries)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
}
