package e2e

import (
	"cmp"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// exmetaExporter is a test exporter built with client_golang, served as
// OpenMetrics: a counter and a classic histogram that carry exemplars, a
// gauge with a unit, and the Go and process collectors (many families with
// real help texts).
type exmetaExporter struct {
	srv      *httptest.Server
	requests prometheus.Counter
	latency  prometheus.Histogram
}

func startExmetaExporter(t *testing.T) *exmetaExporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &exmetaExporter{
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: "exmeta_requests_total", Help: "Requests served, with a trace exemplar."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "exmeta_latency_seconds", Help: "Request latency.",
			Unit: "seconds", Buckets: []float64{0.1, 0.5, 1, 5}}),
	}
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "exmeta_temperature_celsius", Help: "Room temperature.", Unit: "celsius"})
	temp.Set(21.5)
	reg.MustRegister(e.requests, e.latency, temp, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(e.srv.Close)
	return e
}

// observe records one request of round k, with its trace exemplars.
func (e *exmetaExporter) observe(k int) {
	e.requests.(prometheus.ExemplarAdder).AddWithExemplar(1, prometheus.Labels{"trace_id": fmt.Sprintf("req-%d", k)})
	v := []float64{0.05, 0.3, 0.7, 3, 9}[k%5]
	e.latency.(prometheus.ExemplarObserver).ObserveWithExemplar(v, prometheus.Labels{"trace_id": fmt.Sprintf("lat-%d", k), "span": "s"})
}

func (e *exmetaExporter) hostPort() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// exmetaAnswers are the query_exemplars and metadata answers of one server,
// decoded, metadata entries of each family sorted (Prometheus lists them in
// map order).
type exmetaAnswers struct {
	exemplars, exemplarsOne, metadata, metadataOne, metadataPerMetric any
}

func getExmeta(t testing.TB, get func(path string, params url.Values) (int, []byte), start time.Time) exmetaAnswers {
	t.Helper()
	ex := func(q string) any {
		code, body := get("/query_exemplars", url.Values{"query": {q},
			"start": {clustertest.FormatAPITime(start.UnixMilli())}, "end": {clustertest.FormatAPITime(time.Now().Add(time.Minute).UnixMilli())}})
		return apiData(t, code, body)
	}
	md := func(params url.Values) any {
		code, body := get("/metadata", params)
		data := apiData(t, code, body)
		for _, entries := range data.(map[string]any) {
			es := entries.([]any)
			slices.SortFunc(es, func(a, b any) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		}
		return data
	}
	return exmetaAnswers{
		exemplars:         ex(`{__name__=~"exmeta_.+"}`),
		exemplarsOne:      ex(`rate(exmeta_requests_total[5m]) > 0 or exmeta_latency_seconds_bucket{le="0.5"}`),
		metadata:          md(nil),
		metadataOne:       md(url.Values{"metric": {"exmeta_latency_seconds"}}),
		metadataPerMetric: md(url.Values{"limit_per_metric": {"1"}}),
	}
}

func diffExmeta(want, got exmetaAnswers) string {
	return gocmp.Diff(want, got, gocmp.AllowUnexported(exmetaAnswers{}))
}

// TestExemplarsAndMetadataAgainstPrometheus has the real Prometheus 3.16
// scrape a client_golang exporter (OpenMetrics, exemplars on a counter and
// a histogram, HELP/TYPE/UNIT), keep the exemplars
// (--enable-feature=exemplar-storage) and remote-write them and the
// metadata to Argus; query_exemplars and metadata must then answer exactly
// the same on both, and on Argus again after Prometheus is stopped and
// Argus is killed with SIGKILL and restarted (from its WAL alone).
//
//	exporter ◀── scrape 1s ── prometheus ── remote write (send_exemplars, metadata every 1s) ──▶ argus
func TestExemplarsAndMetadataAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t) // skip (or fail under CI) before starting anything
	t.Parallel()
	const tenant = "team-ex"
	start := time.Now().Add(-time.Minute)
	exp := startExmetaExporter(t)
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"exmeta": exp.hostPort()},
		NoSelfScrape:   true,
		RemoteWrite:    &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant, SendExemplars: true, MetadataSendInterval: time.Second},
		Flags:          []string{"--enable-feature=exemplar-storage"},
	})
	// Exemplars over a few scrapes: some are scraped, some overwritten
	// before a scrape; both servers see the same scrapes.
	for k := range 8 {
		exp.observe(k)
		time.Sleep(600 * time.Millisecond) // Paced to spread exemplars over scrapes: a wall-clock schedule, nothing to poll.
	}
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	argusGet := func(path string, params url.Values) (int, []byte) {
		return a.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	// Wait for Prometheus to have scraped the last round, then for Argus to
	// have every exemplar and entry it has.
	var want exmetaAnswers
	clustertest.Eventually(t, func() string {
		want = getExmeta(t, promGet, start)
		if !strings.Contains(fmt.Sprint(want.exemplars), "req-7") {
			return "prometheus has not scraped the last exemplar yet"
		}
		return diffExmeta(want, getExmeta(t, argusGet, start))
	}, 60*time.Second)
	exemplars := want.exemplars.([]any)
	require.Len(t, exemplars, 6, "the counter and the five histogram buckets with exemplars: %v", exemplars)
	require.Contains(t, fmt.Sprint(want.metadata), "exmeta_latency_seconds:[map[help:Request latency. type:histogram unit:seconds]]")
	require.Contains(t, fmt.Sprint(want.metadata), "exmeta_temperature_celsius:[map[help:Room temperature. type:gauge unit:celsius]]")
	require.Contains(t, fmt.Sprint(want.metadata), "go_goroutines:")
	t.Logf("equal on both: %d series with exemplars, %d metric families", len(exemplars), len(want.metadata.(map[string]any)))

	// Durability: nothing is resent once Prometheus is gone.
	p.Stop(t)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, diffExmeta(want, getExmeta(t, argusGet, start)), "after kill -9 and restart")
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/metadata", url.Values{"limit": {"x"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.JSONEq(t, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`, string(body))
}
