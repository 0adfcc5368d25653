package ingester

import (
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/grpc/mem"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// BenchmarkPushDecoded is BenchmarkPush with each request decoded from its
// wire bytes by the gRPC codec first, as a Push over gRPC is: the cost of
// the codec's label strings included. The requests are encoded outside the
// timer; 10 labels per series, as in a Kubernetes scrape.
func BenchmarkPushDecoded(b *testing.B) {
	const (
		numSeries = 10_000
		batch     = 1000
	)
	ing := startIngester(b, testConfig(b, b.TempDir()))
	ctx := tenantCtx("bench")
	reqs := make([]*arguspb.WriteRequest, numSeries/batch)
	for k := range reqs {
		reqs[k] = &arguspb.WriteRequest{}
		for n := range batch {
			s := k*batch + n
			reqs[k].Timeseries = append(reqs[k].Timeseries, ts([]string{
				"__name__", fmt.Sprintf("metric_%d", s%100), "container", "app", "endpoint", "http-metrics",
				"instance", fmt.Sprintf("10.0.%d.%d:8080", s/100/256, s/100%256), "job", "node-exporter",
				"namespace", fmt.Sprintf("team-%02d", s/100%40), "node", fmt.Sprintf("ip-10-0-%d.compute.internal", s/1000),
				"pod", fmt.Sprintf("node-exporter-%08x", s/100), "service", "node-exporter", "uid", fmt.Sprintf("%08x-0000-4000-8000-%012x", s/100, s),
			}, sample{0, 0}))
		}
	}
	raws := make([][]byte, len(reqs))
	codec := grpccodec.Codec{}
	scrape := int64(0)
	pushAll := func(timed bool) {
		scrape++
		if timed {
			b.StopTimer()
		}
		for k, req := range reqs {
			for _, s := range req.Timeseries {
				s.Samples[0].TimestampMs = scrape * 15_000
				s.Samples[0].Value = float64(scrape)
			}
			var err error
			if raws[k], err = req.MarshalVT(); err != nil {
				b.Fatal(err)
			}
		}
		if timed {
			b.StartTimer()
		}
		for _, raw := range raws {
			req := &arguspb.WriteRequest{}
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, req); err != nil {
				b.Fatal(err)
			}
			resp, err := ing.Push(ctx, req)
			if err != nil || resp.RejectedSamples > 0 {
				b.Fatalf("push: %v %v", err, resp)
			}
		}
	}
	pushAll(false) // Creates the series.
	runtime.GC()
	b.ReportAllocs()
	for b.Loop() {
		pushAll(true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries)/float64(b.N), "ns/sample")
}
