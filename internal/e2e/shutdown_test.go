package e2e

import (
	"net/http"
	"strings"
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

// TestNewTenantLogsNoReplay: the first push of a brand-new tenant creates
// its head without replaying anything, so the log gains no "wal replayed"
// line (issue 14: it used to say so); a restart does replay the WAL and
// logs it, which shows that the line is looked for in the right log.
func TestNewTenantLogsNoReplay(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	const line = `"wal replayed"`
	atStart := strings.Count(a.Log(t), line)
	now := time.Now().UnixMilli()
	for _, tenant := range []string{"brand-new-1", "brand-new-2"} {
		pushOK(t, a, tenant, []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "first_push", "i", "1"), Samples: []clustertest.Sample{{T: now, V: 1}}}})
	}
	require.Equal(t, atStart, strings.Count(a.Log(t), line), "a first push logged a WAL replay:\n%s", a.Log(t))

	a.Stop(t) // exit status 0 (clean stop of the all-in-one)
	a.Restart(t)
	require.Greater(t, strings.Count(a.Log(t), line), atStart, "the restart replays the WAL and says so")
}
