package deploytest

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// failureOnlyMetrics are exported only while something fails, so a healthy
// test cluster has no series of them: a tenant whose storage failed. The
// test requires each to be a literal of the Go source instead, so that a
// rename still fails it.
var failureOnlyMetrics = []string{"argus_ingester_tenant_failed"}

// promtool returns the promtool built beside PROMETHEUS_BIN by
// scripts/install-tools.sh. When it is absent the test skips loudly, or
// fails under CI=true.
func promtool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(clustertest.PrometheusBinary(t)), "promtool")
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("!!!!!!!! promtool absent beside PROMETHEUS_BIN (%v): run scripts/install-tools.sh !!!!!!!!", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: refusing to skip)")
		}
		t.Skip(msg)
	}
	return bin
}

// TestMixin_Promtool: the alert rules pass `promtool check rules`, and the
// main alerts' unit tests (deploy/mixin/tests) pass `promtool test rules`.
func TestMixin_Promtool(t *testing.T) {
	bin := promtool(t)
	dir := mixinDir(t)
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "tests/alerts_test.yaml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, string(out), "SUCCESS", "promtool %s", strings.Join(args, " "))
		t.Logf("promtool %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
}

// TestMixin_MetricsExported: every metric the dashboards and alerts read is
// one that a running Argus exports. It runs a cluster of every role (three
// ingesters, a distributor, a querier, a scraper) and an all-in-one, gives
// them the traffic a real cluster has (pushes, a refused sample, queries, a
// scrape, an ingester lost), scrapes /metrics of each and compares names;
// a histogram counts as its _bucket, _sum and _count series.
func TestMixin_MetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test with real processes: skipped in -short mode")
	}
	used := map[string][]string{}
	for _, q := range allQueries(t) {
		for _, n := range metricNames(t, q) {
			used[n] = append(used[n], q.where)
		}
	}

	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1})
	aio := clustertest.StartArgus(t, clustertest.Options{})
	scraper := startSelfScraper(t, c.Distributor(0))
	now := time.Now().UnixMilli()
	for _, p := range []*clustertest.Process{c.Distributor(0).Process, aio} {
		series := []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "up", "job", "mixin"), Samples: []clustertest.Sample{{T: now, V: 1}}}}
		status, body := p.Push(t, "mixin", series)
		require.Equal(t, http.StatusNoContent, status, body)
		// An out-of-order sample: a refusal by the ingesters, counted by reason.
		series[0].Samples[0] = clustertest.Sample{T: now - 1000, V: 2}
		status, body = p.Push(t, "mixin", series)
		require.Equal(t, http.StatusBadRequest, status, body)
	}
	for _, p := range []*clustertest.Process{c.Querier(0).Process, aio} {
		status, body := p.Query(t, "mixin", "/prometheus/api/v1/query", url.Values{"query": {"up"}})
		require.Equal(t, http.StatusOK, status, string(body))
	}
	require.Eventually(t, func() bool {
		return c.Distributor(0).Metric(t, "argus_distributor_received_samples_total", map[string]string{"tenant": "argus-self"}) > 0
	}, time.Minute, 200*time.Millisecond, "the scraper pushed nothing")
	// An ingester lost: the distributor's pushes to it fail.
	c.Ingester(2).Kill(t)
	c.Distributor(0).Push(t, "mixin", []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "up", "job", "mixin2"), Samples: []clustertest.Sample{{T: now, V: 1}}}})

	exported := map[string]bool{}
	roles := map[string]*clustertest.Process{"ingester": c.Ingester(0).Process, "distributor": c.Distributor(0).Process,
		"querier": c.Querier(0).Process, "scraper": scraper, "all": aio}
	for role, p := range roles {
		fams := p.MetricFamilies(t)
		require.NotEmpty(t, fams, role)
		for name, f := range fams {
			for _, n := range seriesNames(name, f.GetType()) {
				exported[n] = true
			}
		}
	}
	root, err := RepoRoot()
	require.NoError(t, err)
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range used {
			if !yield(n) {
				return
			}
		}
	}) {
		switch {
		case exported[n]:
		case slices.Contains(externalMetrics, n):
		case slices.Contains(failureOnlyMetrics, n):
			require.True(t, sourceHasLiteral(t, root, n), "%s is no metric of the Go source", n)
		default:
			t.Errorf("%s (used by %s) is exported by no Argus role", n, strings.Join(slices.Compact(used[n]), "; "))
		}
	}
}

// seriesNames returns the names of the series of a family in the text
// format: a histogram's _bucket, _sum and _count, a summary's _sum and
// _count, besides the family's own name.
func seriesNames(name string, typ dto.MetricType) []string {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{name, name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// startSelfScraper starts a scraper that scrapes the distributor's own
// /metrics and pushes them to it as tenant argus-self.
func startSelfScraper(t *testing.T, d *clustertest.Member) *clustertest.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: argus
    static_configs:
      - targets: [%q]
`, d.HostPort())), 0o644))
	return clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=scraper", "-scraper.config-file=" + cfg, "-scraper.remote-write-url=" + d.PushURL(), "-scraper.tenant=argus-self",
	}})
}

// sourceHasLiteral reports whether a non-test Go file of the repository
// holds the string literal "name".
func sourceHasLiteral(t *testing.T, root, name string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), `"`+name+`"`) {
			found = true
		}
		return err
	})
	require.NoError(t, err)
	return found
}
