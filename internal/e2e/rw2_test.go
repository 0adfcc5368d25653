package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// newFloatExporter serves a client_golang registry whose metrics change on
// every scrape: counters, a gauge, a classic histogram and a summary, with
// UTF-8 label values, and the Go and process collectors. It returns its
// host:port.
func newFloatExporter(t testing.TB) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "Requests, by route."}, []string{"route", "code"})
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_temperature_celsius", Help: "A gauge."})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_latency_seconds", Help: "A classic histogram.", Buckets: []float64{0.01, 0.1, 1, 10}}, []string{"route"})
	sz := prometheus.NewSummary(prometheus.SummaryOpts{Name: "test_size_bytes", Help: "A summary.", Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01}})
	reg.MustRegister(reqs, temp, lat, sz, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	scrapes := 0
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes++ // Scrapes are serial: one target, one scraper.
		for i, route := range []string{"/", "/api/ü", "/x y"} {
			reqs.WithLabelValues(route, "200").Add(float64(1 + i*scrapes%7))
			lat.WithLabelValues(route).Observe(float64(scrapes%13) * 0.037 * float64(i+1))
		}
		reqs.WithLabelValues("/", "500").Inc()
		temp.Set(20 + float64(scrapes%10)/4)
		sz.Observe(float64(scrapes * 100 % 977))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestRemoteWrite2AgainstPrometheus runs the real Prometheus 3.16 scraping a
// client_golang exporter every second and remote-writing every sample twice
// to one argus: in remote write 2.0 as tenant rw2, and in remote write 1.0
// as tenant rw1.
//
//	                                   ┌── RW 2.0, X-Scope-OrgID: rw2 ──▶┐
//	exporter ◀── scrape 1s ── prometheus                                  argus
//	                                   └── RW 1.0, X-Scope-OrgID: rw1 ──▶┘
//
// The raw samples of both tenants equal Prometheus's own, and the same
// queries answer the same on the three. Prometheus counts what a 2.0
// receiver did not store from its written headers
// (prometheus_remote_storage_*_failed_total): none, with every sample sent.
func TestRemoteWrite2AgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"exporter": newFloatExporter(t)},
		NoSelfScrape:   true,
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: a.PushURL(), Tenant: "rw2", Name: "rw2", ProtobufMessage: "io.prometheus.write.v2.Request"},
			{URL: a.PushURL(), Tenant: "rw1", Name: "rw1"},
		},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 15*time.Second, 30*time.Second, 20*time.Second)
	w.SleepPastEnd()

	at := clustertest.FormatAPITime(w.End.UnixMilli())
	raw := url.Values{"query": {fmt.Sprintf(`{__name__=~".+"}[%ds]`, int(w.End.Sub(w.W0).Seconds()))}, "time": {at}}
	for _, tenant := range []string{"rw2", "rw1"} {
		var series, samples int
		clustertest.Eventually(t, func() string {
			var d string
			d, series, samples = clustertest.DiffRaw(t, p, a, tenant, raw)
			return d
		}, 60*time.Second)
		t.Logf("tenant %s: raw samples identical to Prometheus's: %d series, %d samples", tenant, series, samples)
		require.Greater(t, series, 50)
		require.Greater(t, samples, series*int(w.End.Sub(w.W0).Seconds())*8/10)
	}

	queries := []string{
		`rate(test_requests_total[10s])`,
		`sum by (route) (rate(test_requests_total{code="200"}[15s]))`,
		`histogram_quantile(0.9, sum by (le, route) (rate(test_latency_seconds_bucket[20s])))`,
		`test_size_bytes{quantile="0.5"}`,
		`avg_over_time(test_temperature_celsius[20s])`,
		`count by (__name__) ({job="exporter"})`,
	}
	for _, q := range queries {
		for _, tenant := range []string{"rw2", "rw1"} {
			params := url.Values{"query": {q}, "start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5s"}}
			d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
			require.Empty(t, d, "tenant %s, %s (-prometheus +argus)", tenant, q)
			require.Positive(t, n, q)
		}
	}

	// The written headers told the truth: Prometheus saw every sample of
	// the 2.0 queue stored.
	rw2 := map[string]string{"remote_name": "rw2"}
	require.Positive(t, p.Metric(t, "prometheus_remote_storage_samples_total", rw2))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", rw2))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_histograms_failed_total", rw2))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "rw1"}))
}

// rw2BadReference returns a TestErrorContract request: a remote-write 2.0
// push to p for tenant of one series whose job value refers past the
// symbol table.
func rw2BadReference(p *clustertest.Process, tenant string, ms int64) func(*testing.T) (int, string, http.Header) {
	return func(t *testing.T) (int, string, http.Header) {
		req := &writev2.Request{
			Symbols:    []string{"", "__name__", "up", "job"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 9}, Samples: []writev2.Sample{{Value: 1, Timestamp: ms}}}},
		}
		b, err := req.Marshal()
		require.NoError(t, err)
		return send(t, p, http.MethodPost, "/api/v1/push", tenant, map[string]string{
			"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request", "X-Prometheus-Remote-Write-Version": "2.0.0",
		}, snappy.Encode(nil, b))
	}
}
