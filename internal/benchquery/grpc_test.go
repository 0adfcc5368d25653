package benchquery

// BenchmarkRangeQueryGRPCvsHTTP times one range query over 10K series end to
// end from a Go program, through the public gRPC query API (package client)
// and through the HTTP JSON API (client_golang's api/prometheus/v1, what Go
// programs use against Prometheus), against the same all-in-one argus in
// the same run, and reports the time, the bytes on the wire and the
// client's allocations of each, and their ratios (gRPC/HTTP). Run it with:
//
//	make build
//	ARGUS_BIN=$PWD/bin/argus go test -run='^$' -bench=BenchmarkRangeQueryGRPCvsHTTP -benchtime=5x -count=1 -v ./internal/benchquery/
//
// BENCH_GRPC_SERIES overrides the 10000 series.

import (
	"context"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// grpcBenchSamples samples per series, stepMs apart: a 15-minute range.
const grpcBenchSamples = 60

// countingConn counts the bytes read from the connection: the answer's.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, n: n}, nil
	}
}

// tenantTransport sends the tenant header on every request.
type tenantTransport struct{ next http.RoundTripper }

func (t tenantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Scope-OrgID", tenant)
	return t.next.RoundTrip(r)
}

// apiSide is one way of asking the query, and what it measured.
type apiSide struct {
	name    string
	query   func(b *testing.B) int // returns the points received
	wire    atomic.Int64
	took    time.Duration
	alloc   uint64 // bytes allocated by this process during its queries
	mallocs uint64
}

func BenchmarkRangeQueryGRPCvsHTTP(b *testing.B) {
	n := 10_000
	if s := os.Getenv("BENCH_GRPC_SERIES"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	p := clustertest.StartArgus(b, clustertest.Options{Flags: commonFlags})
	endMs := time.Now().Truncate(time.Second).UnixMilli()
	for first := 0; first < n; first += batchSeries {
		batch := makeSamples(first, min(first+batchSeries, n), endMs)
		status, body := p.Push(b, tenant, batch)
		require.True(b, status/100 == 2, "push: %d %s", status, body)
	}
	start, end := time.UnixMilli(endMs-(grpcBenchSamples-1)*stepMs), time.UnixMilli(endMs)
	const expr = metricName
	want := n * grpcBenchSamples
	sides := []*apiSide{{name: "grpc"}, {name: "http"}, {name: "http-gzip"}}
	sides[0].query = grpcQuery(b, p.GRPCAddr(), &sides[0].wire, expr, start, end)
	sides[1].query = httpQuery(b, p.URL(), &sides[1].wire, false, expr, start, end)
	sides[2].query = httpQuery(b, p.URL(), &sides[2].wire, true, expr, start, end)
	for _, s := range sides { // warm up connections and caches
		require.Equal(b, want, s.query(b), s.name)
		s.wire.Store(0)
	}
	ops := 0
	for b.Loop() {
		ops++
		for _, s := range sides {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			t0 := time.Now()
			got := s.query(b)
			s.took += time.Since(t0)
			runtime.ReadMemStats(&after)
			s.alloc += after.TotalAlloc - before.TotalAlloc
			s.mallocs += after.Mallocs - before.Mallocs
			require.Equal(b, want, got, s.name)
		}
	}
	g := sides[0]
	for _, s := range sides {
		b.ReportMetric(float64(s.took.Milliseconds())/float64(ops), s.name+"-ms/op")
		b.ReportMetric(float64(s.wire.Load())/float64(ops)/(1<<20), s.name+"-wire-MiB/op")
		b.ReportMetric(float64(s.alloc)/float64(ops)/(1<<20), s.name+"-client-alloc-MiB/op")
		b.ReportMetric(float64(s.mallocs)/float64(ops), s.name+"-client-allocs/op")
		if s != g {
			b.ReportMetric(float64(g.took)/float64(s.took), "time-grpc/"+s.name)
			b.ReportMetric(float64(g.wire.Load())/float64(s.wire.Load()), "wire-grpc/"+s.name)
			b.ReportMetric(float64(g.alloc)/float64(s.alloc), "alloc-bytes-grpc/"+s.name)
			b.ReportMetric(float64(g.mallocs)/float64(s.mallocs), "allocs-grpc/"+s.name)
		}
	}
}

// makeSamples is makeBatch with grpcBenchSamples samples per series.
func makeSamples(first, end int, endMs int64) []clustertest.TimeSeries {
	batch := makeBatch(first, end, endMs)
	for i := range batch {
		s := make([]clustertest.Sample, grpcBenchSamples)
		for j := range s {
			s[j] = clustertest.Sample{T: endMs - int64(grpcBenchSamples-1-j)*stepMs, V: float64(first+i) + float64(j)/7}
		}
		batch[i].Samples = s
	}
	return batch
}

func grpcQuery(b *testing.B, addr string, wire *atomic.Int64, expr string, start, end time.Time) func(*testing.B) int {
	c, err := client.Dial(addr, client.Options{Tenant: tenant, DialOptions: []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return countingDial(wire)(ctx, "tcp", a) }),
	}})
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	return func(b *testing.B) int {
		res, err := c.QueryRange(b.Context(), client.RangeQuery{Expr: expr, Start: start, End: end, Step: time.Duration(stepMs) * time.Millisecond})
		require.NoError(b, err)
		points := 0
		for _, s := range res.Series {
			points += len(s.Floats)
		}
		return points
	}
}

func httpQuery(b *testing.B, url string, wire *atomic.Int64, gzip bool, expr string, start, end time.Time) func(*testing.B) int {
	tr := &http.Transport{DialContext: countingDial(wire), DisableCompression: !gzip}
	b.Cleanup(tr.CloseIdleConnections)
	c, err := promapi.NewClient(promapi.Config{Address: url + "/prometheus", RoundTripper: tenantTransport{next: tr}})
	require.NoError(b, err)
	api := promv1.NewAPI(c)
	return func(b *testing.B) int {
		v, _, _, err := api.QueryRange(b.Context(), expr, promv1.Range{Start: start, End: end, Step: time.Duration(stepMs) * time.Millisecond})
		require.NoError(b, err)
		points := 0
		for _, s := range v.(model.Matrix) {
			points += len(s.Values)
		}
		return points
	}
}
