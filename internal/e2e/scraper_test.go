package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// exporter is a client_golang exporter on 127.0.0.1 whose metrics never
// change (so any two scrapers store equal values), counting its scrapes.
type exporter struct {
	srv     *httptest.Server
	scrapes atomic.Int64
}

func (e *exporter) addr() string { return strings.TrimPrefix(e.srv.URL, "http://") }

func startExporter(t *testing.T, i int) *exporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "scrape_test_value", Help: "A constant gauge."}, []string{"kind"})
	g.WithLabelValues("a").Set(float64(i) * 1.5)
	g.WithLabelValues("b").Set(-float64(i))
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "scrape_test_total", Help: "A constant counter."})
	c.Add(float64(10 * i))
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "scrape_test_seconds", Help: "A constant histogram.", Buckets: []float64{0.5, 1, 5}})
	h.Observe(0.1 * float64(i))
	h.Observe(2)
	reg.MustRegister(g, c, h)
	e := &exporter{}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.scrapes.Add(1)
		metrics.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// writeFileAtomic replaces path with data, as file_sd expects (no partial reads).
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// seriesSet returns the label sets of every series matching match in the
// last hour, rendered and sorted.
func seriesSet(t *testing.T, get func(path string, params url.Values) (int, []byte), match string) []string {
	t.Helper()
	now := time.Now()
	code, body := get(clustertest.PromAPI+"/series", url.Values{
		"match[]": {match}, "start": {clustertest.FormatAPITime(now.Add(-time.Hour).UnixMilli())}, "end": {clustertest.FormatAPITime(now.UnixMilli())},
	})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var r struct {
		Data []map[string]string `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	out := make([]string, 0, len(r.Data))
	for _, m := range r.Data {
		out = append(out, fmt.Sprint(m))
	}
	slices.Sort(out)
	return out
}

// vector returns an instant query's result as "labels value" lines, sorted.
func vector(t *testing.T, get func(path string, params url.Values) (int, []byte), query string) []string {
	t.Helper()
	code, body := get(clustertest.PromAPI+"/query", url.Values{"query": {query}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	out := []string{}
	for _, s := range r.Data.Result {
		out = append(out, fmt.Sprint(s.Metric, " ", s.Value[1]))
	}
	slices.Sort(out)
	return out
}

func argusGet(t *testing.T, a *clustertest.Process, tenant string) func(string, url.Values) (int, []byte) {
	return func(path string, params url.Values) (int, []byte) { return a.Query(t, tenant, path, params) }
}

func promGet(t *testing.T, p *clustertest.Prometheus) func(string, url.Values) (int, []byte) {
	return func(path string, params url.Values) (int, []byte) {
		return p.Query(t, strings.Replace(path, clustertest.PromAPI, "/api/v1", 1), params)
	}
}

// TestScraperMatchesPrometheus runs one configuration (static targets with
// target and metric relabelling, a job relabelling drops, a file_sd job
// whose targets go to another tenant through __tenant__) in Argus's scraper
// and in the real Prometheus, and requires the same series with the same
// values. Then it changes the file_sd targets: the new one is scraped, the
// removed one's series go stale.
func TestScraperMatchesPrometheus(t *testing.T) {
	skipIfShort(t)
	ex := []*exporter{startExporter(t, 1), startExporter(t, 2), startExporter(t, 3), startExporter(t, 4)}
	dir := t.TempDir()
	sdFile := filepath.Join(dir, "targets.json")
	writeFileAtomic(t, sdFile, fmt.Sprintf(`[{"targets": [%q], "labels": {"zone": "z1"}}]`, ex[2].addr()))
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: static
    static_configs:
      - targets: [%q, %q]
        labels: {env: test}
    relabel_configs:
      - source_labels: [__address__]
        regex: '127\.0\.0\.1:(\d+)'
        target_label: port
        replacement: 'p$1'
    metric_relabel_configs:
      - source_labels: [kind]
        regex: b
        action: drop
  - job_name: dropped
    static_configs:
      - targets: [%q]
    relabel_configs:
      - action: drop
        source_labels: [__address__]
        regex: '.*'
  - job_name: filesd
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
    relabel_configs:
      - target_label: __tenant__
        replacement: team-b
`, ex[0].addr(), ex[1].addr(), ex[3].addr(), sdFile)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))

	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-scraper.config-file=" + cfgPath}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{ConfigYAML: cfg})
	anon, teamB, prom := argusGet(t, a, "anonymous"), argusGet(t, a, "team-b"), promGet(t, p)

	all := `{job=~".+"}`
	clustertest.Eventually(t, func() string {
		want := seriesSet(t, prom, all)
		got := append(seriesSet(t, anon, all), seriesSet(t, teamB, all)...)
		slices.Sort(got)
		if len(want) < 2*(5+6+5) { // per target: 5 report series, gauge, counter, 5 histogram series
			return fmt.Sprintf("prometheus has %d series so far", len(want))
		}
		return cmp.Diff(want, got)
	}, 30*time.Second)
	require.Empty(t, cmp.Diff([]string{}, seriesSet(t, anon, `{job="filesd"}`)), "the file_sd job's tenant is team-b")
	require.Empty(t, cmp.Diff([]string{}, seriesSet(t, teamB, `{job="static"}`)))
	require.Empty(t, seriesSet(t, prom, `{job="dropped"}`))
	for _, q := range []string{`scrape_test_value`, `scrape_test_total`, `scrape_test_seconds_bucket`, `scrape_test_seconds_sum`, `up`} {
		want := vector(t, prom, q)
		got := append(vector(t, anon, q), vector(t, teamB, q)...)
		slices.Sort(got)
		require.Empty(t, cmp.Diff(want, got), q)
		require.NotEmpty(t, want, q)
	}
	t.Logf("argus and prometheus hold the same %d series with the same values", len(seriesSet(t, prom, all)))
	requireSameTargets(t, prom, anon, teamB)

	// file_sd: exporter 3 is replaced by exporter 2.
	writeFileAtomic(t, sdFile, fmt.Sprintf(`[{"targets": [%q], "labels": {"zone": "z1"}}]`, ex[1].addr()))
	clustertest.Eventually(t, func() string {
		got := vector(t, teamB, `up{job="filesd"}`)
		want := []string{fmt.Sprintf("map[__name__:up instance:%s job:filesd zone:z1] 1", ex[1].addr())}
		return cmp.Diff(want, got)
	}, 30*time.Second)
	require.Empty(t, vector(t, teamB, fmt.Sprintf(`scrape_test_value{instance=%q}`, ex[2].addr())),
		"the removed target's series are stale at once (staleness markers), not after the lookback delta")
}

// TestScraperReload reloads the configuration with POST /-/reload and
// SIGHUP, good files and bad ones: a bad one is refused with its error and
// the running configuration keeps scraping.
func TestScraperReload(t *testing.T) {
	skipIfShort(t)
	ex := []*exporter{startExporter(t, 1), startExporter(t, 2), startExporter(t, 3)}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	job := func(name string, e *exporter) string {
		return fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", name, e.addr())
	}
	head := "global:\n  scrape_interval: 1s\nscrape_configs:\n"
	writeFileAtomic(t, cfgPath, head+job("a", ex[0]))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-scraper.config-file=" + cfgPath, "-auth.multitenancy-enabled=false"}})
	get := argusGet(t, a, "")
	jobsUp := func(want ...string) func() string {
		return func() string {
			var got []string
			for _, line := range vector(t, get, `up == 1`) {
				for _, j := range want {
					if strings.Contains(line, "job:"+j+"]") {
						got = append(got, j)
					}
				}
			}
			slices.Sort(got)
			return cmp.Diff(want, got)
		}
	}
	clustertest.Eventually(t, jobsUp("a"), 30*time.Second)

	reload := func() (int, string) {
		req, err := http.NewRequest(http.MethodPost, a.URL()+"/-/reload", nil)
		require.NoError(t, err)
		code, body := a.Do(t, req)
		return code, string(body)
	}
	writeFileAtomic(t, cfgPath, head+job("a", ex[0])+job("b", ex[1]))
	code, body := reload()
	require.Equal(t, http.StatusOK, code, body)
	clustertest.Eventually(t, jobsUp("a", "b"), 30*time.Second)

	// Unknown field: refused, a and b keep being scraped.
	writeFileAtomic(t, cfgPath, head+job("a", ex[0])+"    scrape_intervall: 5s\n")
	code, body = reload()
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "err-argus-invalid-scrape-config")
	require.Contains(t, body, "scrape_intervall")
	require.Equal(t, 0.0, a.Metric(t, "argus_scraper_config_last_reload_successful", nil))
	before := ex[1].scrapes.Load()
	clustertest.Eventually(t, func() string {
		if n := ex[1].scrapes.Load(); n < before+2 {
			return fmt.Sprintf("job b scraped %d times since the refused reload", n-before)
		}
		return ""
	}, 30*time.Second)

	// SIGHUP with a good file, then with a bad relabelling regex.
	writeFileAtomic(t, cfgPath, head+job("a", ex[0])+job("c", ex[2]))
	require.NoError(t, syscall.Kill(a.PID(), syscall.SIGHUP))
	clustertest.Eventually(t, jobsUp("a", "c"), 30*time.Second)
	// Job b is gone: its exporter is scraped no more. (Like Prometheus, a
	// removed job gets no staleness markers: its scrape pool's context ends
	// before its loops could write them.)
	stopped := ex[1].scrapes.Load()
	time.Sleep(3 * time.Second)
	require.Equal(t, stopped, ex[1].scrapes.Load(), "job b is still scraped after its removal")
	writeFileAtomic(t, cfgPath, head+job("a", ex[0])+"    relabel_configs:\n      - {source_labels: [job], regex: '([', target_label: x}\n")
	require.NoError(t, syscall.Kill(a.PID(), syscall.SIGHUP))
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_scraper_config_reloads_total", map[string]string{"outcome": "failure"}); n != 2 {
			return fmt.Sprintf("%v failed reloads", n)
		}
		return ""
	}, 10*time.Second)
	require.Contains(t, a.Log(t), "missing closing ]")
	before = ex[2].scrapes.Load()
	clustertest.Eventually(t, func() string {
		if n := ex[2].scrapes.Load(); n < before+2 {
			return fmt.Sprintf("job c scraped %d times since the refused SIGHUP", n-before)
		}
		return ""
	}, 30*time.Second)
	require.Equal(t, 0.0, a.Metric(t, "argus_scraper_config_last_reload_successful", nil))
}

// targetsAnswer decodes /api/v1/targets without the fields that differ by
// nature (times, the global URL, which Prometheus derives from its own host
// name) and with Argus's extra field scraper checked and removed.
func targetsAnswer(t *testing.T, get func(string, url.Values) (int, []byte)) (active []map[string]any, dropped []any, counts map[string]any) {
	t.Helper()
	code, body := get(clustertest.PromAPI+"/targets", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets       []map[string]any `json:"activeTargets"`
			DroppedTargets      []any            `json:"droppedTargets"`
			DroppedTargetCounts map[string]any   `json:"droppedTargetCounts"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	require.Equal(t, "success", r.Status)
	for _, at := range r.Data.ActiveTargets {
		if sc, ok := at["scraper"]; ok {
			require.Equal(t, "local", sc, "the all-in-one scraper owns every target")
			delete(at, "scraper")
		}
		for _, k := range []string{"lastScrape", "lastScrapeDuration", "globalUrl"} {
			require.Contains(t, at, k)
			delete(at, k)
		}
	}
	return r.Data.ActiveTargets, r.Data.DroppedTargets, r.Data.DroppedTargetCounts
}

// requireSameTargets requires Argus's targets API (both tenants' active
// targets) to answer what Prometheus's does.
func requireSameTargets(t *testing.T, prom, anon, teamB func(string, url.Values) (int, []byte)) {
	t.Helper()
	pa, pd, pc := targetsAnswer(t, prom)
	aa, ad, ac := targetsAnswer(t, anon)
	ba, bd, bc := targetsAnswer(t, teamB)
	got := append(aa, ba...)
	key := func(m map[string]any) string { return fmt.Sprint(m["scrapePool"], m["scrapeUrl"]) }
	slices.SortFunc(got, func(x, y map[string]any) int { return strings.Compare(key(x), key(y)) })
	slices.SortFunc(pa, func(x, y map[string]any) int { return strings.Compare(key(x), key(y)) })
	require.Empty(t, cmp.Diff(pa, got), "active targets (-prometheus +argus)")
	require.Len(t, got, 3)
	require.Empty(t, cmp.Diff(pd, ad), "dropped targets")
	require.Empty(t, cmp.Diff(pd, bd))
	require.Empty(t, cmp.Diff(pc, ac), "dropped target counts")
	require.Empty(t, cmp.Diff(pc, bc))
	require.Len(t, pd, 1)

	code, pm := prom("/api/v1/targets/metadata", url.Values{"metric": {"scrape_test_value"}})
	require.Equal(t, http.StatusOK, code)
	code, am := anon(clustertest.PromAPI+"/targets/metadata", url.Values{"match_target": {`{job="static"}`}, "metric": {"scrape_test_value"}})
	require.Equal(t, http.StatusOK, code)
	var pr, ar struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(pm, &pr))
	require.NoError(t, json.Unmarshal(am, &ar))
	var want []map[string]any
	for _, m := range pr.Data {
		if m["target"].(map[string]any)["job"] == "static" {
			want = append(want, m)
		}
	}
	key2 := func(m map[string]any) string { return fmt.Sprint(m["target"]) }
	slices.SortFunc(want, func(x, y map[string]any) int { return strings.Compare(key2(x), key2(y)) })
	slices.SortFunc(ar.Data, func(x, y map[string]any) int { return strings.Compare(key2(x), key2(y)) })
	require.Len(t, want, 2)
	require.Empty(t, cmp.Diff(want, ar.Data), "targets/metadata (-prometheus +argus)")
}
