package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestExemplarsAndMetadataAgainstPrometheus has the real Prometheus 3.16
// scrape a client_golang exporter (OpenMetrics, exemplars on a counter and
// a histogram, HELP/TYPE/UNIT), keep the exemplars
// (--enable-feature=exemplar-storage) and remote-write them and the
// metadata to Argus; query_exemplars and metadata must then answer exactly
// the same on both, and on Argus again after Prometheus is stopped and
// Argus is killed with SIGKILL and restarted (from its WAL alone).
//
//	exporter ◀── scrape 1s ── prometheus ── remote write (send_exemplars, metadata every 1s) ──▶ argus
func TestExemplarsAndMetadataAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t) // skip (or fail under CI) before starting anything
	t.Parallel()
	const tenant = "team-ex"
	start := time.Now().Add(-time.Minute)
	exp := clustertest.StartExmetaExporter(t)
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartExmetaPrometheus(t, exp, a.PushURL(), tenant)
	argusGet := func(path string, params url.Values) (int, []byte) {
		return a.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	want := clustertest.AwaitExmeta(t, p, argusGet, start)
	t.Logf("equal on both: %d series with exemplars, %d metric families", len(want.Exemplars.([]any)), len(want.Metadata.(map[string]any)))

	// Durability: nothing is resent once Prometheus is gone.
	p.Stop(t)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffExmeta(want, clustertest.GetExmeta(t, argusGet, start)), "after kill -9 and restart")
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/metadata", url.Values{"limit": {"x"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.JSONEq(t, `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: limit must be a number"}`, string(body))
}
