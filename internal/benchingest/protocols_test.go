package benchingest

// BenchmarkIngestProtocols runs Argus (all-in-one) and Prometheus, the real
// servers, each fresh for each protocol, and pushes them the same series in
// remote write 1.0, remote write 2.0 and OTLP/HTTP. One op is the whole
// comparison:
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkIngestProtocols -benchtime=1x -count=1 -timeout=60m ./internal/benchingest/

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// protocolSeriesEnv overrides defaultProtocolSeries.
const (
	protocolSeriesEnv     = "BENCH_PROTOCOL_SERIES"
	defaultProtocolSeries = 50_000
)

// protocol is one way of encoding the requests of a workload.
type protocol struct {
	name        string
	contentType string
	encoding    string
	// encode returns the body of request k of w.
	encode func(w *workload, k int) ([]byte, error)
	// path is the push path on each server.
	path map[string]string
}

var protocols = []protocol{
	{name: "rw1", contentType: "application/x-protobuf", encoding: "snappy", encode: encodeRW1,
		path: map[string]string{"argus": "/api/v1/push", "prometheus": "/api/v1/write"}},
	{name: "rw2", contentType: "application/x-protobuf;proto=io.prometheus.write.v2.Request", encoding: "snappy", encode: encodeRW2,
		path: map[string]string{"argus": "/api/v1/push", "prometheus": "/api/v1/write"}},
	{name: "otlp", contentType: "application/x-protobuf", encode: encodeOTLP,
		path: map[string]string{"argus": "/otlp/v1/metrics", "prometheus": "/api/v1/otlp/v1/metrics"}},
}

// BenchmarkIngestProtocols pushes the same series (BENCH_PROTOCOL_SERIES,
// default 50K, the pod metrics of BenchmarkIngestCPU) to Argus and to
// Prometheus 3.16, one sample per series per request (2000 series a
// request), 10 samples per series, in each protocol, and reports each
// server's CPU per sample and the ratios: Argus's remote write 2.0 to its
// 1.0 (the goal: no slower), Argus's to Prometheus's per protocol. A first
// untimed push in the same protocol creates the series; every sample must
// be stored.
func BenchmarkIngestProtocols(b *testing.B) {
	n := envInt(b, protocolSeriesEnv, defaultProtocolSeries)
	labels := make([][]*arguspb.Label, n)
	for i := range labels {
		labels[i] = seriesLabels(i)
	}
	cpu := map[string]float64{}
	for b.Loop() {
		for _, pr := range protocols {
			for _, srv := range []string{"argus", "prometheus"} {
				cpu[srv+"-"+pr.name] = measureProtocol(b, srv, pr, labels)
			}
		}
	}
	for _, pr := range protocols {
		for _, srv := range []string{"argus", "prometheus"} {
			b.ReportMetric(cpu[srv+"-"+pr.name], srv+"-"+pr.name+"-cpu-ns/sample")
		}
		b.ReportMetric(cpu["argus-"+pr.name]/cpu["prometheus-"+pr.name], pr.name+"-cpu-x-prometheus")
	}
	b.ReportMetric(cpu["argus-rw2"]/cpu["argus-rw1"], "argus-rw2-cpu-x-rw1")
}

// measureProtocol starts server srv, creates the series and pushes the
// timed samples in protocol pr, and returns the server's CPU ns per timed
// sample; it checks every sample was stored and stops the server.
func measureProtocol(b *testing.B, srv string, pr protocol, labels [][]*arguspb.Label) float64 {
	var s ingestServer
	if srv == "argus" {
		s = startArgus(b)
	} else {
		p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{NoSelfScrape: true, Flags: []string{
			"--web.enable-remote-write-receiver", "--web.enable-otlp-receiver",
			"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
			"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
		}})
		s = ingestServer{pid: p.PID(), header: http.Header{},
			query: func(b *testing.B, params url.Values) (int, []byte) { return p.Query(b, "/api/v1/query", params) },
			flush: func(*testing.B) {}, stop: func(b *testing.B) { p.Stop(b) }, pushURL: p.URL()}
	}
	base := strings.TrimSuffix(s.pushURL, "/api/v1/push")
	target := base + pr.path[srv]
	header := s.header.Clone()
	header.Set("Content-Type", pr.contentType)
	if pr.encoding != "" {
		header.Set("Content-Encoding", pr.encoding)
	}
	client := newClient(ingestPushers)
	defer client.CloseIdleConnections()
	n := len(labels)
	const samples = minSamples
	startMs := time.Now().Truncate(time.Minute).UnixMilli() - int64(samples+2)*stepMs
	create := &workload{series: n, perRequest: 1, seriesPerRequest: requestSamples, samples: 1, startMs: startMs, labels: labels}
	timed := &workload{series: n, perRequest: 1, seriesPerRequest: requestSamples, samples: samples, startMs: startMs + stepMs, labels: labels}
	ctx := context.Background()
	require.NoError(b, pushEncoded(ctx, client, target, header, create, pr.encode), "%s %s: creating the series", srv, pr.name)

	cpu0, err := cpuOf(s.pid)
	require.NoError(b, err)
	t0 := time.Now()
	require.NoError(b, pushEncoded(ctx, client, target, header, timed, pr.encode), "%s %s: timed pushes", srv, pr.name)
	wall := time.Since(t0)
	time.Sleep(settle)
	cpu1, err := cpuOf(s.pid)
	require.NoError(b, err)
	total := n * samples
	cpuNs := float64(cpu1-cpu0) / float64(total)
	b.Logf("%s %s, %d series x %d samples: %.0f ns CPU/sample (%v CPU), %.0f samples/s (%v wall)",
		srv, pr.name, n, samples, cpuNs, cpu1-cpu0, float64(total)/wall.Seconds(), wall.Round(time.Millisecond))

	endMs := timed.startMs + int64(samples-1)*stepMs
	stored := 0
	for _, metric := range metricNames {
		stored += countSamples(b, s, srv, fmt.Sprintf("%s[%dms]", metric, endMs-startMs+1), endMs)
	}
	require.Equal(b, n*(samples+1), stored, "%s %s: every sample stored", srv, pr.name)
	s.stop(b)
	return cpuNs
}

// pushEncoded is pushAll with the requests encoded by encode.
func pushEncoded(ctx context.Context, client *http.Client, target string, header http.Header, w *workload, encode func(*workload, int) ([]byte, error)) error {
	perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
	for first := 0; first < w.requests(); first += perRound {
		var next atomic.Int64
		next.Store(int64(first))
		errs := make(chan error, ingestPushers)
		var wg sync.WaitGroup
		for range ingestPushers {
			wg.Go(func() {
				for {
					k := int(next.Add(1)) - 1
					if k >= first+perRound || ctx.Err() != nil {
						return
					}
					body, err := encode(w, k)
					if err == nil {
						err = post(ctx, client, target, header, body)
					}
					if err != nil {
						errs <- fmt.Errorf("request %d: %w", k, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func post(ctx context.Context, client *http.Client, target string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if ps := pmetricotlp.NewExportResponse(); resp.Header.Get("Content-Type") == "application/x-protobuf" && ps.UnmarshalProto(msg) == nil && ps.PartialSuccess().ErrorMessage() != "" {
		return fmt.Errorf("partial success: %s", ps.PartialSuccess().ErrorMessage())
	}
	return nil
}

// requestSeries returns the series and first sample of request k of w, as
// request does.
func (w *workload) requestSeries(k int) (lo, hi, first int) {
	perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
	round, chunk := k/perRound, k%perRound
	return chunk * w.seriesPerRequest, min((chunk+1)*w.seriesPerRequest, w.series), round * w.perRequest
}

func encodeRW1(w *workload, k int) ([]byte, error) {
	return w.request(k, &arguspb.WriteRequest{})
}

// encodeRW2 encodes request k of w as Prometheus's remote write 2.0 sender
// does: one symbol table for the request.
func encodeRW2(w *workload, k int) ([]byte, error) {
	lo, hi, first := w.requestSeries(k)
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, hi-lo)}
	for i := lo; i < hi; i++ {
		ts := writev2.TimeSeries{Samples: make([]writev2.Sample, w.perRequest)}
		for _, l := range w.labels[i] {
			ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for j := range ts.Samples {
			n := first + j
			ts.Samples[j] = writev2.Sample{Timestamp: w.startMs + int64(n)*stepMs, Value: sampleValue(i, n)}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// encodeOTLP encodes request k of w as an OTLP export of gauges, one metric
// per name with one data point per series, the other labels as attributes,
// as an OpenTelemetry SDK or collector groups them.
func encodeOTLP(w *workload, k int) ([]byte, error) {
	lo, hi, first := w.requestSeries(k)
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	byName := map[string]pmetric.NumberDataPointSlice{}
	for i := lo; i < hi; i++ {
		ls := w.labels[i]
		dps, ok := byName[ls[0].Value]
		if !ok {
			m := ms.AppendEmpty()
			m.SetName(ls[0].Value)
			dps = m.SetEmptyGauge().DataPoints()
			byName[ls[0].Value] = dps
		}
		for j := range w.perRequest {
			n := first + j
			dp := dps.AppendEmpty()
			for _, l := range ls[1:] {
				dp.Attributes().PutStr(l.Name, l.Value)
			}
			dp.SetTimestamp(pcommon.Timestamp((w.startMs + int64(n)*stepMs) * int64(time.Millisecond)))
			dp.SetDoubleValue(sampleValue(i, n))
		}
	}
	return pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
}
