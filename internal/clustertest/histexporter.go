package clustertest

import (
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The native histogram exporter and the Prometheus that scrapes it, shared
// by the e2e and clustere2e comparisons of scraped native histograms.

// HistExporter is a test exporter built with client_golang: a native
// (exponential) histogram with negative, zero and positive observations,
// and a classic histogram, observed from a seeded generator every 20ms
// until stop is called.
type HistExporter struct {
	srv  *httptest.Server
	stop func()
}

// HostPort is the exporter's scrape address.
func (e *HistExporter) HostPort() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// Stop stops the observations and the server; idempotent.
func (e *HistExporter) Stop() { e.stop() }

// StartHistExporter starts a HistExporter, stopped at the end of the test.
func StartHistExporter(t testing.TB) *HistExporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	native := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                        "argus_test_native_seconds",
		Help:                        "A native histogram of the test exporter.",
		NativeHistogramBucketFactor: 1.1,
	}, []string{"path"})
	classic := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "argus_test_classic_seconds",
		Help:    "A classic histogram of the test exporter.",
		Buckets: []float64{0.05, 0.1, 0.5, 1, 5},
	}, []string{"path"})
	reg.MustRegister(native, classic)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rnd := rand.New(rand.NewPCG(1, 2))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, path := range []string{"/a", "/b"} {
				v := rnd.ExpFloat64() / 4
				switch rnd.IntN(10) {
				case 0:
					v = 0 // The zero bucket.
				case 1:
					v = -v // Negative buckets.
				}
				native.WithLabelValues(path).Observe(v)
				classic.WithLabelValues(path).Observe(max(v, 0))
			}
		}
	})
	var once sync.Once
	e := &HistExporter{srv: srv, stop: func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			srv.Close()
		})
	}}
	t.Cleanup(e.stop)
	return e
}

// HistQueries are the PromQL queries over native histograms (exponential,
// custom buckets converted from the classic histogram, and float ones from
// a recording rule) and the classic histogram that
// the e2e and clustere2e TestNativeHistograms*AgainstPrometheus compare.
var HistQueries = []string{
	`argus_test_native_seconds`,
	`argus_test_native_seconds[15s]`,
	`histogram_quantile(0.9, rate(argus_test_native_seconds[30s]))`,
	`histogram_count(rate(argus_test_native_seconds[30s]))`,
	`histogram_sum(rate(argus_test_native_seconds[30s]))`,
	`histogram_avg(rate(argus_test_native_seconds[30s]))`,
	`histogram_fraction(0, 0.25, argus_test_native_seconds)`,
	`sum by (job) (rate(argus_test_native_seconds[30s]))`,
	`histogram_quantile(0.9, sum by (le) (rate(argus_test_classic_seconds_bucket{job="native"}[30s])))`,
	`job:argus_test_native_seconds:rate10s`,
	`job:argus_test_native_seconds:rate10s[15s]`,
	`histogram_quantile(0.99, job:argus_test_native_seconds:rate10s)`,
	`argus_test_classic_seconds{job="nhcb"}`,
	`argus_test_classic_seconds{job="nhcb"}[15s]`,
	`histogram_quantile(0.5, rate(argus_test_classic_seconds{job="nhcb"}[30s]))`,
}

// HistRules makes float histograms: Prometheus writes the output of a
// recording rule over an integer histogram as float histogram samples.
const HistRules = `groups:
  - name: hist
    rules:
      - record: job:argus_test_native_seconds:rate10s
        expr: sum by (job) (rate(argus_test_native_seconds[10s]))
`

// StartHistPrometheus starts the real Prometheus scraping exp every second
// over protobuf with native histograms on, as the job native and again as
// the job nhcb with its classic histograms converted to custom buckets,
// evaluating HistRules, and remote-writing everything, histograms
// included, to pushURL as tenant over remote write 2.0 (which Prometheus
// 3.16 needs for custom buckets).
func StartHistPrometheus(t testing.TB, exp *HistExporter, pushURL, tenant string) *Prometheus {
	t.Helper()
	native := "    scrape_native_histograms: true\n    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
	return StartPrometheus(t, PrometheusOptions{
		ScrapeInterval: time.Second,
		NoSelfScrape:   true,
		ScrapeTargets:  map[string]string{"native": exp.HostPort(), "nhcb": exp.HostPort()},
		JobConfig:      map[string]string{"native": native, "nhcb": native + "    convert_classic_histograms_to_nhcb: true\n"},
		Rules:          HistRules,
		RemoteWrite: &RemoteWrite{URL: pushURL, Tenant: tenant, SendNativeHistograms: true,
			ProtobufMessage: "io.prometheus.write.v2.Request"},
	})
}
