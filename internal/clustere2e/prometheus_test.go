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

	// Remote write tails the WAL from shortly after startup: compare raw
	// samples from w0 on, and queries over [e0, end], e0 leaving room for
	// the longest look-back (a 20s subquery of a 10s rate).
	w0 := p.ReadyAt.Add(15 * time.Second).Truncate(time.Second).Add(time.Second)
	e0 := w0.Add(30 * time.Second)
	end := e0.Add(20 * time.Second)
	t.Logf("prometheus ready at %s; comparing samples in (%s, %s], queries over [%s, %s]",
		p.ReadyAt.Format(time.TimeOnly), w0.Format(time.TimeOnly), end.Format(time.TimeOnly), e0.Format(time.TimeOnly), end.Format(time.TimeOnly))

	clustertest.Eventually(t, func() string {
		code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {`count(up)`}})
		if code != 200 || !containsResult(t, code, body) {
			return fmt.Sprintf("the querier does not have the up series yet: %d %s", code, body)
		}
		return ""
	}, 60*time.Second)
	// Samples accumulate in wall-clock time at the scrape interval: there is
	// nothing to poll until then. The margin lets the last scrapes before
	// end be appended and sent.
	time.Sleep(time.Until(end.Add(3 * time.Second)))

	at := clustertest.FormatAPITime(end.UnixMilli())
	window := end.Sub(w0)
	raw := fmt.Sprintf(`{__name__=~".+"}[%ds]`, int(window.Seconds()))
	var rawSeries, rawPoints int
	clustertest.Eventually(t, func() string {
		var d string
		d, rawSeries, rawPoints = clustertest.DiffRaw(t, p, q.Process, tenant, url.Values{"query": {raw}, "time": {at}})
		return d
	}, 60*time.Second)
	t.Logf("raw samples identical: %d series, %d samples", rawSeries, rawPoints)
	require.Greater(t, rawSeries, 200)
	require.Greater(t, rawPoints, rawSeries*int(window.Seconds())*8/10)

	for _, qc := range equivalenceQueries {
		t.Run(qc.q, func(t *testing.T) {
			d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, "/query", url.Values{"query": {qc.q}, "time": {at}}, !qc.ordered)
			require.Empty(t, d, "instant query at %s (-prometheus +argus)", at)
			require.Equal(t, qc.empty, n == 0, "prometheus's answer has %d results", n)
			params := url.Values{"query": {qc.q}, "start": {clustertest.FormatAPITime(e0.UnixMilli())}, "end": {at}, "step": {"5s"}}
			d, n = clustertest.DiffAnswers(t, p, q.Process, tenant, "/query_range", params, false)
			require.Empty(t, d, "range query (-prometheus +argus)")
			require.Equal(t, qc.empty, n == 0, "prometheus's answer has %d results", n)
		})
	}
	t.Run("series", func(t *testing.T) {
		params := url.Values{"match[]": {`up`, `{job="prometheus",__name__=~"prometheus_http_.*"}`},
			"start": {clustertest.FormatAPITime(e0.UnixMilli())}, "end": {at}}
		d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, "/series", params, true)
		require.Empty(t, d, "/series (-prometheus +argus)")
		require.Positive(t, n)
	})
}

// equivalenceQueries is a subset of internal/e2e's all-in-one table with
// look-backs of at most 30s.
var equivalenceQueries = []struct {
	q       string
	ordered bool // the result order is part of the semantics (topk)
	empty   bool // the reference answer is empty
}{
	{q: `rate(prometheus_http_requests_total[20s])`},
	{q: `sum by (job) (rate(scrape_samples_scraped[20s]))`},
	{q: `histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[20s])))`},
	{q: `topk(3, {__name__=~"scrape_samples_scraped|prometheus_tsdb_head_series"})`, ordered: true},
	{q: `absent(nonexistent_metric)`},
	{q: `absent(up)`, empty: true},
	{q: `up offset 20s`},
	{q: `max_over_time(rate(prometheus_http_requests_total[10s])[20s:5s])`},
	{q: `count by (__name__) ({job="prometheus"})`},
	{q: `sum(count_over_time(scrape_duration_seconds[20s]))`},
	{q: `scrape_duration_seconds * on (job, instance) group_left () up`},
	{q: `timestamp(up)`},
	{q: `{job="argus"}`},
}

// containsResult reports whether a query answer has at least one result.
func containsResult(t testing.TB, code int, body []byte) bool {
	t.Helper()
	a, _ := clustertest.DecodeAnswer(t, code, body, false)
	return clustertest.ResultCount(a.Data) > 0
}
