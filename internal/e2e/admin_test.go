package e2e

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestDeleteSeriesEquivalence runs the real Prometheus 3.16 (with
// --web.enable-admin-api) scraping itself and argus and remote-writing
// everything to argus (with -api.enable-admin-api), as
// TestPrometheusEquivalence does. Once the raw samples of (W0, End] are
// identical, both get the same delete_series calls, with each matcher kind
// and several ranges inside the window; then the raw samples of the window
// and a set of queries must answer identically, and again after argus is
// killed (-9) right after the last 204 and restarted (the tombstones are
// durable), once the window's chunks are persisted (the DB masks them), and
// after clean_tombstones on both (then a kill -9 again: the WAL must not
// bring deleted samples back).
//
// Prometheus 3.16 panics ("index out of range" in tombstones.Intervals.Add,
// called by blockBaseSeriesSet.Next) when a read trims a series' chunks at
// both ends of its range and the series has a tombstone that starts after
// the read's start and ends at or after its end (docs/deletion.md). Each
// series here gets at most one deletion, and every read starts before
// Prometheus's first sample: the raw samples
// are read over 10 minutes and cut to the window here, and the queries use
// instant selectors only (their 5-minute look-back starts before it).
func TestDeleteSeriesEquivalence(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "team-a"
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-api.enable-admin-api=true", "-ingester.flush-period=1s"}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": a.HostPort()},
		RemoteWrite:    &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: tenant},
		Flags:          []string{"--web.enable-admin-api"},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 20*time.Second, 30*time.Second, 30*time.Second)
	w.SleepPastEnd()
	at := clustertest.RequireRawEqual(t, p, a, tenant, w.W0, w.End)

	sec := func(tm time.Time) string { return clustertest.FormatAPITime(tm.UnixMilli()) }
	// Every range ends by End, so that what both keep appending afterwards
	// is not deleted (each clamps an open end differently: Prometheus per
	// series, argus to the newest matching series), and starts after E0, so that an instant
	// selector in a deleted range falls back to a sample of the window.
	deletions := []url.Values{
		{"match[]": {`up{job="argus"}`}, "start": {sec(w.E0.Add(5 * time.Second))}, "end": {sec(w.E0.Add(15 * time.Second))}},
		{"match[]": {`{__name__=~"go_gc_.*", job!="prometheus"}`}, "start": {sec(w.E0)}, "end": {at}},
		{"match[]": {`{__name__=~"process_.*", job!~"argus|x"}`}, "end": {at}},
		{"match[]": {`scrape_duration_seconds`, `scrape_samples_scraped{job="prometheus"}`}, "start": {sec(w.E0.Add(10 * time.Second))}, "end": {sec(w.E0.Add(12 * time.Second))}},
	}
	processes := `count({__name__=~"process_.*", job="prometheus"})`
	require.NotEmpty(t, promVector(t, p, processes, at), "the deletions must have something to delete")
	for _, d := range deletions {
		code, body := p.QueryPost(t, "/api/v1/admin/tsdb/delete_series", d)
		require.Equal(t, http.StatusNoContent, code, "prometheus: %s", body)
		code, body = a.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/delete_series", d)
		require.Equal(t, http.StatusNoContent, code, "argus: %s", body)
	}
	require.Empty(t, promVector(t, p, processes, at), "prometheus deleted the series")

	queries := []string{
		`up`,
		`timestamp(up)`,
		`count by (__name__, job) ({__name__=~"go_gc_.*"})`,
		`count by (job) ({__name__=~"process_.*"})`,
		`scrape_duration_seconds`,
		`timestamp(scrape_samples_scraped)`,
	}
	compare := func(t *testing.T) {
		requireWindowEqual(t, p, a, tenant, w.W0, w.End)
		for _, q := range queries {
			d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query", url.Values{"query": {q}, "time": {at}}, true)
			require.Empty(t, d, "instant %s (-prometheus +argus)", q)
			require.Positive(t, n, "instant %s: prometheus's answer is empty", q)
			params := url.Values{"query": {q}, "start": {sec(w.E0)}, "end": {at}, "step": {"1s"}}
			d, _ = clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
			require.Empty(t, d, "range %s (-prometheus +argus)", q)
		}
	}
	t.Run("after deletion", compare)
	a.Kill(t)
	a.Restart(t)
	t.Run("after kill -9 and restart", compare)

	// Chunks are cut at 120 samples, two minutes at this scrape interval:
	// wait until most series have their first chunk, which holds the window,
	// in the DB (flushed every second), which must mask it as the head did.
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_chunks_persisted_total", nil); n < 1000 {
			return fmt.Sprintf("%v chunks persisted", n)
		}
		return ""
	}, 120*time.Second)
	t.Run("after the chunks are persisted", compare)
	code, body := p.QueryPost(t, "/api/v1/admin/tsdb/clean_tombstones", nil)
	require.Equal(t, http.StatusNoContent, code, "prometheus: %s", body)
	code, body = a.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/clean_tombstones", nil)
	require.Equal(t, http.StatusNoContent, code, "argus: %s", body)
	t.Run("after clean_tombstones", compare)
	a.Kill(t)
	a.Restart(t)
	t.Run("after clean_tombstones and kill -9", compare)
}

// requireWindowEqual polls until the raw samples in (w0, end] of every
// series are identical in both, reading 10 minutes back from end (see
// TestDeleteSeriesEquivalence) and cutting the answers to the window.
func requireWindowEqual(t testing.TB, p *clustertest.Prometheus, a *clustertest.Process, tenant string, w0, end time.Time) {
	t.Helper()
	params := url.Values{"query": {`{__name__=~".+"}[10m]`}, "time": {clustertest.FormatAPITime(end.UnixMilli())}}
	var series int
	clustertest.Eventually(t, func() string {
		pc, pb := p.Query(t, "/api/v1/query", params)
		ac, ab := a.Query(t, tenant, clustertest.PromAPI+"/query", params)
		want, got := inWindow(clustertest.MatrixData(t, pc, pb), w0), inWindow(clustertest.MatrixData(t, ac, ab), w0)
		series = len(want)
		return clustertest.DiffSamples(want, got)
	}, 60*time.Second)
	require.Greater(t, series, 200)
}

// inWindow keeps the samples after w0, drops the series left without any,
// and sorts the series.
func inWindow(ss []clustertest.Series, w0 time.Time) []clustertest.Series {
	var out []clustertest.Series
	for _, s := range ss {
		var kept []clustertest.Sample
		for _, smp := range s.Samples {
			if smp.T > w0.UnixMilli() {
				kept = append(kept, smp)
			}
		}
		if len(kept) > 0 {
			out = append(out, clustertest.Series{Metric: s.Metric, Samples: kept})
		}
	}
	clustertest.SortSeries(out)
	return out
}

// promVector returns the result list of an instant query to Prometheus.
func promVector(t testing.TB, p *clustertest.Prometheus, q, at string) []any {
	t.Helper()
	code, body := p.Query(t, "/api/v1/query", url.Values{"query": {q}, "time": {at}})
	data, _ := apiData(t, code, body).(map[string]any)
	result, _ := data["result"].([]any)
	return result
}

// TestAdminAuth checks the admin API with -auth.type=token: a token not
// marked admin is refused (403) and deletes nothing, a wrong token gets a
// 401, and an admin token deletes the whole tenant with one call, after
// which new pushes are kept; both tokens read the statistics.
func TestAdminAuth(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	require.NoError(t, os.WriteFile(tokens, []byte(fmt.Sprintf(`tokens:
  - sha256: %q
    tenants: [team-a]
  - sha256: %q
    tenants: [team-a]
    admin: true
`, auth.HashToken("token-user"), auth.HashToken("token-admin"))), 0o600))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.type=token", "-auth.token-file=" + tokens, "-api.enable-admin-api=true"}})
	d := newDataset("m", 3, 20, time.Second)
	do := func(method, path, token string, params url.Values) (int, string) {
		req, err := http.NewRequest(method, a.URL()+path+"?"+params.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		code, body := a.Do(t, req)
		return code, string(body)
	}
	push := func(series []clustertest.TimeSeries) {
		req, err := http.NewRequest(http.MethodPost, a.PushURL(), bytes.NewReader(clustertest.EncodeWriteRequest(t, series)))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer token-user")
		code, body := a.Do(t, req)
		require.Equal(t, http.StatusNoContent, code, string(body))
	}
	count := func() string {
		code, body := do(http.MethodGet, clustertest.PromAPI+"/query", "token-user", url.Values{
			"query": {`count_over_time({__name__=~".+"}[1h])`}, "time": {clustertest.FormatAPITime(d.ts(19) + 5000)}})
		require.Equal(t, http.StatusOK, code, body)
		return string(mustMarshal(t, apiData(t, code, []byte(body))))
	}
	push(d.batch(0, 20))
	full := count()
	require.Contains(t, full, `"20"`)

	deleteAll := url.Values{"match[]": {`{__name__=~".+"}`}}
	code, body := do(http.MethodPost, clustertest.PromAPI+"/admin/tsdb/delete_series", "token-user", deleteAll)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Regexp(t, `^err-argus-admin-forbidden: tenant "team-a": `, body)
	code, body = do(http.MethodPost, clustertest.PromAPI+"/admin/tsdb/delete_series", "wrong", deleteAll)
	require.Equal(t, http.StatusUnauthorized, code, body)
	require.Regexp(t, `^err-argus-unauthorized: `, body)
	require.Equal(t, full, count(), "nothing deleted")

	code, body = do(http.MethodGet, clustertest.PromAPI+"/status/tsdb", "token-user", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"numSeries":3`)

	code, body = do(http.MethodPost, clustertest.PromAPI+"/admin/tsdb/delete_series", "token-admin", deleteAll)
	require.Equal(t, http.StatusNoContent, code, body)
	require.JSONEq(t, `{"resultType":"vector","result":[]}`, count())

	// The deletion ended at the newest sample: later samples are kept.
	later := d.batch(20, 21)
	push(later)
	require.Contains(t, count(), `"1"`)
	code, body = do(http.MethodPost, clustertest.PromAPI+"/admin/tsdb/clean_tombstones", "token-admin", nil)
	require.Equal(t, http.StatusNoContent, code, body)
}

// TestStatsAPI pushes a known data set and checks status/tsdb and the
// cardinality API exactly: 6 series of 2 metrics, 130 samples each.
func TestStatsAPI(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	end := time.Now().Add(-time.Second).Truncate(time.Second).UnixMilli()
	if b := end - end%(2*time.Hour).Milliseconds(); end-129*1000 < b {
		end = b - 1000 // Chunks never span a 2h boundary: keep 12 of them.
	}
	start := end - 129*1000
	sets := [][]string{
		{"__name__", "up", "instance", "a", "job", "api"},
		{"__name__", "up", "instance", "b", "job", "api"},
		{"__name__", "up", "instance", "c", "job", "db"},
		{"__name__", "http_requests", "code", "200", "instance", "a", "job", "api"},
		{"__name__", "http_requests", "code", "500", "instance", "a", "job", "api"},
		{"__name__", "http_requests", "code", "200", "instance", "b", "job", "api"},
	}
	var series []clustertest.TimeSeries
	for _, s := range sets {
		ts := clustertest.TimeSeries{Labels: clustertest.Labels(s...)}
		for i := range 130 {
			ts.Samples = append(ts.Samples, clustertest.Sample{T: start + int64(i)*1000, V: float64(i)})
		}
		series = append(series, ts)
	}
	pushOK(t, a, "stats", series)
	size := func(name, value string, n uint64) uint64 { return labels.SizeOfLabels(name, value, n) }

	code, body := a.Query(t, "stats", clustertest.PromAPI+"/status/tsdb", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, fmt.Sprintf(`{"status":"success","data":{
		"headStats":{"numSeries":6,"numLabelPairs":9,"chunkCount":12,"minTime":%d,"maxTime":%d},
		"seriesCountByMetricName":[{"name":"http_requests","value":3},{"name":"up","value":3}],
		"labelValueCountByLabelName":[{"name":"instance","value":3},{"name":"__name__","value":2},{"name":"code","value":2},{"name":"job","value":2}],
		"memoryInBytesByLabelName":[%s],
		"seriesCountByLabelValuePair":[{"name":"job=api","value":5},{"name":"__name__=http_requests","value":3},{"name":"__name__=up","value":3},
			{"name":"instance=a","value":3},{"name":"code=200","value":2},{"name":"instance=b","value":2},{"name":"code=500","value":1},
			{"name":"instance=c","value":1},{"name":"job=db","value":1}]}}`, start, end, memoryList(map[string]uint64{
		"__name__": size("__name__", "up", 3) + size("__name__", "http_requests", 3),
		"job":      size("job", "api", 5) + size("job", "db", 1),
		"instance": size("instance", "a", 3) + size("instance", "b", 2) + size("instance", "c", 1),
		"code":     size("code", "200", 2) + size("code", "500", 1),
	})), string(body))

	code, body = a.Query(t, "stats", clustertest.PromAPI+"/status/tsdb", url.Values{"limit": {"1"}})
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"seriesCountByLabelValuePair":[{"name":"job=api","value":5}]`)
	code, body = a.Query(t, "nobody", clustertest.PromAPI+"/status/tsdb", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"headStats":{"numSeries":0,"numLabelPairs":0,"chunkCount":0,"minTime":9223372036854775807,"maxTime":-9223372036854775808}`)

	code, body = a.Query(t, "stats", clustertest.PromAPI+"/cardinality/label_names", url.Values{"selector": {`{job="api"}`}})
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `{"label_values_count_total":7,"label_names_count":4,"cardinality":[
		{"label_name":"__name__","label_values_count":2},{"label_name":"code","label_values_count":2},
		{"label_name":"instance","label_values_count":2},{"label_name":"job","label_values_count":1}]}`, string(body))

	code, body = a.Query(t, "stats", clustertest.PromAPI+"/cardinality/label_values", url.Values{"label_names[]": {"instance", "code"}, "limit": {"2"}})
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `{"series_count_total":6,"labels":[
		{"label_name":"instance","label_values_count":3,"series_count":6,"cardinality":[{"label_value":"a","series_count":3},{"label_value":"b","series_count":2}]},
		{"label_name":"code","label_values_count":2,"series_count":3,"cardinality":[{"label_value":"200","series_count":2},{"label_value":"500","series_count":1}]}]}`, string(body))
}

// memoryList renders memoryInBytesByLabelName entries, highest first.
func memoryList(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q,"value":%d}`, n, m[n])
	}
	return b.String()
}
