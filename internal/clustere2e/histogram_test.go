package clustere2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestNativeHistograms pushes the same remote-write 1.0 requests of native
// histograms (exponential and custom buckets, integer and float, gauge,
// and a series changing between floats and histograms) to a cluster of 3
// ingesters (RF=3) and to the real Prometheus's receiver: the querier
// answers the histogram queries as Prometheus does, before and after one
// ingester is killed with kill -9 (the other two answer) and once it is
// back from its WAL (all three answer, their replicas merged).
func TestNativeHistograms(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const tenant = "hist"
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	q := c.Querier(0)
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, Flags: []string{"--web.enable-remote-write-receiver"}})
	end := time.Now().Truncate(10 * time.Second)
	for _, body := range clustertest.NativeHistogramBodies(t, end) {
		code, msg := c.Distributor(0).PushBody(t, tenant, body)
		require.Equal(t, 2, code/100, "%d %s", code, msg)
		req, err := http.NewRequest(http.MethodPost, p.URL()+"/api/v1/write", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	compare := func(when string) {
		t.Helper()
		for _, hq := range clustertest.NativeHistogramQueries(end) {
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
