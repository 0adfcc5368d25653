package clustere2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestRingConvergence starts 3 ingesters (RF=3), 1 distributor and 1
// querier and checks that every process sees the same ring (instances,
// states, token counts, addresses) within a few seconds of the last one
// being ready, and again after a fourth ingester joins.
func TestRingConvergence(t *testing.T) {
	skipIfShort(t)
	begin := time.Now()
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3})
	t.Logf("cluster of 5 processes up and converged in %v", time.Since(begin))

	// StartCluster waited for convergence; it must hold and list the
	// persisted tokens of each ingester.
	require.Empty(t, c.RingDiff(t, 3))
	rs := c.Querier(0).Ring(t)
	require.Equal(t, 3, rs.ReplicationFactor)
	for _, ing := range c.Ingesters() {
		in, ok := rs.Instance(ing.ID())
		require.True(t, ok, "querier's ring lacks %s", ing.ID())
		require.Equal(t, clustertest.StateActive, in.State)
		require.Len(t, ing.TokensFile(t), in.Tokens, "tokens of %s in its file and in the ring", ing.ID())
		require.Equal(t, 128, in.Tokens)
	}

	ing := c.AddIngester(t)
	took := c.WaitRing(t, 4)
	t.Logf("ring converged on 4 ACTIVE ingesters %v after %s was ready", took, ing.ID())
	require.Less(t, took, 10*time.Second, "every process must see the new ingester within seconds")
}
