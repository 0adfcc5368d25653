package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestOutOfOrderHistogramsAgainstPrometheus pushes the native histogram
// requests of TestNativeHistogramsPushed (exponential and custom buckets,
// integer and float, a gauge, a series changing between floats and
// histograms; 20 scrapes a request) to the real Prometheus 3.16 and to
// argus, both with a 10 min out-of-order window, every second request
// before the one it follows (1, 0, 3, 2, ...): half of the samples are
// older than their series' newest. Both accept every request, and the
// same queries answer the same; then the last 3 requests are sent to argus
// again (answered 2xx, stored once), and argus is killed with SIGKILL and
// restarted: the answers stay equal.
func TestOutOfOrderHistogramsAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const (
		tenant = "hist-ooo"
		window = 10 * time.Minute
	)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, overrides, fmt.Sprintf("overrides:\n  %s:\n    out_of_order_time_window: %s\n", tenant, window))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-runtime-config.file=" + overrides,
		"-ingester.flush-period=200ms", "-ingester.max-chunk-idle=2s",
	}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, OutOfOrderTimeWindow: window,
		Flags: []string{"--web.enable-remote-write-receiver"}})
	require.Equal(t, window.String(), getUserLimits(t, a, tenant).Limits["out_of_order_time_window"])

	end := time.Now().Truncate(10 * time.Second)
	bodies := clustertest.NativeHistogramBodies(t, end)
	var order []int
	for k := 0; k < len(bodies); k += 2 {
		if k+1 < len(bodies) {
			order = append(order, k+1)
		}
		order = append(order, k)
	}
	pushAll := func(order []int) {
		t.Helper()
		for _, k := range order {
			code, msg := a.PushBody(t, tenant, bodies[k])
			require.Equal(t, 2, code/100, "request %d: %d %s", k, code, msg)
		}
	}
	pushAll(order)
	for _, k := range order {
		pushToPrometheus(t, p, bodies[k])
	}
	compare := func(when string) {
		t.Helper()
		for _, q := range clustertest.NativeHistogramQueries(end) {
			d, n := clustertest.DiffAnswers(t, p, a, tenant, q.Path, q.Params, q.Path == "/query")
			if d != "" {
				t.Errorf("%s: %s %s (-prometheus +argus):\n%s", when, q.Path, q.Params.Get("query"), d)
			}
			require.Positive(t, n, "%s: prometheus's answer to %s is empty", when, q.Params.Get("query"))
		}
	}
	compare("out of order")
	// The requests inside the window again (the older ones are persisted:
	// a retry of those is too old, in argus as in Prometheus).
	pushAll(order[len(order)-3:])
	compare("after the last 3 requests again")
	require.Zero(t, a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": tenant, "reason": "out_of_order"}))
	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 and restart")
}
