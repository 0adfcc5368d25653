package clustere2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// soakFlags compress the lifecycle of a tenant to seconds: chunks persisted
// a second after the last sample, series out of the head at the next
// truncation, the head closed a second later, the distributor forgetting the
// tenant a second after its last push.
var soakFlags = []string{
	"-distributor.ingestion-rate-limit=0",
	"-ingester.max-chunk-idle=1s",
	"-ingester.flush-period=200ms",
	"-ingester.wal-truncate-period=1s",
	"-ingester.tenant-idle-timeout=1s",
	"-distributor.idle-tenant-timeout=1s",
}

// soakState is what must return to its baseline in one process.
type soakState struct {
	heapBytes, goroutines, openFiles, sockets, metricLines int
}

func (s soakState) String() string {
	return fmt.Sprintf("heap %d KB, %d goroutines, %d open files (%d sockets), /metrics %d lines",
		s.heapBytes/1024, s.goroutines, s.openFiles, s.sockets, s.metricLines)
}

// measure reads the state of p once a garbage collection has run since the
// call (GOGC=20: the scrapes trigger one soon).
func measure(t testing.TB, p *clustertest.Process) soakState {
	t.Helper()
	gcs := func() uint64 {
		return p.MetricFamilies(t)["go_gc_duration_seconds"].GetMetric()[0].GetSummary().GetSampleCount()
	}
	before := gcs()
	clustertest.Eventually(t, func() string {
		if gcs() > before {
			return ""
		}
		return "no garbage collection since the measure began"
	}, time.Minute)
	fams := p.MetricFamilies(t)
	code, metrics := p.Query(t, "", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	dir := fmt.Sprintf("/proc/%d/fd", p.PID())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	sockets := 0
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return soakState{
		heapBytes:   int(fams["go_memstats_heap_alloc_bytes"].GetMetric()[0].GetGauge().GetValue()),
		goroutines:  int(fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue()),
		openFiles:   len(entries),
		sockets:     sockets,
		metricLines: strings.Count(string(metrics), "\n"),
	}
}

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
	t.Setenv("GOGC", "20") // Inherited by every process.
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3, ExtraFlags: soakFlags})
	d, q := c.Distributor(0), c.Querier(0)
	procs := append([]*clustertest.Member{d, q}, c.Ingesters()...)

	cycle := func(n int) map[string]soakState {
		t.Helper()
		metric := fmt.Sprintf("soak_roll%d", n)
		at := pushTenants(t, d.Process, fmt.Sprintf("roll%d", n), 1000, metric)
		for k, ing := range c.Ingesters() {
			ing.Restart(t) // Graceful: SIGTERM, then start on the same data.
			c.WaitRing(t, 3)
			pushTenants(t, d.Process, fmt.Sprintf("roll%d-after%d", n, k), 100, metric)
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
		out := map[string]soakState{}
		for _, p := range procs {
			out[p.ID()] = measure(t, p.Process)
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
			require.LessOrEqual(t, s.heapBytes, b.heapBytes*5/4+4<<20, "heap of %s", what)
			require.LessOrEqual(t, s.goroutines, b.goroutines+5, "goroutines of %s", what)
			require.LessOrEqual(t, s.openFiles, b.openFiles+5, "open files of %s", what)
			require.LessOrEqual(t, s.sockets, b.sockets+3, "sockets of %s", what)
			require.LessOrEqual(t, s.metricLines, b.metricLines+20, "metric series of %s", what)
		}
	}
}

// pushTenants pushes, from 4 goroutines, 3 pushes of 5 series each for
// tenants prefix-00000.., with samples at at-2s, at-1s and at, and requires
// every one acknowledged. It returns at.
func pushTenants(t testing.TB, p *clustertest.Process, prefix string, tenants int, metric string) (at int64) {
	t.Helper()
	at = time.Now().Truncate(time.Second).UnixMilli() - 1000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < tenants; k += 4 {
				id := fmt.Sprintf("%s-%05d", prefix, k)
				for r := range 3 {
					series := make([]clustertest.TimeSeries, 5)
					for n := range series {
						series[n] = clustertest.TimeSeries{
							Labels:  clustertest.Labels("__name__", metric, "n", fmt.Sprint(n)),
							Samples: []clustertest.Sample{{T: at - int64(2-r)*1000, V: float64(r)}},
						}
					}
					code, body, err := p.TryPush(context.Background(), id, series)
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
