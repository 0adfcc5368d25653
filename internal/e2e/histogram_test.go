package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// histExporter is a test exporter built with client_golang: a native
// (exponential) histogram with negative, zero and positive observations,
// and a classic histogram, observed from a seeded generator every 20ms
// until stop is called.
type histExporter struct {
	srv  *httptest.Server
	stop func()
}

func startHistExporter(t *testing.T) *histExporter {
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
	e := &histExporter{srv: srv, stop: func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			srv.Close()
		})
	}}
	t.Cleanup(e.stop)
	return e
}

// histQueries are the PromQL queries over native histograms (exponential,
// custom buckets converted from the classic histogram, and float ones from
// a recording rule) and the classic histogram that
// TestNativeHistogramsAgainstPrometheus compares.
var histQueries = []string{
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

// histRules makes float histograms: Prometheus writes the output of a
// recording rule over an integer histogram as float histogram samples.
const histRules = `groups:
  - name: hist
    rules:
      - record: job:argus_test_native_seconds:rate10s
        expr: sum by (job) (rate(argus_test_native_seconds[10s]))
`

// TestNativeHistogramsAgainstPrometheus runs the real Prometheus 3.16
// scraping a client_golang exporter over protobuf with native histograms on
// and remote-writing everything, histograms included, to argus over remote
// write 2.0. The job nhcb scrapes the same exporter with its classic
// histograms converted to custom buckets (schema -53), which Prometheus
// 3.16 sends over remote write 2.0 only.
// The same PromQL queries over the histograms answer the same from
// Prometheus's TSDB and from argus: from argus's head, then from its
// persisted chunks once Prometheus stopped and every chunk was flushed, and
// after kill -9 and a restart.
func TestNativeHistogramsAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "hist"
	exp := startHistExporter(t)
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=200ms", "-ingester.max-chunk-idle=2s",
	}})
	target := strings.TrimPrefix(exp.srv.URL, "http://")
	native := "    scrape_native_histograms: true\n    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		NoSelfScrape:   true,
		ScrapeTargets:  map[string]string{"native": target, "nhcb": target},
		JobConfig:      map[string]string{"native": native, "nhcb": native + "    convert_classic_histograms_to_nhcb: true\n"},
		Rules:          histRules,
		RemoteWrite: &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant, SendNativeHistograms: true,
			ProtobufMessage: "io.prometheus.write.v2.Request"},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 15*time.Second, 40*time.Second, 20*time.Second)
	w.SleepPastEnd()
	at := clustertest.FormatAPITime(w.End.UnixMilli())

	// Every raw sample in the window, once remote write caught up.
	raw := url.Values{"query": {fmt.Sprintf(`{__name__=~"argus_test_.+|job:.+"}[%ds]`, int(w.End.Sub(w.W0).Seconds()))}, "time": {at}}
	clustertest.Eventually(t, func() string {
		d, _ := clustertest.DiffAnswers(t, p, a, tenant, "/query", raw, true)
		return d
	}, 60*time.Second)

	// The reference answers, kept to compare with after Prometheus stops.
	type answer struct {
		path   string
		params url.Values
		code   int
		body   []byte
	}
	var answers []answer
	for _, q := range append(histQueries, raw.Get("query")) {
		answers = append(answers, answer{path: "/query", params: url.Values{"query": {q}, "time": {at}}})
		if !strings.HasSuffix(q, "s]") { // Range vectors have no range query.
			answers = append(answers, answer{path: "/query_range", params: url.Values{"query": {q},
				"start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5s"}}})
		}
	}
	histograms := 0
	for i := range answers {
		an := &answers[i]
		an.code, an.body = p.Query(t, "/api/v1"+an.path, an.params)
		require.Equal(t, http.StatusOK, an.code, "%s", an.body)
		require.Positive(t, clustertest.ResultCount(apiData(t, an.code, an.body)), "prometheus's answer to %s is empty", an.params.Get("query"))
		histograms += strings.Count(string(an.body), `"buckets"`) // One per histogram sample.
	}
	require.Greater(t, histograms, 200, "the answers hold histogram samples")
	compare := func(when string) {
		t.Helper()
		for _, an := range answers {
			ac, ab := a.Query(t, tenant, clustertest.PromAPI+an.path, an.params)
			if d, _ := clustertest.DiffBodies(t, an.code, an.body, ac, ab, an.path == "/query"); d != "" {
				t.Errorf("%s: %s %s (-prometheus +argus):\n%s", when, an.path, an.params.Get("query"), d)
			}
		}
	}
	compare("from the head")

	// Stop the scrapes: every open chunk goes idle, is cut and persisted.
	p.Stop(t)
	exp.stop()
	waitAllPersisted(t, a, tenant)
	compare("from persisted chunks")

	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 and restart")
}

// waitAllPersisted waits until tenant has no chunk left in a's memory (the
// open ones cut as idle, all flushed), with -ingester.max-chunk-idle short.
func waitAllPersisted(t *testing.T, a *clustertest.Process, tenant string) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		code, body := a.Query(t, tenant, clustertest.PromAPI+"/status/tsdb", nil)
		var st struct {
			Data struct {
				HeadStats struct {
					ChunkCount int64 `json:"chunkCount"`
				} `json:"headStats"`
			} `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
			return fmt.Sprintf("status %d: %s", code, body)
		}
		if n := st.Data.HeadStats.ChunkCount; n > 0 {
			return fmt.Sprintf("%d chunks still in memory", n)
		}
		return ""
	}, 60*time.Second)
	require.Positive(t, a.Metric(t, "argus_ingester_chunks_persisted_total", nil))
}
