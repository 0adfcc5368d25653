package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"exmeta": exp.HostPort()},
		NoSelfScrape:   true,
		RemoteWrite:    &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant, SendExemplars: true, MetadataSendInterval: time.Second},
		Flags:          []string{"--enable-feature=exemplar-storage"},
	})
	// Exemplars over a few scrapes: some are scraped, some overwritten
	// before a scrape; both servers see the same scrapes.
	for k := range 8 {
		exp.Observe(k)
		time.Sleep(600 * time.Millisecond) // Paced to spread exemplars over scrapes: a wall-clock schedule, nothing to poll.
	}
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	argusGet := func(path string, params url.Values) (int, []byte) {
		return a.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	// Wait for Prometheus to have scraped the last round, then for Argus to
	// have every exemplar and entry it has.
	var want clustertest.ExmetaAnswers
	clustertest.Eventually(t, func() string {
		want = clustertest.GetExmeta(t, promGet, start)
		if !strings.Contains(fmt.Sprint(want.Exemplars), "req-7") {
			return "prometheus has not scraped the last exemplar yet"
		}
		return clustertest.DiffExmeta(want, clustertest.GetExmeta(t, argusGet, start))
	}, 60*time.Second)
	clustertest.RequireExmetaShape(t, want, 7)
	t.Logf("equal on both: %d series with exemplars, %d metric families", len(want.Exemplars.([]any)), len(want.Metadata.(map[string]any)))

	// Durability: nothing is resent once Prometheus is gone.
	p.Stop(t)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffExmeta(want, clustertest.GetExmeta(t, argusGet, start)), "after kill -9 and restart")
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/metadata", url.Values{"limit": {"x"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.JSONEq(t, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`, string(body))
}
