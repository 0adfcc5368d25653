package clustere2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestExemplarsAndMetadataAgainstPrometheus is internal/e2e's test of the
// same name on a cluster of 3 ingesters at replication factor 2: each
// series' exemplars and each family's metadata are on 2 of the 3, so the
// querier must merge replicas and spread. Prometheus is then stopped, every
// ingester is killed with SIGKILL and restarted, and the querier must
// answer the same from their WALs.
//
//	exporter ◀── scrape 1s ── prometheus ── remote write ──▶ dist-0 ──▶ ing-0..2 (RF=2) ◀── querier-0
func TestExemplarsAndMetadataAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t) // skip (or fail under CI) before starting anything
	const tenant = "team-ex"
	start := time.Now().Add(-time.Minute)
	exp := clustertest.StartExmetaExporter(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 2})
	q := c.Querier(0)
	p := clustertest.StartExmetaPrometheus(t, exp, c.Distributor(0).PushURL(), tenant)
	argusGet := func(path string, params url.Values) (int, []byte) {
		return q.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	want := clustertest.AwaitExmeta(t, p, argusGet, start)
	spread := 0
	for _, ing := range c.Ingesters() {
		if ing.Metric(t, "argus_ingester_exemplars_appended_total", nil) > 0 {
			spread++
		}
	}
	require.Greater(t, spread, 1, "exemplars on more than one ingester")

	p.Stop(t)
	killAndRestartIngesters(t, c)
	clustertest.Eventually(t, func() string {
		return clustertest.DiffExmeta(want, clustertest.GetExmeta(t, argusGet, start))
	}, 30*time.Second) // The querier's connections to the restarted ingesters come back.
}

// TestRemoteWrite2MetadataAgainstPrometheus is internal/e2e's test of the
// same name (text format) on a cluster of 3 ingesters at replication factor
// 2: each family's metadata, carried in its series, is on 2 of the 3, and
// the querier's /metadata (whole, with metric, limit and limit_per_metric)
// answers exactly as Prometheus's plus the metadata of Prometheus's scrape
// series, before and after every ingester is killed with SIGKILL and
// restarted.
//
//	exporter (text) ◀── scrape 1s ── prometheus ── remote write 2.0 ──▶ dist-0 ──▶ ing-0..2 (RF=2) ◀── querier-0
func TestRemoteWrite2MetadataAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const tenant = "rw2-meta"
	exp := clustertest.StartExmetaExporterFormat(t, clustertest.TextFormat)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 2})
	q := c.Querier(0)
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"exmeta": exp.HostPort()},
		NoSelfScrape:   true,
		RemoteWrite:    &clustertest.RemoteWrite{URL: c.Distributor(0).PushURL(), Tenant: tenant, ProtobufMessage: "io.prometheus.write.v2.Request"},
		Flags:          []string{"--enable-feature=metadata-wal-records"}, // Else no metadata over 2.0.
	})
	argusGet := func(path string, params url.Values) (int, []byte) {
		return q.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	_, argusWant := clustertest.AwaitRW2Metadata(t, promGet, argusGet)

	p.Stop(t)
	killAndRestartIngesters(t, c)
	clustertest.Eventually(t, func() string {
		return gocmp.Diff(argusWant, clustertest.GetRW2Metadata(t, argusGet))
	}, 30*time.Second) // The querier's connections to the restarted ingesters come back.
}

// TestRemoteWrite2ExemplarsAgainstPrometheus is internal/e2e's test of the
// same name on a cluster of 3 ingesters at replication factor 2: the real
// Prometheus sends the exporter's exemplars over remote write 2.0 (where
// they ride in the series, with symbol references for their labels), and the
// querier's query_exemplars (every series, and one selected) answers exactly
// as Prometheus's, before and after every ingester is killed with SIGKILL
// and restarted from its WAL.
//
//	exporter ◀── scrape 1s ── prometheus ── remote write 2.0 ──▶ dist-0 ──▶ ing-0..2 (RF=2) ◀── querier-0
func TestRemoteWrite2ExemplarsAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const tenant = "rw2-ex"
	start := time.Now().Add(-time.Minute)
	exp := clustertest.StartExmetaExporter(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 2})
	q := c.Querier(0)
	p := clustertest.StartExmetaPrometheusWith(t, exp, clustertest.RemoteWrite{URL: c.Distributor(0).PushURL(), Tenant: tenant,
		SendExemplars: true, ProtobufMessage: "io.prometheus.write.v2.Request"})
	exemplars := func(get func(string, url.Values) (int, []byte)) [2]any {
		ans := clustertest.GetExmeta(t, get, start)
		return [2]any{ans.Exemplars, ans.ExemplarsOne}
	}
	argusGet := func(path string, params url.Values) (int, []byte) {
		return q.Query(t, tenant, clustertest.PromAPI+path, params)
	}
	promGet := func(path string, params url.Values) (int, []byte) { return p.Query(t, "/api/v1"+path, params) }
	var want [2]any
	clustertest.Eventually(t, func() string {
		want = exemplars(promGet)
		if !strings.Contains(fmt.Sprint(want[0]), "req-7") { // StartExmetaPrometheusWith's last request
			return "prometheus has not scraped the last exemplar yet"
		}
		return gocmp.Diff(want, exemplars(argusGet))
	}, 60*time.Second)
	require.Len(t, want[0], 6, "the counter and the five histogram buckets with exemplars: %v", want[0])
	require.Len(t, want[1], 2, "%v", want[1])

	p.Stop(t)
	killAndRestartIngesters(t, c)
	clustertest.Eventually(t, func() string {
		return gocmp.Diff(want, exemplars(argusGet))
	}, 30*time.Second) // The querier's connections to the restarted ingesters come back.
}

// killAndRestartIngesters kills every ingester of c with SIGKILL, then
// restarts them all and waits for the ring to list them ACTIVE.
func killAndRestartIngesters(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	for _, ing := range c.Ingesters() {
		ing.Kill(t)
	}
	for _, ing := range c.Ingesters() {
		ing.Restart(t)
	}
	c.WaitRing(t, len(c.Ingesters()))
}
