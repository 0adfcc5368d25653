package clustertest

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
)

// ExmetaExporter is a test exporter built with client_golang, served as
// OpenMetrics: a counter and a classic histogram that carry exemplars, a
// gauge with a unit, and the Go and process collectors (many families with
// real help texts), for the exemplar and metadata tests.
type ExmetaExporter struct {
	srv      *httptest.Server
	requests prometheus.Counter
	latency  prometheus.Histogram
}

// StartExmetaExporter serves a new ExmetaExporter as OpenMetrics until the
// test ends.
func StartExmetaExporter(t testing.TB) *ExmetaExporter {
	t.Helper()
	return StartExmetaExporterFormat(t, OpenMetrics)
}

// ExpositionFormat is the format an ExmetaExporter serves.
type ExpositionFormat int

const (
	// OpenMetrics serves OpenMetrics (when the scraper asks for it):
	// exemplars, units, and counters named as their family (without _total).
	OpenMetrics ExpositionFormat = iota
	// TextFormat serves only the Prometheus text format, client_golang's
	// default: no exemplars or units, counters named with _total.
	TextFormat
)

// StartExmetaExporterFormat serves a new ExmetaExporter in format until the
// test ends. Besides the counter, histogram and gauge it exposes a summary
// (exmeta_rpc_seconds) and a counter vector (exmeta_errors_total).
func StartExmetaExporterFormat(t testing.TB, format ExpositionFormat) *ExmetaExporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &ExmetaExporter{
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: "exmeta_requests_total", Help: "Requests served, with a trace exemplar."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "exmeta_latency_seconds", Help: "Request latency.",
			Unit: "seconds", Buckets: []float64{0.1, 0.5, 1, 5}}),
	}
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "exmeta_temperature_celsius", Help: "Room temperature.", Unit: "celsius"})
	temp.Set(21.5)
	rpc := prometheus.NewSummary(prometheus.SummaryOpts{Name: "exmeta_rpc_seconds", Help: "RPC latency.", Unit: "seconds",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01}})
	rpc.Observe(0.25)
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "exmeta_errors_total", Help: "Errors by code."}, []string{"code"})
	errs.WithLabelValues("500").Add(2)
	errs.WithLabelValues("503").Inc()
	reg.MustRegister(e.requests, e.latency, temp, rpc, errs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: format == OpenMetrics}))
	t.Cleanup(e.srv.Close)
	return e
}

// Observe records request k: the counter and the histogram each get an
// exemplar naming k (trace_id req-k and lat-k).
func (e *ExmetaExporter) Observe(k int) {
	e.requests.(prometheus.ExemplarAdder).AddWithExemplar(1, prometheus.Labels{"trace_id": fmt.Sprintf("req-%d", k)})
	v := []float64{0.05, 0.3, 0.7, 3, 9}[k%5]
	e.latency.(prometheus.ExemplarObserver).ObserveWithExemplar(v, prometheus.Labels{"trace_id": fmt.Sprintf("lat-%d", k), "span": "s"})
}

// HostPort is the scrape target of the exporter.
func (e *ExmetaExporter) HostPort() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// ExmetaAnswers are one server's answers to the same query_exemplars and
// metadata requests, decoded with exact numbers; the entries of each
// metadata family are sorted, as Prometheus lists them in map order.
type ExmetaAnswers struct {
	Exemplars, ExemplarsOne, Metadata, MetadataOne, MetadataPerMetric any
}

// GetExmeta asks get (a server's API below /api/v1) for exemplars since
// start and for metadata.
func GetExmeta(t testing.TB, get func(path string, params url.Values) (int, []byte), start time.Time) ExmetaAnswers {
	t.Helper()
	data := func(path string, params url.Values) any {
		code, body := get(path, params)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, Truncate(string(body), 2000))
		r := DecodeAPI(t, body)
		require.Equal(t, "success", r.Status, "%s: %s", path, Truncate(string(body), 2000))
		return DecodeJSON(t, r.Data)
	}
	ex := func(q string) any {
		return data("/query_exemplars", url.Values{"query": {q},
			"start": {FormatAPITime(start.UnixMilli())}, "end": {FormatAPITime(time.Now().Add(time.Minute).UnixMilli())}})
	}
	md := func(params url.Values) any { return GetMetadata(t, get, params) }
	return ExmetaAnswers{
		Exemplars:         ex(`{__name__=~"exmeta_.+"}`),
		ExemplarsOne:      ex(`rate(exmeta_requests_total[5m]) > 0 or exmeta_latency_seconds_bucket{le="0.5"}`),
		Metadata:          md(nil),
		MetadataOne:       md(url.Values{"metric": {"exmeta_latency_seconds"}}),
		MetadataPerMetric: md(url.Values{"limit_per_metric": {"1"}}),
	}
}

// GetMetadata asks get (a server's API below /api/v1) for /metadata with
// params and returns its data, each family's entries sorted (Prometheus
// lists them in map order).
func GetMetadata(t testing.TB, get func(path string, params url.Values) (int, []byte), params url.Values) map[string]any {
	t.Helper()
	code, body := get("/metadata", params)
	require.Equal(t, http.StatusOK, code, "/metadata: %s", Truncate(string(body), 2000))
	r := DecodeAPI(t, body)
	require.Equal(t, "success", r.Status, "/metadata: %s", Truncate(string(body), 2000))
	d, ok := DecodeJSON(t, r.Data).(map[string]any)
	require.True(t, ok, "/metadata: %s", Truncate(string(body), 2000))
	for _, entries := range d {
		slices.SortFunc(entries.([]any), func(a, b any) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	}
	return d
}

// DiffExmeta diffs two servers' answers (-want +got).
func DiffExmeta(want, got ExmetaAnswers) string { return gocmp.Diff(want, got) }

// RequireExmetaShape checks that answers hold what the exporter exposes:
// the counter's and the five buckets' exemplars, with the last request's,
// and the families' metadata.
func RequireExmetaShape(t testing.TB, a ExmetaAnswers, lastRequest int) {
	t.Helper()
	require.Len(t, a.Exemplars, 6, "the counter and the five histogram buckets with exemplars: %v", a.Exemplars)
	require.Len(t, a.ExemplarsOne, 2, "%v", a.ExemplarsOne)
	require.Contains(t, fmt.Sprint(a.Exemplars), fmt.Sprintf("req-%d", lastRequest))
	md := fmt.Sprint(a.Metadata)
	require.Contains(t, md, "exmeta_latency_seconds:[map[help:Request latency. type:histogram unit:seconds]]")
	require.Contains(t, md, "exmeta_temperature_celsius:[map[help:Room temperature. type:gauge unit:celsius]]")
	require.Contains(t, md, "exmeta_requests:[map[help:Requests served, with a trace exemplar. type:counter unit:]]")
	require.Contains(t, md, "go_goroutines:")
	require.Len(t, a.MetadataOne, 1)
}

// exmetaRounds is how many requests StartExmetaPrometheus has the exporter
// observe; AwaitExmeta waits for the last.
const exmetaRounds = 8

// StartExmetaPrometheus starts the real Prometheus scraping exp every
// second, keeping its exemplars (--enable-feature=exemplar-storage) and
// remote-writing them and the metadata (every second) to pushURL as
// tenant, then has exp observe exmetaRounds requests spread over scrapes.
func StartExmetaPrometheus(t testing.TB, exp *ExmetaExporter, pushURL, tenant string) *Prometheus {
	t.Helper()
	return StartExmetaPrometheusWith(t, exp, RemoteWrite{URL: pushURL, Tenant: tenant, SendExemplars: true, MetadataSendInterval: time.Second})
}

// StartExmetaPrometheusWith is StartExmetaPrometheus remote-writing to rw,
// with more Prometheus flags.
func StartExmetaPrometheusWith(t testing.TB, exp *ExmetaExporter, rw RemoteWrite, flags ...string) *Prometheus {
	t.Helper()
	p := StartPrometheus(t, PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"exmeta": exp.HostPort()},
		NoSelfScrape:   true,
		RemoteWrite:    &rw,
		Flags:          append([]string{"--enable-feature=exemplar-storage"}, flags...),
	})
	// Some exemplars are scraped, some overwritten before a scrape; Argus
	// and Prometheus see the same scrapes.
	for k := range exmetaRounds {
		exp.Observe(k)
		time.Sleep(600 * time.Millisecond) // Paced to spread exemplars over scrapes: a wall-clock schedule, nothing to poll.
	}
	return p
}

// AwaitExmeta waits for p to have scraped the last request of
// StartExmetaPrometheus, then for argusGet (Argus's API below /api/v1) to
// answer exactly as p does for exemplars since start and metadata, and
// returns p's answers, checked by RequireExmetaShape.
func AwaitExmeta(t testing.TB, p *Prometheus, argusGet func(path string, params url.Values) (int, []byte), start time.Time) ExmetaAnswers {
	t.Helper()
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	last := fmt.Sprintf("req-%d", exmetaRounds-1)
	var want ExmetaAnswers
	Eventually(t, func() string {
		want = GetExmeta(t, promGet, start)
		if !strings.Contains(fmt.Sprint(want.Exemplars), last) {
			return "prometheus has not scraped the last exemplar yet"
		}
		return DiffExmeta(want, GetExmeta(t, argusGet, start))
	}, 60*time.Second)
	RequireExmetaShape(t, want, exmetaRounds-1)
	return want
}
