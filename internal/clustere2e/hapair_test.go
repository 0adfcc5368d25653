package clustere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestHAPair runs a Prometheus HA pair, two real Prometheus servers with
// external labels {cluster="c1", __replica__="r1"|"r2"} scraping the same
// exporter every second, each remote-writing to its own distributor of a
// cluster (1 ingester, 2 distributors, 1 querier) with HA tracking on and a
// failover timeout of 3s:
//
//	exporter ◀──scrape 1s── r1 ──remote write──▶ dist-0 ─┐
//	exporter ◀──scrape 1s── r2 ──remote write──▶ dist-1 ─┴─▶ ing-0 ◀── querier-0
//	dist-0 ◀──memberlist gossip: the election of (team-ha, c1)──▶ dist-1
//
// r1 starts first and is elected through dist-0; r2's pushes reach dist-1,
// which has the election only by gossip, and are answered 202 and dropped.
// The querier sees one copy of every series: the series r2 itself stores,
// with the cluster label and without the replica label. Then r1 is killed
// (SIGKILL): r2 is elected once r1 has sent nothing for the failover
// timeout, and the stored samples of each series have no gap longer than
// the bound derived below and never two replicas' samples interleaved.
func TestHAPair(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	const (
		tenant   = "team-ha"
		scrape   = time.Second
		failover = 3 * time.Second
		// batchDeadline is the harness's queue_config.batch_send_deadline:
		// the longest a scraped sample waits in Prometheus before it is sent.
		batchDeadline = time.Second
	)
	exporter := startHAExporter(t)
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 1, Distributors: 2, Queriers: 1, RF: 1, ExtraFlags: []string{
		"-distributor.ha-tracker.enable=true",
		"-distributor.ha-tracker.enable-for-all-users=true",
		"-distributor.ha-tracker.failover-timeout=" + failover.String(),
		"-distributor.ha-tracker.update-timeout=500ms",
		"-distributor.ha-tracker.update-timeout-jitter-max=0s",
	}})
	q := c.Querier(0)
	startReplica := func(replica string, d *clustertest.Member) *clustertest.Prometheus {
		return clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
			ScrapeInterval: scrape, NoSelfScrape: true,
			ScrapeTargets:  map[string]string{"exporter": exporter},
			RemoteWrite:    &clustertest.RemoteWrite{URL: d.PushURL(), Tenant: tenant},
			ExternalLabels: map[string]string{"cluster": "c1", "__replica__": replica},
		})
	}

	r1 := startReplica("r1", c.Distributor(0))
	for _, d := range []*clustertest.Member{c.Distributor(0), c.Distributor(1)} {
		waitElected(t, d, tenant, "r1")
	}
	r2 := startReplica("r2", c.Distributor(1))
	dedupedBy := func(d *clustertest.Member) float64 {
		return d.Metric(t, "argus_distributor_deduped_samples_total", map[string]string{"tenant": tenant, "cluster": "c1"})
	}
	clustertest.Eventually(t, func() string {
		if n := dedupedBy(c.Distributor(1)); n < 20 {
			return fmt.Sprintf("dist-1 dropped %v samples of r2, want at least 20", n)
		}
		return ""
	}, 60*time.Second)
	require.Zero(t, dedupedBy(c.Distributor(0)), "r1 is elected: dist-0 drops nothing")
	// The 202 is a success for Prometheus: r2 sent everything, failed nothing.
	require.Positive(t, r2.Metric(t, "prometheus_remote_storage_samples_total", nil))
	require.Zero(t, r2.Metric(t, "prometheus_remote_storage_samples_failed_total", nil))
	require.Zero(t, r2.Metric(t, "prometheus_remote_storage_samples_retried_total", nil))

	// One copy: the series r2 stores itself, plus the cluster label.
	requireOneCopy(t, q, r2, tenant)

	r1.Kill(t)
	killed := time.Now()
	for _, d := range []*clustertest.Member{c.Distributor(1), c.Distributor(0)} {
		waitElected(t, d, tenant, "r2")
	}
	t.Logf("r2 elected on both distributors %v after r1 was killed", time.Since(killed).Round(time.Millisecond))
	require.Equal(t, 1.0, c.Distributor(1).Metric(t, "argus_ha_tracker_elected_replica_changes_total", map[string]string{"tenant": tenant, "cluster": "c1"}))
	// A few pushes of r2 after the failover.
	time.Sleep(5 * scrape)
	requireOneCopy(t, q, r2, tenant)

	// The largest gap: r1's last stored sample L was sent by a push at
	// most one scrape interval later (its batch holds the samples scraped
	// since the previous push). That push, or one before it within the
	// update timeout, was recorded as r1's last (R ≤ push time). r2 is
	// elected by its first push more than the failover timeout after R,
	// at most one batch deadline later, and that push carries samples
	// scraped before it. So the gap is at most scrape + failover + batch
	// deadline; one more scrape interval absorbs a scrape or a push that
	// the loaded machine delays.
	maxGap := scrape + failover + batchDeadline + scrape
	for _, metric := range []string{"ha_demo_scrapes_total", "up"} {
		code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{
			"query": {fmt.Sprintf(`%s{job="exporter"}[10m]`, metric)}, "time": {clustertest.FormatAPITime(time.Now().UnixMilli())}})
		ss := clustertest.MatrixData(t, code, body)
		require.Len(t, ss, 1, "%s: one series", metric)
		require.Equal(t, map[string]string{"__name__": metric, "cluster": "c1", "instance": exporter, "job": "exporter"}, ss[0].Metric)
		gap, n, span := gapsOf(ss[0].Samples)
		t.Logf("%s: %d samples over %v, largest gap %v (bound %v)", metric, n, span, gap, maxGap)
		require.LessOrEqual(t, gap, maxGap, "%s: a gap longer than the failover allows", metric)
		// No double counting: one replica scrapes on a ticker (a scrape
		// may be late, less than an interval, the next is on time), so n
		// samples span more than n-2 intervals; the failover only adds a
		// gap. Both replicas' samples interleaved over the ~10s they both
		// ran would be about 10 more.
		require.LessOrEqual(t, n, int(span/scrape)+2, "%s: more samples than one replica scrapes", metric)
	}
}

// startHAExporter serves a client_golang registry on 127.0.0.1 and
// returns its host:port: a counter of the scrapes it answered (from either
// replica) and a constant gauge.
func startHAExporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	scrapes := prometheus.NewCounter(prometheus.CounterOpts{Name: "ha_demo_scrapes_total", Help: "Scrapes answered."})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ha_demo_info", Help: "A constant."}, []string{"kind"})
	info.WithLabelValues("demo").Set(1)
	reg.MustRegister(scrapes, info)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes.Inc()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// waitElected waits until distributor d's /distributor/ha_tracker shows
// replica elected for (tenant, c1).
func waitElected(t *testing.T, d *clustertest.Member, tenant, replica string) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		req, err := http.NewRequest(http.MethodGet, d.URL()+"/distributor/ha_tracker", nil)
		require.NoError(t, err)
		code, body := d.Do(t, req)
		if code != http.StatusOK {
			return fmt.Sprintf("%s: /distributor/ha_tracker answered %d: %s", d.ID(), code, body)
		}
		var st struct {
			Elections []struct{ Tenant, Cluster, Replica string }
		}
		require.NoError(t, json.Unmarshal(body, &st))
		for _, e := range st.Elections {
			if e.Tenant == tenant && e.Cluster == "c1" && e.Replica == replica {
				return ""
			}
		}
		return fmt.Sprintf("%s does not show %s elected: %s", d.ID(), replica, body)
	}, 60*time.Second)
}

// requireOneCopy requires that the querier holds, for the exporter's job,
// exactly the series Prometheus p holds, each with cluster="c1" added and
// no replica label.
func requireOneCopy(t *testing.T, q *clustertest.Member, p *clustertest.Prometheus, tenant string) {
	t.Helper()
	params := url.Values{"match[]": {`{job="exporter"}`}, "start": {clustertest.FormatAPITime(time.Now().Add(-10 * time.Minute).UnixMilli())}}
	want := seriesKeys(t, p.Query, "/api/v1/series", params)
	for i := range want {
		want[i] = strings.Replace(want[i], "{", `{cluster="c1",`, 1)
	}
	slices.Sort(want)
	require.NotEmpty(t, want)
	clustertest.Eventually(t, func() string {
		got := seriesKeys(t, func(t testing.TB, path string, params url.Values) (int, []byte) {
			return q.Query(t, tenant, path, params)
		}, clustertest.PromAPI+"/series", params)
		if !slices.Equal(want, got) {
			return fmt.Sprintf("series:\nargus      %v\nprometheus %v", got, want)
		}
		return ""
	}, 30*time.Second)
}

// seriesKeys asks path (a /api/v1/series) and returns each series as
// {name="value",...} with its labels sorted, __name__ first, sorted.
func seriesKeys(t testing.TB, query func(testing.TB, string, url.Values) (int, []byte), path string, params url.Values) []string {
	t.Helper()
	code, body := query(t, path, params)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var data []map[string]string
	require.NoError(t, json.Unmarshal(clustertest.DecodeAPI(t, body).Data, &data))
	var out []string
	for _, m := range data {
		names := make([]string, 0, len(m))
		for n := range m {
			if n != "__name__" {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		var b strings.Builder
		b.WriteString(m["__name__"] + "{")
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", n, m[n])
		}
		b.WriteByte('}')
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

// gapsOf returns the largest distance between consecutive samples, their
// number and the time from the first to the last.
func gapsOf(ss []clustertest.Sample) (gap time.Duration, n int, span time.Duration) {
	for i := 1; i < len(ss); i++ {
		gap = max(gap, time.Duration(ss[i].T-ss[i-1].T)*time.Millisecond)
	}
	if len(ss) > 0 {
		span = time.Duration(ss[len(ss)-1].T-ss[0].T) * time.Millisecond
	}
	return gap, len(ss), span
}
