package distributor

// Benchmarks of the push path. Run and compare with:
//
//	go test -run=^$ -bench=. -count=10 ./distributor/ > new.txt
//	benchstat old.txt new.txt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"syscall"
	"testing"

	"github.com/golang/snappy"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// benchRequest returns a request of n series of one sample each, with 10
// labels each (sorted, as Prometheus sends them), from a fixed seed.
func benchRequest(n int) *arguspb.WriteRequest {
	rnd := rand.New(rand.NewPCG(1, 2))
	req := &arguspb.WriteRequest{}
	for i := range n {
		ls := []string{
			"__name__", fmt.Sprintf("metric_%d", i%50),
			"cluster", "prod-eu-1",
			"code", fmt.Sprint(200 + rnd.IntN(5)*100),
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/256%256, i%256),
			"job", "node",
			"method", []string{"GET", "POST", "PUT"}[rnd.IntN(3)],
			"namespace", "monitoring",
			"pod", fmt.Sprintf("node-exporter-%08x", rnd.Uint32()),
			"route", fmt.Sprintf("/api/v1/items/%d", rnd.IntN(100)),
			"zone", "eu-west-1a",
		}
		req.Timeseries = append(req.Timeseries, series(ls, rnd.Float64(), ms(0)))
	}
	return req
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkPushHandler measures a whole push of 1000 series × 1 sample, 10
// labels each, to fake ingesters that answer an empty response: one
// ingester (replicas=1), and three ingesters with replication factor 3, so
// that every series is sent to all three (replicas=3). samples/s counts the
// samples of the request, not the copies sent to replicas.
func BenchmarkPushHandler(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		for _, raw := range []bool{false, true} {
			b.Run(fmt.Sprintf("replicas=%d/raw=%t", replicas, raw), func(b *testing.B) {
				var ing Pusher = fakeIngesterNoop{}
				if raw {
					ing = fakeIngesterRaw{}
				}
				benchmarkPushHandler(b, replicas, ing)
			})
		}
	}
}

func benchmarkPushHandler(b *testing.B, replicas int, ing Pusher) {
	const numSeries = 1000
	d, _, _ := newReplicated(b, replicas, replicas, nil)
	lim := defaultLimits(b)
	lim.IngestionRate = 0 // The fake clock never refills a bucket.
	d.limits = tenantLimitsMap{def: lim}
	d.clients = ClientFactoryFunc(func(string) (Pusher, error) { return ing, nil })
	body := encode(b, benchRequest(numSeries))
	h := d.PushHandler()
	r := newPushRequest(body)
	rd := bytes.NewReader(body)
	w := &discardWriter{h: http.Header{}}

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		h.ServeHTTP(w, r)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(float64(numSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries*b.N), "ns/sample")
}

// BenchmarkValidate measures the stateless checks of 1000 series of 10
// labels, sorted as Prometheus sends them.
func BenchmarkValidate(b *testing.B) {
	const numSeries = 1000
	req := benchRequest(numSeries)
	v := newSeriesValidator(testNow, defaultLimits(b))
	b.ReportAllocs()
	for b.Loop() {
		for _, ts := range req.Timeseries {
			if serr := v.validate(ts); serr != nil {
				b.Fatal(serr)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries*b.N), "ns/series")
}

// fakeIngesterNoop is a Pusher that marshals the request with the gRPC
// codec, as a gRPC client does, answers an empty response (everything
// appended) and records nothing.
type fakeIngesterNoop struct{}

func (fakeIngesterNoop) Push(_ context.Context, req *arguspb.WriteRequest, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	return marshalDiscard(req)
}

func marshalDiscard(m any) (*arguspb.PushResponse, error) {
	bs, err := grpccodec.Codec{}.Marshal(m)
	if err != nil {
		return nil, err
	}
	bs.Free()
	return &arguspb.PushResponse{}, nil
}

// fakeIngesterRaw is fakeIngesterNoop that also takes pre-encoded requests,
// as the clients of a ClientPool do.
type fakeIngesterRaw struct{ fakeIngesterNoop }

func (fakeIngesterRaw) PushRaw(_ context.Context, in *rawBatch, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	return marshalDiscard(in)
}

// shardedPush returns the writeCtx of a push of body (snappy-compressed)
// to a distributor of one ingester, decoded, validated and sharded into
// one batch; it goes back to its pool at the end of the test.
func shardedPush(tb testing.TB, body []byte) *writeCtx {
	tb.Helper()
	d, _, _ := newReplicated(tb, 1, 1, nil)
	wc := getWriteCtx()
	tb.Cleanup(func() { putWriteCtx(wc) })
	wc.body = body
	require.NoError(tb, wc.decode(1<<24))
	_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), defaultLimits(tb))
	require.NoError(tb, err)
	require.NoError(tb, d.shard(wc, testTenant))
	return wc
}

// BenchmarkBatchMarshal compares encoding a batch of 1000 series (the work
// a push does once per replica) from the decoded series with encoding it
// from their raw bytes.
func BenchmarkBatchMarshal(b *testing.B) {
	wc := shardedPush(b, encode(b, benchRequest(1000)))
	batch := &wc.batches[0]
	decoded, err := rawBatch{wc: wc, b: batch}.request()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		msg  any
	}{{"decoded", decoded}, {"raw", rawBatch{wc: wc, b: batch}}} { // a value: Marshal encodes it each time, not once per push
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalDiscard(c.msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/series")
		})
	}
}

// BenchmarkPushProtocols measures a whole push of the series of
// benchRequest(1000) in each protocol the distributor takes, to one fake
// ingester that takes raw batches: remote write 1.0, remote write 2.0 (one
// symbol table, as Prometheus sends it) and OTLP (gauges grouped by metric
// name, the other labels as attributes). ns/sample compares them.
func BenchmarkPushProtocols(b *testing.B) {
	const numSeries = 1000
	req := benchRequest(numSeries)
	st := writev2.NewSymbolTable()
	rw2 := &writev2.Request{}
	md := pmetric.NewMetrics()
	metrics := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	byName := map[string]pmetric.NumberDataPointSlice{}
	for _, ts := range req.Timeseries {
		s := writev2.TimeSeries{}
		for _, l := range ts.Labels {
			s.LabelsRefs = append(s.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.TimestampMs})
		}
		rw2.Timeseries = append(rw2.Timeseries, s)
		dps, ok := byName[ts.Labels[0].Value]
		if !ok {
			m := metrics.AppendEmpty()
			m.SetName(ts.Labels[0].Value)
			dps = m.SetEmptyGauge().DataPoints()
			byName[ts.Labels[0].Value] = dps
		}
		dp := dps.AppendEmpty()
		for _, l := range ts.Labels[1:] {
			dp.Attributes().PutStr(l.Name, l.Value)
		}
		dp.SetTimestamp(pcommon.Timestamp(ts.Samples[0].TimestampMs * 1e6))
		dp.SetDoubleValue(ts.Samples[0].Value)
	}
	rw2.Symbols = st.Symbols()
	otlpBody, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		body []byte
		req  func([]byte) *http.Request
		h    func(*Distributor) http.Handler
		want int
	}{
		{"rw1", encode(b, req), newPushRequest, (*Distributor).PushHandler, http.StatusNoContent},
		{"rw2", snappy.Encode(nil, marshalRW2(b, rw2)), newRW2RequestBody, (*Distributor).PushHandler, http.StatusNoContent},
		{"otlp", otlpBody, func(body []byte) *http.Request { return newOTLPRequest(body, "application/x-protobuf") }, (*Distributor).OTLPHandler, http.StatusOK},
	} {
		b.Run("protocol="+c.name, func(b *testing.B) {
			d, _, _ := newReplicated(b, 1, 1, nil)
			lim := defaultLimits(b)
			lim.IngestionRate = 0
			d.limits = tenantLimitsMap{def: lim}
			d.clients = ClientFactoryFunc(func(string) (Pusher, error) { return fakeIngesterRaw{}, nil })
			h := c.h(d)
			r := c.req(c.body)
			rd := bytes.NewReader(c.body)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			cpu0 := benchProcessCPU(b)
			for b.Loop() {
				rd.Reset(c.body)
				r.Body = io.NopCloser(rd)
				h.ServeHTTP(w, r)
				if w.code != c.want {
					b.Fatalf("status %d", w.code)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries*b.N), "ns/sample")
			// CPU time, which other processes on a shared machine do not
			// inflate as they do wall time.
			b.ReportMetric(float64(benchProcessCPU(b)-cpu0)/float64(numSeries*b.N), "cpu-ns/sample")
		})
	}
}

// benchProcessCPU is the user and system CPU time of the process, in ns.
func benchProcessCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkValidateKnownSeries measures what a push of 1000 known series
// (10 labels) costs the distributor from its decoding to its stream refs:
// decode, validate, refsOf. "validate-then-lookup" is the path without the
// dictionary in validate (every series checked and hashed, then looked up
// by refsOf); "known" looks them up in validate and skips their label
// checks and hash (streamrefs.go).
func BenchmarkValidateKnownSeries(b *testing.B) {
	const numSeries = 1000
	body := encode(b, benchRequest(numSeries))
	lim := defaultLimits(b)
	for _, tc := range []struct {
		name  string
		known bool
	}{{"validate-then-lookup", false}, {"known", true}} {
		b.Run(tc.name, func(b *testing.B) {
			d, _, _ := newReplicated(b, 1, 1, nil)
			dict := &seriesDict{}
			if tc.known {
				d.dict = dict
				dict.used.Store(true)
			}
			tm := d.metrics.forTenant(testTenant, testNow)
			push := func() {
				wc := getWriteCtx()
				wc.body = append(wc.body, body...)
				if err := wc.decode(1 << 24); err != nil {
					b.Fatal(err)
				}
				if _, err := d.validate(wc, testTenant, tm, lim); err != nil {
					b.Fatal(err)
				}
				wc.tenant = testTenant
				if refs := dict.refsOf(wc); len(refs) != numSeries || refs[numSeries-1] == 0 {
					b.Fatal("no refs")
				}
				putWriteCtx(wc)
			}
			push() // The series become known.
			b.ReportAllocs()
			for b.Loop() {
				push()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(numSeries*b.N), "ns/series")
		})
	}
}
