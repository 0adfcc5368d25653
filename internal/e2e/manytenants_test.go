package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// maxOpenFiles bounds the open files of an all-in-one argus whatever its
// number of tenants: the WAL and the DB are shared by every tenant. (The
// per-tenant layout it replaced held 2,013 files open at 1,000 tenants.)
const maxOpenFiles = 150

// TestManyTenants pushes 1,000, then 10,000 tenants of 10 series each
// through the real binary and checks that the open files stay under
// maxOpenFiles and do not grow with the tenants, and that every tenant reads
// back exactly its own samples (the first 1,000 before, all of them after a
// kill -9 and restart, so through the shared WAL's replay). It logs open
// files, RSS and /metrics size.
func TestManyTenants(t *testing.T) {
	skipIfShort(t)
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc")
	}
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.multitenancy-enabled=true"}})
	at := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	tenant := func(k int) string { return fmt.Sprintf("many-%05d", k) }
	value := func(k, n int) float64 { return float64(k)*100 + float64(n) }

	pushRange := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for k := from + w; k < to; k += 4 {
					series := make([]clustertest.TimeSeries, 10)
					for n := range series {
						series[n] = clustertest.TimeSeries{
							Labels:  clustertest.Labels("__name__", fmt.Sprintf("many_metric_%d", n), "instance", "host:9100", "job", "node"),
							Samples: []clustertest.Sample{{T: at, V: value(k, n)}},
						}
					}
					code, body, err := a.TryPush(context.Background(), tenant(k), series)
					if err == nil && code != http.StatusNoContent {
						err = fmt.Errorf("push of %s answered %d: %s", tenant(k), code, body)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		require.NoError(t, <-errs)
	}
	checkTenants := func(to int) {
		t.Helper()
		params := url.Values{"query": {`{__name__=~"many_metric_.+"}`}, "time": {clustertest.FormatAPITime(at)}}
		for k := range to {
			code, body := a.Query(t, tenant(k), clustertest.PromAPI+"/query", params)
			require.Equal(t, http.StatusOK, code, string(body))
			var resp struct {
				Data struct {
					Result []struct {
						Metric map[string]string `json:"metric"`
						Value  [2]any            `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(body, &resp))
			require.Len(t, resp.Data.Result, 10, "tenant %s", tenant(k))
			for _, r := range resp.Data.Result {
				n, err := strconv.Atoi(strings.TrimPrefix(r.Metric["__name__"], "many_metric_"))
				require.NoError(t, err)
				require.Equal(t, strconv.FormatFloat(value(k, n), 'f', -1, 64), r.Value[1], "tenant %s series %d", tenant(k), n)
			}
		}
	}
	measure := func(tenants int) int {
		t.Helper()
		fds := openFiles(t, a.PID())
		code, metrics := a.Query(t, "", "/metrics", nil)
		require.Equal(t, http.StatusOK, code)
		t.Logf("%d tenants x 10 series: %d open files, RSS %d KB, /metrics %d lines", tenants, fds,
			statusKB(t, a.PID(), "VmRSS"), strings.Count(string(metrics), "\n"))
		require.Less(t, fds, maxOpenFiles, "open files at %d tenants", tenants)
		return fds
	}

	pushRange(0, 1000)
	checkTenants(1000)
	at1k := measure(1000)
	pushRange(1000, 10_000)
	at10k := measure(10_000)
	require.LessOrEqual(t, at10k, at1k+10, "open files do not grow with tenants")

	a.Kill(t)
	a.Restart(t)
	checkTenants(10_000)
	measure(10_000)
}

// openFiles counts the file descriptors of process pid.
func openFiles(t testing.TB, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	return len(entries)
}

// statusKB returns the field (VmRSS, VmHWM, ...) of /proc/<pid>/status, in KB.
func statusKB(t testing.TB, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestDurabilityKill9ManyTenants pushes several tenants at once, each
// with the same series names but its own timestamps, so that their records
// interleave in the one WAL while chunks are persisted and the WAL is
// checkpointed and truncated; after kill -9 and a restart, every tenant has
// exactly its own samples.
func TestDurabilityKill9ManyTenants(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=200ms",
		"-ingester.wal-truncate-period=1s",
		"-ingester.wal-segment-size=65536",
		"-distributor.ingestion-rate-limit=0",
	}})
	const tenants, series, first, total, perRequest = 12, 30, 300, 400, 20
	ds := make([]dataset, tenants)
	for k := range ds {
		// A step of its own per tenant: a sample routed to another tenant's head would show.
		ds[k] = newDataset("dur_many", series, total, time.Second+time.Duration(k)*time.Millisecond)
	}
	tenant := func(k int) string { return fmt.Sprintf("dur-%02d", k) }
	pushAll := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, tenants)
		for w := range 4 {
			wg.Go(func() {
				for i := from; i < to; i += perRequest {
					for k := w; k < tenants; k += 4 {
						code, body, err := a.TryPush(context.Background(), tenant(k), ds[k].batch(i, min(i+perRequest, to)))
						if err == nil && code != http.StatusNoContent {
							err = fmt.Errorf("push of %s answered %d: %s", tenant(k), code, body)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		require.NoError(t, <-errs)
	}
	check := func(when string) {
		t.Helper()
		for k, d := range ds {
			require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, tenant(k), total)), "%s %s", tenant(k), when)
		}
	}

	pushAll(0, first)
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_wal_truncations_total", map[string]string{"outcome": "success"}); n <= 0 {
			return "no WAL truncation yet"
		}
		return ""
	}, 60*time.Second)
	pushAll(first, total)
	check("before the crash")
	a.Kill(t)
	a.Restart(t)
	check("after kill -9 and restart")
}
