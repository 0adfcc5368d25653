package ingester

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Benchmarks of the read path over one tenant of many in-memory series,
// shaped as the label-browser and selector queries of a dashboard:
// instances × metrics series, all job="app", half of the metrics named
// app_requests_<k>_total. ARGUS_BENCH_INSTANCES sets the instances (default
// 200, so 200K series; 1000 gives 1M). Compare before and after with
// benchstat; per-series figures scale to other sizes.

const benchMetrics = 1000

func benchInstances() int {
	if n, err := strconv.Atoi(os.Getenv("ARGUS_BENCH_INSTANCES")); err == nil && n > 0 {
		return n
	}
	return 200
}

// readBenchIngester returns an ingester holding the benchmark tenant "bench":
// every series with samples at 15 s intervals over 9 minutes (two, to keep
// the setup short: the chunk count, not their length, drives the reads).
func readBenchIngester(b *testing.B) *Ingester {
	b.Helper()
	ing := startIngester(b, testConfig(b, b.TempDir()))
	instances := benchInstances()
	for _, t := range []int64{0, 9 * 60_000} {
		for i := range instances {
			req := &arguspb.WriteRequest{}
			for m := range benchMetrics {
				name := fmt.Sprintf("app_other_%d", m/2)
				if m%2 == 0 {
					name = fmt.Sprintf("app_requests_%d_total", m/2)
				}
				req.Timeseries = append(req.Timeseries, ts([]string{
					"__name__", name, "instance", fmt.Sprintf("host-%d:9100", i), "job", "app",
				}, sample{t, float64(i)}))
			}
			if _, err := ing.Push(tenantCtx("bench"), req); err != nil {
				b.Fatal(err)
			}
		}
	}
	return ing
}

// BenchmarkReadPath runs the four reads at one size, the ingester built once.
func BenchmarkReadPath(b *testing.B) {
	ing := readBenchIngester(b)
	ctx := tenantCtx("bench")
	nSeries := float64(benchInstances() * benchMetrics)
	b.Run("label_names", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			resp, err := ing.LabelNames(ctx, &arguspb.LabelNamesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64})
			if err != nil || len(resp.Names) != 3 {
				b.Fatal(err, resp)
			}
		}
	})
	b.Run("label_values_instance", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			resp, err := ing.LabelValues(ctx, &arguspb.LabelValuesRequest{Name: "instance", MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64})
			if err != nil || len(resp.Values) != benchInstances() {
				b.Fatal(err, len(resp.GetValues()))
			}
		}
	})
	b.Run("label_values_instance_of_name_regexp", func(b *testing.B) {
		defer reportCPU(b)()
		m := &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: "app_requests_.*_total"}
		for b.Loop() {
			resp, err := ing.LabelValues(ctx, &arguspb.LabelValuesRequest{Name: "instance", MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64, Matchers: []*arguspb.LabelMatcher{m}})
			if err != nil || len(resp.Values) != benchInstances() {
				b.Fatal(err, len(resp.GetValues()))
			}
		}
	})
	for _, c := range []struct {
		name string
		m    *arguspb.LabelMatcher
		want float64
	}{
		{"series_name_regexp", &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: "app_requests_.*_total"}, nSeries / 2},
		{"series_job", &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "app"}, nSeries},
	} {
		b.Run(c.name, func(b *testing.B) {
			var bytes int
			defer reportCPU(b)()
			for b.Loop() {
				st := &marshallingStream{ctx: ctx}
				err := ing.Series(&arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 9 * 60_000, Matchers: []*arguspb.LabelMatcher{c.m}}, st)
				if err != nil || float64(st.series) != c.want {
					b.Fatal(err, st.series)
				}
				bytes = st.bytes
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/c.want, "ns/series")
			b.ReportMetric(float64(bytes)/c.want, "bytes/series")
		})
	}
}

// BenchmarkSelectSeries is the all-in-one querier's read of the head:
// SelectSeries in the process, each series checked for order and kept as the
// querier does, at the size of BenchmarkReadPath.
func BenchmarkSelectSeries(b *testing.B) {
	ing := readBenchIngester(b)
	ctx := tenantCtx("bench")
	nSeries := benchInstances() * benchMetrics
	for _, c := range []struct {
		name string
		m    *arguspb.LabelMatcher
		want int
	}{
		{"name_regexp", &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: "app_requests_.*_total"}, nSeries / 2},
		{"job", &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "app"}, nSeries},
	} {
		b.Run(c.name, func(b *testing.B) {
			defer reportCPU(b)()
			req := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 9 * 60_000, Matchers: []*arguspb.LabelMatcher{c.m}}
			sink := 0
			for b.Loop() {
				var kept []labels.Labels
				err := ing.SelectSeries(ctx, req, func(lset labels.Labels, chks []chunks.Meta) error {
					if n := len(kept); n > 0 && labels.Compare(kept[n-1], lset) >= 0 {
						return fmt.Errorf("%s after %s", lset, kept[n-1])
					}
					kept = append(kept, lset)
					for _, c := range chks { // As PromQL reads them, in label order.
						sink += int(c.Chunk.Bytes()[0])
					}
					return nil
				})
				if err != nil || len(kept) != c.want || sink < 0 {
					b.Fatal(err, len(kept))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.want), "ns/series")
		})
	}
}

// reportCPU starts measuring the process's CPU time (user and system, all
// goroutines, GC included) and returns the function that reports it per
// op as cpu-ns/op: on a shared machine it varies less than the wall time.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// marshallingStream marshals what Series sends, as gRPC would, and counts it.
type marshallingStream struct {
	grpc.ServerStream
	ctx           context.Context
	series, bytes int
}

func (s *marshallingStream) Context() context.Context { return s.ctx }

func (s *marshallingStream) Send(m *arguspb.SeriesResponse) error {
	b, err := m.MarshalVT()
	s.series += len(m.Series)
	s.bytes += len(b)
	return err
}
