package e2e

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// requireNearBaseline asserts that s is back to base, with margins: the
// heap (the smallest of a few readings, each just after a forced
// collection) within 1.25 times the baseline plus 6 MB (of which about 3 MB
// are the high-water mark of the distributor's per-tenant counter maps:
// client_golang deletes a forgotten tenant's series, but a Go map never
// gives back its buckets, and 5,000 tenants of a cycle against the 2,000 of
// the baseline leave that much; a leak of 1 KB per tenant, 10 MB over the
// two cycles, still fails it), goroutines, files and
// sockets within a few of it (a scrape or a query in flight), /metrics
// within 20 lines (metrics such as histograms that get their first
// observation).
func requireNearBaseline(t testing.TB, base, s clustertest.SoakState, what string) {
	t.Helper()
	require.LessOrEqual(t, s.HeapBytes, base.HeapBytes*5/4+6<<20, "heap %s", what)
	require.LessOrEqual(t, s.Goroutines, base.Goroutines+5, "goroutines %s", what)
	require.LessOrEqual(t, s.OpenFiles, base.OpenFiles+5, "open files %s", what)
	require.LessOrEqual(t, s.Sockets, base.Sockets+3, "sockets (client connections) %s", what)
	require.LessOrEqual(t, s.MetricLines, base.MetricLines+20, "metric series %s", what)
}

// TestSoak_TenantsComeAndGo pushes 12,000 tenants (a first 2,000 to warm up,
// then 5,000 twice) through an all-in-one argus, each cycle with series
// names of its own (series churn), and waits after each cycle until every
// tenant is idle: its head closed, its per-tenant metric series gone in the
// ingester and the distributor. Then heap, goroutines, open files, sockets
// and metric series are back at their baseline (after the warm-up cycle),
// with margins. The waits are for states, not for durations.
func TestSoak_TenantsComeAndGo(t *testing.T) {
	skipIfShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc")
	}
	t.Setenv("GOGC", clustertest.SoakGOGC) // Inherited by argus.
	a := clustertest.StartArgus(t, clustertest.Options{Flags: clustertest.SoakFlags})
	cycle := func(c, tenants int) clustertest.SoakState {
		t.Helper()
		prefix, metric := fmt.Sprintf("soak%d", c), fmt.Sprintf("soak_cycle%d_metric", c)
		at := clustertest.PushTenants(t, a, prefix, tenants, metric)
		t.Logf("cycle %d, %d tenants pushed (%v open): %s", c, tenants, a.Metric(t, "argus_ingester_tenants", nil), clustertest.MeasureSoak(t, a))
		waitIdle(t, a)
		code, body := a.Query(t, "", "/ingester/tenants", nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "0 open tenants\n", string(body))
		s := clustertest.MeasureSoak(t, a)
		t.Logf("cycle %d, tenants idle: %s", c, s)
		// Closed heads lose nothing: a few tenants read back exactly.
		for k := 0; k < tenants; k += tenants / 5 {
			id := fmt.Sprintf("%s-%05d", prefix, k)
			got := rawSamples(t, a, id, metric, at, 10*time.Second)
			require.Len(t, got, 5, id)
			for _, sr := range got {
				require.Equal(t, []clustertest.Sample{{T: at - 2000, V: 0}, {T: at - 1000, V: 1}, {T: at, V: 2}}, sr.Samples, id)
			}
		}
		return s
	}
	base := cycle(0, 2000)
	for c := 1; c <= 2; c++ {
		requireNearBaseline(t, base, cycle(c, 5000), fmt.Sprintf("after cycle %d", c))
	}
	// At least once each (a tenant may close between two of its pushes).
	require.GreaterOrEqual(t, a.Metric(t, "argus_ingester_idle_tenants_closed_total", nil), float64(12_000))
}

// waitIdle waits until the ingester of a has closed every tenant head and
// no per-tenant series is left in the ingester's or the distributor's
// metrics.
func waitIdle(t testing.TB, a *clustertest.Process) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		fams := a.MetricFamilies(t)
		var left []string
		for _, name := range []string{"argus_ingester_memory_series", "argus_ingester_samples_appended_total",
			"argus_distributor_received_samples_total", "argus_distributor_received_requests_total"} {
			if n := len(fams[name].GetMetric()); n > 0 {
				left = append(left, fmt.Sprintf("%s: %d series", name, n))
			}
		}
		if n := a.Metric(t, "argus_ingester_tenants", nil); n > 0 {
			left = append(left, fmt.Sprintf("%v tenants open", n))
		}
		return strings.Join(left, "; ")
	}, 2*time.Minute)
}
