package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestNativeHistogramsPushed pushes the same remote-write 1.0 requests of
// native histograms, custom-bucket ones included, to the real Prometheus's
// receiver and to argus, then compares the answers of the same queries:
// from argus's head, from its persisted chunks, and after kill -9 and a
// restart.
func TestNativeHistogramsPushed(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "hist-push"
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ingester.flush-period=200ms", "-ingester.max-chunk-idle=2s"}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, Flags: []string{"--web.enable-remote-write-receiver"}})
	end := time.Now().Truncate(10 * time.Second)
	for _, body := range clustertest.NativeHistogramBodies(t, end) {
		code, msg := a.PushBody(t, tenant, body)
		require.Equal(t, 2, code/100, "%d %s", code, msg)
		pushToPrometheus(t, p, body)
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
	compare("from the head")
	waitAllPersisted(t, a, tenant)
	compare("from persisted chunks")
	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 and restart")
}
