package clustere2e

import (
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestSoak_RollingIngesters runs three cycles on a cluster of 3 ingesters
// (RF=3), a distributor and a querier: 1,500 tenants push (new series names
// each cycle: series churn), the ingesters are restarted one by one while
// more tenants push, then every tenant goes idle (heads closed, per-tenant
// metric series gone in the ingesters and the distributor). After the
// warm-up cycle each process's heap, goroutines, open files, sockets (client
// connections included) and metric series are its baseline; after the next
// two they are back at it, with margins. A few tenants read back exactly.
func TestSoak_RollingIngesters(t *testing.T) {
	skipIfShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc")
	}
	t.Setenv("GOGC", clustertest.SoakGOGC) // Inherited by every process.
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3, ExtraFlags: clustertest.SoakFlags})
	d, q := c.Distributor(0), c.Querier(0)
	procs := append([]*clustertest.Member{d, q}, c.Ingesters()...)

	cycle := func(n int) map[string]clustertest.SoakState {
		t.Helper()
		metric := fmt.Sprintf("soak_roll%d", n)
		at := clustertest.PushTenants(t, d.Process, fmt.Sprintf("roll%d", n), 1000, metric)
		for k, ing := range c.Ingesters() {
			ing.Restart(t) // Graceful: SIGTERM, then start on the same data.
			c.WaitRing(t, 3)
			clustertest.PushTenants(t, d.Process, fmt.Sprintf("roll%d-after%d", n, k), 100, metric)
		}
		clustertest.Eventually(t, func() string {
			var left []string
			for _, ing := range c.Ingesters() {
				if v := ing.Metric(t, "argus_ingester_tenants", nil); v > 0 {
					left = append(left, fmt.Sprintf("%s: %v tenants open", ing.ID(), v))
				}
			}
			if series := len(d.MetricFamilies(t)["argus_distributor_received_samples_total"].GetMetric()); series > 0 {
				left = append(left, fmt.Sprintf("distributor: %d tenants known", series))
			}
			return strings.Join(left, "; ")
		}, 2*time.Minute)
		for k := 0; k < 1000; k += 250 {
			id := fmt.Sprintf("roll%d-%05d", n, k)
			code, body := q.Query(t, id, clustertest.PromAPI+"/query", url.Values{
				"query": {fmt.Sprintf("%s[10s]", metric)}, "time": {clustertest.FormatAPITime(at)},
			})
			got := clustertest.MatrixData(t, code, body)
			require.Len(t, got, 5, id)
			for _, s := range got {
				require.Equal(t, []clustertest.Sample{{T: at - 2000, V: 0}, {T: at - 1000, V: 1}, {T: at, V: 2}}, s.Samples, id)
			}
		}
		out := map[string]clustertest.SoakState{}
		for _, p := range procs {
			out[p.ID()] = clustertest.MeasureSoak(t, p.Process)
			t.Logf("cycle %d, idle: %s: %s", n, p.ID(), out[p.ID()])
		}
		return out
	}
	base := cycle(0)
	for n := 1; n <= 2; n++ {
		now := cycle(n)
		for _, p := range procs {
			b, s := base[p.ID()], now[p.ID()]
			what := fmt.Sprintf("%s after cycle %d", p.ID(), n)
			require.LessOrEqual(t, s.HeapBytes, b.HeapBytes*5/4+4<<20, "heap of %s", what)
			require.LessOrEqual(t, s.Goroutines, b.Goroutines+5, "goroutines of %s", what)
			require.LessOrEqual(t, s.OpenFiles, b.OpenFiles+5, "open files of %s", what)
			require.LessOrEqual(t, s.Sockets, b.Sockets+3, "sockets of %s", what)
			require.LessOrEqual(t, s.MetricLines, b.MetricLines+20, "metric series of %s", what)
		}
	}
}
