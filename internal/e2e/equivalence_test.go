package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestPrometheusEquivalence runs the real Prometheus 3.16, scraping itself
// and argus every second and remote-writing everything it appends to argus
// as tenant team-a, and then asks both the same PromQL questions about the
// same stored samples.
//
//	            scrape 1s                     remote write (X-Scope-OrgID: team-a)
//	prometheus ──────────▶ itself, argus   prometheus ─────────────────────────────▶ argus
//	     ▲                                                                             ▲
//	     └──────── same query, same time ──── test ──── same query, same time ────────┘
//
// Remote write tails the WAL from shortly after startup, so only samples from
// w0 = ready+20s on are compared. First the raw samples of every series in
// (w0, T] must be identical (polled until remote write has caught up); then
// each query is evaluated at T and over [e0, T] with two steps, where
// e0 = w0+60s leaves room for the longest look-back of the queries (a 40s
// subquery of a 10s rate).
func TestPrometheusEquivalence(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t) // skip (or fail under CI) before starting anything
	t.Parallel()
	const tenant = "team-a"
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": a.HostPort()},
		RemoteWrite:    &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant},
	})

	w := clustertest.NewEquivalenceWindow(t, p, 20*time.Second, 60*time.Second, 40*time.Second)

	// Fail fast if remote write does not reach argus at all.
	clustertest.Eventually(t, func() string {
		code, body := a.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {`up`}})
		data, _ := apiData(t, code, body).(map[string]any)
		if result, _ := data["result"].([]any); len(result) != 2 {
			return fmt.Sprintf("argus does not have the up series of both jobs yet: %s", body)
		}
		return ""
	}, 60*time.Second)

	w.SleepPastEnd()

	at := clustertest.RequireRawEqual(t, p, a, tenant, w.W0, w.End)

	// The result order is compared as is only for Ordered queries; an
	// Empty query's reference answer is empty, every other one must have a
	// result (see clustertest.EquivalenceQuery).
	for _, qc := range equivalenceQueries {
		t.Run(qc.Q, func(t *testing.T) {
			d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query", url.Values{"query": {qc.Q}, "time": {at}}, !qc.Ordered)
			if d != "" {
				t.Errorf("instant query at %s (-prometheus +argus):\n%s", at, d)
			}
			require.Equal(t, qc.Empty, n == 0, "prometheus's answer has %d results", n)
			for _, step := range []string{"5s", "7s"} {
				params := url.Values{"query": {qc.Q}, "start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {step}}
				// Range results are sorted by the engine on both sides.
				d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
				if d != "" {
					t.Errorf("range query step %s (-prometheus +argus):\n%s", step, d)
				}
				require.Equal(t, qc.Empty, n == 0, "prometheus's answer has %d results", n)
			}
		})
	}

	rng := url.Values{"start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}}
	with := func(kv ...string) url.Values {
		v := url.Values{"start": rng["start"], "end": rng["end"]}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	metadataQueries := []struct {
		name   string
		path   string
		params url.Values
	}{
		{"series up", "/series", with("match[]", "up")},
		{"series of http metrics", "/series", with("match[]", `{job="prometheus",__name__=~"prometheus_http_.*"}`)},
		{"series of two selectors", "/series", with("match[]", `scrape_series_added`, "match[]", `up{job="argus"}`)},
		{"label names of up", "/labels", with("match[]", "up")},
		// Label names and values are restricted to series that exist from
		// the start (Go runtime and process metrics): Prometheus's head
		// answers them from its index without looking at sample times, so
		// a series born after the window (argus creates some on its first
		// query of a kind) would be in Prometheus's answer and rightly not
		// in one that honours start and end.
		{"label names of the argus job", "/labels", with("match[]", `{job="argus",__name__=~"go_.+|process_.+"}`)},
		{"job values", "/label/job/values", with("match[]", "up")},
		{"metric names of the argus job", "/label/__name__/values", with("match[]", `{job="argus",__name__=~"go_.+|process_.+"}`)},
	}
	for _, mq := range metadataQueries {
		t.Run(mq.name, func(t *testing.T) {
			// The order of /series is not promised (see above); label names
			// and values are sorted by the API.
			d, n := clustertest.DiffAnswers(t, p, a, tenant, mq.path, mq.params, true)
			if d != "" {
				t.Errorf("GET %s?%s (-prometheus +argus):\n%s", mq.path, mq.params.Encode(), d)
			}
			require.Positive(t, n, "prometheus's answer is empty")
		})
	}

	t.Run("POST query", func(t *testing.T) {
		form := url.Values{"query": {`sum by (job) (rate(scrape_samples_scraped[20s]))`}, "start": rng["start"], "end": {at}, "step": {"5s"}}
		pc, pb := p.QueryPost(t, "/api/v1/query_range", form)
		ac, ab := a.QueryPost(t, tenant, clustertest.PromAPI+"/query_range", form)
		d, n := clustertest.DiffBodies(t, pc, pb, ac, ab, false)
		if d != "" {
			t.Errorf("POST query_range (-prometheus +argus):\n%s", d)
		}
		require.Positive(t, n, "prometheus's answer is empty")
	})
}

// equivalenceQueries are the PromQL queries of the equivalence tests (this
// one, and the gRPC query API's in grpcquery_test.go).
var equivalenceQueries = []clustertest.EquivalenceQuery{
	{Q: `rate(prometheus_http_requests_total[30s])`},
	{Q: `sum by (job) (rate(scrape_samples_scraped[20s]))`},
	{Q: `histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[30s])))`},
	// Three series with distinct values (head series > samples of
	// either scrape), so that topk has no ties to break.
	{Q: `topk(3, {__name__=~"scrape_samples_scraped|prometheus_tsdb_head_series"})`, Ordered: true},
	{Q: `absent(nonexistent_metric)`},
	{Q: `absent(up)`, Empty: true},
	{Q: `up offset 30s`},
	{Q: `max_over_time(rate(prometheus_http_requests_total[10s])[40s:5s])`},
	{Q: `label_replace(up, "foo", "$1", "job", "(.*)")`},
	{Q: `count_values("v", up)`},
	{Q: `count by (__name__) ({job="prometheus"})`},
	{Q: `sum(count_over_time(scrape_duration_seconds[30s]))`},
	{Q: `scrape_duration_seconds * on (job, instance) group_left () up`},
	{Q: `timestamp(up)`},
	{Q: `deriv(process_resident_memory_bytes[40s])`},
	{Q: `quantile_over_time(0.5, scrape_duration_seconds[30s])`},
	{Q: `vector(time()) - on () group_right () timestamp(up)`},
	{Q: `{job="argus"}`},
}
