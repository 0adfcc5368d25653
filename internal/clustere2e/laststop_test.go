package clustere2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestLastIngesterStopsCleanly stops a whole cluster with SIGTERM, the
// ingesters last: every process, the last ingester included (no member is
// left to acknowledge its leave broadcast), must exit 0, as Kubernetes
// reports anything else as an error on every rollout (issue 14).
func TestLastIngesterStopsCleanly(t *testing.T) {
	skipIfShort(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 2, Distributors: 1, Queriers: 1, RF: 2})
	c.WaitRing(t, 2)
	now := time.Now().UnixMilli()
	code, body := c.Distributor(0).Push(t, "last-stop", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "last_stop", "i", "1"), Samples: []clustertest.Sample{{T: now, V: 1}}}})
	require.Equal(t, http.StatusNoContent, code, body)

	c.Querier(0).Stop(t)
	c.Distributor(0).Stop(t)
	c.Ingester(0).Stop(t)
	last := c.Ingester(1)
	took := last.Stop(t) // requires exit status 0
	t.Logf("the last ingester stopped in %v", took)
	require.NotContains(t, last.Log(t), "leave memberlist", "the last ingester's stop logged a failed leave")
	for _, m := range c.Members() {
		require.False(t, m.Running(), "%s still runs", m.ID())
		require.False(t, strings.Contains(m.Log(t), "level=ERROR"), "%s logged an error:\n%s", m.ID(), m.Log(t))
	}
}
