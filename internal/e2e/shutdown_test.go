package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestGracefulShutdown stops argus with SIGTERM: it must exit 0, promptly,
// and everything acknowledged before must be there after a restart. Two
// rounds: the second restart replays what the first one recovered plus new
// data.
func TestGracefulShutdown(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	const tenant = "shutdown"
	const series, first, total = 50, 200, 260
	d := newDataset("shutdown_test", series, total, time.Second)

	d.push(t, a, tenant, 0, first, 25)
	took := a.Stop(t)
	t.Logf("graceful stop took %v", took)
	require.Less(t, took, 30*time.Second, "graceful stop")

	a.Restart(t)
	require.Equal(t, http.StatusOK, a.ReadyStatus(t))
	require.Empty(t, clustertest.DiffSamples(d.want(first), d.query(t, a, tenant, first)), "after SIGTERM and restart")

	d.push(t, a, tenant, first, total, 25)
	a.Stop(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, tenant, total)), "after a second SIGTERM and restart")
}
