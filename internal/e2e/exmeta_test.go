package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
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

// TestRemoteWrite2MetadataAgainstPrometheus has the real Prometheus 3.16
// scrape a client_golang exporter (counters, a counter vector, a gauge, a
// classic histogram, a summary, the Go and process collectors, with HELP
// and units) and remote-write 2.0 to Argus, where metadata travels in each
// series as symbol references and names no metric family. Served in the
// Prometheus text format (client_golang's default), /metadata (whole, with
// metric, limit and limit_per_metric) answers exactly as Prometheus's, plus
// the metadata of Prometheus's own scrape series (up, scrape_*), which
// remote write 2.0 carries and Prometheus's /metadata does not list, on the
// all-in-one, and again after Prometheus is stopped and Argus killed with
// SIGKILL and restarted. Served as OpenMetrics, Prometheus names a
// counter's family without _total and Argus can only name it after the
// series (docs/api.md): the exporter's families differ by exactly that.
func TestRemoteWrite2MetadataAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	prom := map[string]*clustertest.Prometheus{}
	for tenant, format := range map[string]clustertest.ExpositionFormat{"text": clustertest.TextFormat, "om": clustertest.OpenMetrics} {
		exp := clustertest.StartExmetaExporterFormat(t, format)
		prom[tenant] = clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
			ScrapeInterval: time.Second,
			ScrapeTargets:  map[string]string{"exmeta": exp.HostPort()},
			NoSelfScrape:   true,
			RemoteWrite:    &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant, ProtobufMessage: "io.prometheus.write.v2.Request"},
			// Without it Prometheus sends no metadata over remote write 2.0.
			Flags: []string{"--enable-feature=metadata-wal-records"},
		})
	}
	argusGet := func(tenant string) func(string, url.Values) (int, []byte) {
		return func(path string, params url.Values) (int, []byte) {
			return a.Query(t, tenant, clustertest.PromAPI+path, params)
		}
	}
	promGet := func(tenant string) func(string, url.Values) (int, []byte) {
		return func(path string, params url.Values) (int, []byte) {
			return prom[tenant].Query(t, "/api/v1"+path, params)
		}
	}
	queries := clustertest.RW2MetadataQueries
	want, argusWant := clustertest.AwaitRW2Metadata(t, promGet("text"), argusGet("text"))
	md := fmt.Sprint(want[0])
	for _, family := range []string{
		"exmeta_requests_total:[map[help:Requests served, with a trace exemplar. type:counter unit:]]",
		"exmeta_errors_total:[map[help:Errors by code. type:counter unit:]]",
		"exmeta_latency_seconds:[map[help:Request latency. type:histogram unit:]]",
		"exmeta_rpc_seconds:[map[help:RPC latency. type:summary unit:]]",
		"exmeta_temperature_celsius:[map[help:Room temperature. type:gauge unit:]]",
		"go_gc_duration_seconds:[map[help:",
	} {
		require.Contains(t, md, family)
	}
	for k, q := range queries[1:4] {
		require.Len(t, want[1+k], 1, "%v", q)
	}
	t.Logf("text format: %d families equal", len(want[0]))

	// Limit: any n families of the whole answer, as Prometheus picks them
	// in map order.
	for server, get := range map[string]func(string, url.Values) (int, []byte){"prometheus": promGet("text"), "argus": argusGet("text")} {
		whole := map[string][]map[string]any{"prometheus": want, "argus": argusWant}[server][0]
		got := clustertest.GetMetadata(t, get, url.Values{"limit": {"3"}})
		require.Len(t, got, 3, server)
		for family, entries := range got {
			require.Equal(t, whole[family], entries, "%s: %s", server, family)
		}
	}

	// OpenMetrics: the counters' families named without _total by
	// Prometheus, with it by Argus; everything else of the exporter's
	// families equal. (Not the Go collector's: its go_memstats_alloc_bytes
	// is a gauge and, without _total, a counter, one of which Prometheus's
	// /metadata loses in OpenMetrics.)
	var omWant map[string]any
	clustertest.Eventually(t, func() string {
		omWant = clustertest.GetMetadata(t, promGet("om"), nil)
		if _, ok := omWant["exmeta_rpc_seconds"]; !ok || len(omWant) < 30 {
			return fmt.Sprintf("prometheus has not scraped every family yet: %d", len(omWant))
		}
		renamed := map[string]any{}
		for family, entries := range omWant {
			if !strings.HasPrefix(family, "exmeta_") {
				continue
			}
			for _, e := range entries.([]any) { // go_memstats_alloc_bytes is a counter and a gauge
				name := family
				if e.(map[string]any)["type"] == "counter" {
					name += "_total"
				}
				list, _ := renamed[name].([]any)
				renamed[name] = append(list, e) // Sorted: a sorted list's subsequence.
			}
		}
		got := map[string]any{}
		for family, entries := range clustertest.GetMetadata(t, argusGet("om"), nil) {
			if strings.HasPrefix(family, "exmeta_") {
				got[family] = entries
			}
		}
		return gocmp.Diff(renamed, got)
	}, 60*time.Second)
	require.Contains(t, fmt.Sprint(omWant), "exmeta_requests:[map[help:Requests served, with a trace exemplar. type:counter unit:]]")
	require.Contains(t, fmt.Sprint(omWant), "exmeta_latency_seconds:[map[help:Request latency. type:histogram unit:seconds]]")

	// Durability: nothing is resent once Prometheus is gone.
	for _, p := range prom {
		p.Stop(t)
	}
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, gocmp.Diff(argusWant, clustertest.GetRW2Metadata(t, argusGet("text"))), "after kill -9 and restart")
}

// TestRemoteWrite2ExemplarsAgainstPrometheus is
// TestExemplarsAndMetadataAgainstPrometheus's exemplar half in remote write
// 2.0, where exemplars travel inside their series with symbol references:
// query_exemplars (all, and for a PromQL expression) answers exactly as
// Prometheus's, and again after Prometheus is stopped and Argus is killed
// with SIGKILL and restarted.
func TestRemoteWrite2ExemplarsAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "rw2-ex"
	start := time.Now().Add(-time.Minute)
	exp := clustertest.StartExmetaExporter(t)
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartExmetaPrometheusWith(t, exp, clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant, SendExemplars: true,
		ProtobufMessage: "io.prometheus.write.v2.Request"})
	argusGet := func(path string, params url.Values) (int, []byte) {
		return a.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	exemplars := func(get func(string, url.Values) (int, []byte)) [2]any {
		ans := clustertest.GetExmeta(t, get, start)
		return [2]any{ans.Exemplars, ans.ExemplarsOne}
	}
	last := fmt.Sprintf("req-%d", 7) // StartExmetaPrometheusWith's last request
	var want [2]any
	clustertest.Eventually(t, func() string {
		want = exemplars(promGet)
		if !strings.Contains(fmt.Sprint(want[0]), last) {
			return "prometheus has not scraped the last exemplar yet"
		}
		return gocmp.Diff(want, exemplars(argusGet))
	}, 60*time.Second)
	require.Len(t, want[0], 6, "the counter and the five histogram buckets with exemplars: %v", want[0])
	require.Len(t, want[1], 2, "%v", want[1])

	p.Stop(t)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, gocmp.Diff(want, exemplars(argusGet)), "after kill -9 and restart")
}
