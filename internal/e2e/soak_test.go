package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// soakFlags compress the lifecycle of a tenant to seconds: its chunks are
// cut and persisted a second after its last sample, its series leave the
// head at the next truncation, its head closes a second later, and the
// distributor forgets it a second after its last push.
var soakFlags = []string{
	"-distributor.ingestion-rate-limit=0",
	"-ingester.max-chunk-idle=1s",
	"-ingester.flush-period=200ms",
	"-ingester.wal-truncate-period=1s",
	"-ingester.tenant-idle-timeout=1s",
	"-distributor.idle-tenant-timeout=1s",
}

// soakState is what must return to its baseline once the tenants are idle.
type soakState struct {
	heapBytes, goroutines, openFiles, sockets, metricLines int
}

func (s soakState) String() string {
	return fmt.Sprintf("heap %d KB, %d goroutines, %d open files (%d sockets), /metrics %d lines",
		s.heapBytes/1024, s.goroutines, s.openFiles, s.sockets, s.metricLines)
}

// soakGOGC is the GOGC of the soaked process: low, so that the scrapes
// that wait for a garbage collection (measureSoak) trigger one soon, and the
// heap it reports holds little garbage.
const soakGOGC = "20"

// measureSoak reads the state of a from /metrics and /proc, once a garbage
// collection has run since the call (so that the heap is mostly live data;
// the scrapes allocate enough to trigger one at soakGOGC).
func measureSoak(t testing.TB, a *clustertest.Process) soakState {
	t.Helper()
	gcs := func() uint64 {
		return a.MetricFamilies(t)["go_gc_duration_seconds"].GetMetric()[0].GetSummary().GetSampleCount()
	}
	before := gcs()
	clustertest.Eventually(t, func() string {
		if gcs() > before {
			return ""
		}
		return "no garbage collection since the measure began"
	}, time.Minute)
	fams := a.MetricFamilies(t)
	code, metrics := a.Query(t, "", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	files, sockets := openFilesAndSockets(t, a.PID())
	return soakState{
		heapBytes:   int(fams["go_memstats_heap_alloc_bytes"].GetMetric()[0].GetGauge().GetValue()),
		goroutines:  int(fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue()),
		openFiles:   files,
		sockets:     sockets,
		metricLines: strings.Count(string(metrics), "\n"),
	}
}

// requireNearBaseline asserts that s is back to base, with margins: the heap
// (just after a collection, with up to soakGOGC % of garbage) within 1.25
// times the baseline plus 4 MB, goroutines, files and sockets within a few of it (a
// scrape or a query in flight), /metrics within 20 lines (metrics such as
// histograms that get their first observation).
func requireNearBaseline(t testing.TB, base, s soakState, what string) {
	t.Helper()
	require.LessOrEqual(t, s.heapBytes, base.heapBytes*5/4+4<<20, "heap %s", what)
	require.LessOrEqual(t, s.goroutines, base.goroutines+5, "goroutines %s", what)
	require.LessOrEqual(t, s.openFiles, base.openFiles+5, "open files %s", what)
	require.LessOrEqual(t, s.sockets, base.sockets+3, "sockets (client connections) %s", what)
	require.LessOrEqual(t, s.metricLines, base.metricLines+20, "metric series %s", what)
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
	t.Setenv("GOGC", soakGOGC) // Inherited by argus.
	a := clustertest.StartArgus(t, clustertest.Options{Flags: soakFlags})
	cycle := func(c, tenants int) soakState {
		t.Helper()
		prefix, metric := fmt.Sprintf("soak%d", c), fmt.Sprintf("soak_cycle%d_metric", c)
		at := pushTenants(t, a, prefix, tenants, metric)
		t.Logf("cycle %d, %d tenants pushed (%v open): %s", c, tenants, a.Metric(t, "argus_ingester_tenants", nil), measureSoak(t, a))
		waitIdle(t, a)
		s := measureSoak(t, a)
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

// pushTenants pushes, from 4 goroutines, 3 pushes of 5 series each for
// tenants prefix-00000.., with samples at at-2s, at-1s and at, and requires
// every one acknowledged. It returns at.
func pushTenants(t testing.TB, a *clustertest.Process, prefix string, tenants int, metric string) (at int64) {
	t.Helper()
	now := time.Now().Truncate(time.Second).UnixMilli()
	at = now - 1000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < tenants; k += 4 {
				id := fmt.Sprintf("%s-%05d", prefix, k)
				for p := range 3 {
					series := make([]clustertest.TimeSeries, 5)
					for n := range series {
						series[n] = clustertest.TimeSeries{
							Labels:  clustertest.Labels("__name__", metric, "n", fmt.Sprint(n)),
							Samples: []clustertest.Sample{{T: now - int64(3-p)*1000, V: float64(p)}},
						}
					}
					code, body, err := a.TryPush(context.Background(), id, series)
					if err == nil && code != http.StatusNoContent {
						err = fmt.Errorf("push of %s answered %d: %s", id, code, body)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	return at
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

// openFilesAndSockets counts the file descriptors of process pid, and those
// that are sockets.
func openFilesAndSockets(t testing.TB, pid int) (files, sockets int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return len(entries), sockets
}
