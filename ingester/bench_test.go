// Benchmarks of the ingester's hot path. Run and compare with benchstat:
//
//	go test -run='^$' -bench=. -benchmem -count=6 ./ingester/ | tee new.txt
//	benchstat old.txt new.txt
package ingester

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// BenchmarkPush pushes one sample to each of 10K series per op, in requests
// of 1000 series, through Push (no gRPC), with the default config (WAL with
// snappy, fsync every second). The series exist before the timer starts.
func BenchmarkPush(b *testing.B) {
	benchPush(b, Deps{})
}

// BenchmarkPushWithLimits is BenchmarkPush with series limits that the
// pushes never reach (per user and per metric, shared by 3 of 9 ingesters):
// limits cost nothing on a push that creates no series.
func BenchmarkPushWithLimits(b *testing.B) {
	benchPush(b, Deps{Limits: newFakeLimits(150_000, 20_000), Ring: newFakeRing(3, 9)})
}

func benchPush(b *testing.B, deps Deps) {
	const (
		numSeries = 10_000
		batch     = 1000
	)
	ing := startIngesterDeps(b, testConfig(b, b.TempDir()), deps)
	ctx := tenantCtx("bench")
	reqs := make([]*arguspb.WriteRequest, numSeries/batch)
	for k := range reqs {
		reqs[k] = &arguspb.WriteRequest{}
		for n := range batch {
			s := k*batch + n
			reqs[k].Timeseries = append(reqs[k].Timeseries, ts([]string{
				"__name__", fmt.Sprintf("metric_%d", s%100), "instance", fmt.Sprintf("host-%d:9100", s/100), "job", "node",
			}, sample{0, 0}))
		}
	}
	scrape := int64(0)
	pushAll := func() {
		scrape++
		for _, req := range reqs {
			for _, s := range req.Timeseries {
				s.Samples[0].TimestampMs = scrape * 15_000
				s.Samples[0].Value = float64(scrape)
			}
			resp, err := ing.Push(ctx, req)
			if err != nil || resp.RejectedSamples > 0 {
				b.Fatalf("push: %v %v", err, resp)
			}
		}
	}
	pushAll() // Creates the series.
	runtime.GC()
	b.ReportAllocs()
	for b.Loop() {
		pushAll()
	}
	b.ReportMetric(float64(numSeries)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
