package clustere2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestPrometheusEquivalence runs the real Prometheus, scraping itself and a
// distributor every second and remote-writing everything it appends to the
// other distributor of a cluster of 3 ingesters (RF=3), 2 distributors and 1
// querier, and asks Prometheus and the querier the same PromQL questions: the
// answers must be identical. It is a subset of internal/e2e's all-in-one
// equivalence table, with look-backs of at most 30s so that a minute of data
// suffices.
//
//	prometheus ──scrape 1s──▶ itself, dist-1
//	prometheus ──remote write (team-a)──▶ dist-0 ──▶ ing-0, ing-1, ing-2 ◀── querier-0
//	test: same query, same time ──▶ prometheus and querier-0
func TestPrometheusEquivalence(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t) // skip (or fail under CI) before starting anything
	const tenant = "team-a"
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 2, Queriers: 1, RF: 3})
	q := c.Querier(0)
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": c.Distributor(1).HostPort()},
		RemoteWrite:    &clustertest.RemoteWrite{URL: c.Distributor(0).PushURL(), Tenant: tenant},
	})

	// The longest look-back is a 20s subquery of a 10s rate.
	w := clustertest.NewEquivalenceWindow(t, p, 15*time.Second, 30*time.Second, 20*time.Second)

	clustertest.Eventually(t, func() string {
		code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {`count(up)`}})
		if code != 200 || !containsResult(t, code, body) {
			return fmt.Sprintf("the querier does not have the up series yet: %d %s", code, body)
		}
		return ""
	}, 60*time.Second)
	w.SleepPastEnd()

	at := clustertest.RequireRawEqual(t, p, q.Process, tenant, w.W0, w.End)

	for _, qc := range equivalenceQueries {
		t.Run(qc.Q, func(t *testing.T) {
			d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, "/query", url.Values{"query": {qc.Q}, "time": {at}}, !qc.Ordered)
			require.Empty(t, d, "instant query at %s (-prometheus +argus)", at)
			require.Equal(t, qc.Empty, n == 0, "prometheus's answer has %d results", n)
			params := url.Values{"query": {qc.Q}, "start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5s"}}
			d, n = clustertest.DiffAnswers(t, p, q.Process, tenant, "/query_range", params, false)
			require.Empty(t, d, "range query (-prometheus +argus)")
			require.Equal(t, qc.Empty, n == 0, "prometheus's answer has %d results", n)
		})
	}
	t.Run("series", func(t *testing.T) {
		params := url.Values{"match[]": {`up`, `{job="prometheus",__name__=~"prometheus_http_.*"}`},
			"start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}}
		d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, "/series", params, true)
		require.Empty(t, d, "/series (-prometheus +argus)")
		require.Positive(t, n)
	})
}

// equivalenceQueries is a subset of internal/e2e's all-in-one table with
// look-backs of at most 30s.
var equivalenceQueries = []clustertest.EquivalenceQuery{
	{Q: `rate(prometheus_http_requests_total[20s])`},
	{Q: `sum by (job) (rate(scrape_samples_scraped[20s]))`},
	{Q: `histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[20s])))`},
	{Q: `topk(3, {__name__=~"scrape_samples_scraped|prometheus_tsdb_head_series"})`, Ordered: true},
	{Q: `absent(nonexistent_metric)`},
	{Q: `absent(up)`, Empty: true},
	{Q: `up offset 20s`},
	{Q: `max_over_time(rate(prometheus_http_requests_total[10s])[20s:5s])`},
	{Q: `count by (__name__) ({job="prometheus"})`},
	{Q: `sum(count_over_time(scrape_duration_seconds[20s]))`},
	{Q: `scrape_duration_seconds * on (job, instance) group_left () up`},
	{Q: `timestamp(up)`},
	{Q: `{job="argus"}`},
}

// containsResult reports whether a query answer has at least one result.
func containsResult(t testing.TB, code int, body []byte) bool {
	t.Helper()
	a, _ := clustertest.DecodeAnswer(t, code, body, false)
	return clustertest.ResultCount(a.Data) > 0
}
