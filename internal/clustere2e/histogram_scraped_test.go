package clustere2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestNativeHistogramsScrapedAgainstPrometheus is internal/e2e's
// TestNativeHistogramsAgainstPrometheus on a cluster of 3 ingesters (RF=3):
// the real Prometheus 3.16 scrapes a client_golang exporter with native
// histograms (exponential, custom buckets converted from classic ones, and
// float ones from a recording rule) and remote-writes them over remote
// write 2.0 to a distributor; the querier answers the same PromQL queries
// as Prometheus, before and after one ingester is killed with kill -9, and
// once it is back from its WAL.
//
//	exporter ◀── scrape 1s ── prometheus ── remote write 2.0 ──▶ dist-0 ──▶ ing-0..2 (RF=3) ◀── querier-0
func TestNativeHistogramsScrapedAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const tenant = "hist-scraped"
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	q := c.Querier(0)
	exp := clustertest.StartHistExporter(t)
	p := clustertest.StartHistPrometheus(t, exp, c.Distributor(0).PushURL(), tenant)
	w := clustertest.NewEquivalenceWindow(t, p, 15*time.Second, 40*time.Second, 20*time.Second)
	w.SleepPastEnd()
	at := clustertest.FormatAPITime(w.End.UnixMilli())

	raw := url.Values{"query": {fmt.Sprintf(`{__name__=~"argus_test_.+|job:.+"}[%ds]`, int(w.End.Sub(w.W0).Seconds()))}, "time": {at}}
	clustertest.Eventually(t, func() string {
		d, _ := clustertest.DiffAnswers(t, p, q.Process, tenant, "/query", raw, true)
		return d
	}, 60*time.Second)
	var queries []clustertest.APIQuery
	for _, hq := range append(clustertest.HistQueries, raw.Get("query")) {
		queries = append(queries, clustertest.APIQuery{Path: "/query", Params: url.Values{"query": {hq}, "time": {at}}})
		if !strings.HasSuffix(hq, "s]") { // Range vectors have no range query.
			queries = append(queries, clustertest.APIQuery{Path: "/query_range", Params: url.Values{"query": {hq},
				"start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5s"}}})
		}
	}
	compare := func(when string) {
		t.Helper()
		for _, hq := range queries {
			d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, hq.Path, hq.Params, hq.Path == "/query")
			if d != "" {
				t.Errorf("%s: %s %s (-prometheus +argus):\n%s", when, hq.Path, hq.Params.Get("query"), d)
			}
			require.Positive(t, n, "%s: prometheus's answer to %s is empty", when, hq.Params.Get("query"))
		}
	}
	compare("three ingesters")
	victim := c.Ingester(1)
	victim.Kill(t)
	compare("one ingester killed")
	victim.Restart(t)
	c.WaitRing(t, 3)
	compare("the killed ingester back from its WAL")
}
