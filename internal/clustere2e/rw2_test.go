package clustere2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestRemoteWrite2Cluster is TestPrometheusEquivalence with Prometheus
// sending remote write 2.0: the translated series are sharded, replicated
// to 3 ingesters (RF=3) and read back by the querier exactly as Prometheus
// stored them, and Prometheus's accounting of the written headers shows
// nothing lost.
//
//	prometheus ──scrape 1s──▶ itself, dist-1
//	prometheus ──remote write 2.0 (team-a)──▶ dist-0 ──▶ ing-0, ing-1, ing-2 ◀── querier-0
func TestRemoteWrite2Cluster(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const tenant = "team-a"
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 2, Queriers: 1, RF: 3})
	q := c.Querier(0)
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": c.Distributor(1).HostPort()},
		RemoteWrite:    &clustertest.RemoteWrite{URL: c.Distributor(0).PushURL(), Tenant: tenant, Name: "rw2", ProtobufMessage: "io.prometheus.write.v2.Request"},
	})
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
	for _, qc := range equivalenceQueries[:3] {
		d, n := clustertest.DiffAnswers(t, p, q.Process, tenant, "/query", url.Values{"query": {qc.Q}, "time": {at}}, !qc.Ordered)
		require.Empty(t, d, "%s at %s (-prometheus +argus)", qc.Q, at)
		require.Positive(t, n, qc.Q)
	}
	rw2 := map[string]string{"remote_name": "rw2"}
	require.Positive(t, p.Metric(t, "prometheus_remote_storage_samples_total", rw2))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", rw2))
}
