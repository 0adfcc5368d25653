package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// userLimits is the answer of /api/v1/user_limits.
type userLimits struct {
	Tenant string         `json:"tenant"`
	Limits map[string]any `json:"limits"`
	Usage  struct {
		MemorySeries  int64   `json:"memory_series"`
		IngestionRate float64 `json:"ingestion_rate"`
	} `json:"usage"`
}

func getUserLimits(t testing.TB, a *clustertest.Process, tenant string) userLimits {
	t.Helper()
	code, body := a.Query(t, tenant, "/api/v1/user_limits", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var ul userLimits
	require.NoError(t, json.Unmarshal(body, &ul), string(body))
	return ul
}

// writeFile replaces path's content atomically, as a config management tool
// would, so that a reload never reads half a file.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// TestSeriesLimit_OtherTenantExact runs the real Prometheus remote-writing
// the same samples to two tenants of one argus: "capped", whose series limit
// (300) is below the ~1000 series Prometheus has, and "free". Capped must
// get 400s naming the series over its limit and keep exactly 300 series;
// free must keep every sample, exactly as Prometheus stored it, without a
// single failed or retried sample.
func TestSeriesLimit_OtherTenantExact(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, overrides, "overrides:\n  capped:\n    max_global_series_per_user: 300\n")
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-runtime-config.file=" + overrides}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: a.PushURL(), Tenant: "capped", Name: "capped"},
			{URL: a.PushURL(), Tenant: "free", Name: "free"},
		},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 10*time.Second, 0, 20*time.Second)
	w.SleepPastEnd()
	requireSeriesLimitOutcome(t, p, a, a, w)
}

// requireSeriesLimitOutcome checks what TestSeriesLimit_OtherTenantExact and
// its cluster twin expect: pushes through dist, reads through q.
func requireSeriesLimitOutcome(t *testing.T, p *clustertest.Prometheus, dist, q *clustertest.Process, w clustertest.EquivalenceWindow) {
	t.Helper()
	at := clustertest.RequireRawEqual(t, p, q, "free", w.W0, w.End)
	for _, query := range []string{`count({__name__=~".+"})`, `sum by (job) (rate(prometheus_http_requests_total[10s]))`} {
		d, n := clustertest.DiffAnswers(t, p, q, "free", "/query", url.Values{"query": {query}, "time": {at}}, true)
		require.Empty(t, d, "%s (-prometheus +argus)", query)
		require.Positive(t, n)
	}
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "free"}))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_retried_total", map[string]string{"remote_name": "free"}))

	// Capped: 400s that Prometheus dropped, naming the series, and the limit
	// holds exactly.
	require.Positive(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "capped"}))
	log := p.Log(t)
	require.Contains(t, log, "400 Bad Request: err-argus-max-series-per-user: tenant")
	require.Regexp(t, `err-argus-max-series-per-user: \{__name__=`, log, "the 400 names the series")
	require.Contains(t, log, "-ingester.max-global-series-per-user=300")
	code, body := q.Query(t, "capped", clustertest.PromAPI+"/query", url.Values{"query": {`count({__name__=~".+"})`}, "time": {at}})
	require.JSONEq(t, fmt.Sprintf(`{"resultType":"vector","result":[{"metric":{},"value":[%s,"300"]}]}`, clustertest.JSONTimestamp(w.End.UnixMilli())),
		string(mustMarshal(t, apiData(t, code, body))))
	require.Equal(t, int64(300), getUserLimits(t, dist, "capped").Usage.MemorySeries)
	require.Positive(t, dist.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "capped", "reason": "per_user_series_limit"}))
	require.Zero(t, dist.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "free"}))
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestRateLimit_RetriesLand runs the real Prometheus remote-writing to two
// tenants of one argus, with retry_on_http_429. Once it runs, tenant
// "limited" gets half of Prometheus's sample rate as its ingestion rate
// limit through the runtime config file, so that its pushes get 429 with
// Retry-After and Prometheus retries them. A broken file then keeps the
// limit in force; a fixed file lifts it, and Prometheus catches up. In the
// end both tenants hold every sample exactly as Prometheus stored it:
// nothing was lost, and "free" never saw a 429.
func TestRateLimit_RetriesLand(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, overrides, "overrides: {}\n")
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-runtime-config.file=" + overrides, "-runtime-config.reload-period=1s"}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: a.PushURL(), Tenant: "limited", Name: "limited", RetryOnRateLimit: true},
			{URL: a.PushURL(), Tenant: "free", Name: "free", RetryOnRateLimit: true},
		},
	})
	w0 := p.ReadyAt.Add(10 * time.Second).Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(w0.Add(10 * time.Second)))

	// Half of what Prometheus appends per second.
	var perSecond float64
	clustertest.Eventually(t, func() string {
		code, body := p.Query(t, "/api/v1/query", url.Values{"query": {`sum(rate(prometheus_tsdb_head_samples_appended_total[5s]))`}})
		data, _ := apiData(t, code, body).(map[string]any)
		result, _ := data["result"].([]any)
		if len(result) != 1 {
			return "no append rate yet: " + string(body)
		}
		v := result[0].(map[string]any)["value"].([]any)[1]
		fmt.Sscan(fmt.Sprint(v), &perSecond)
		if perSecond < 100 {
			return fmt.Sprintf("append rate %g is too low to test", perSecond)
		}
		return ""
	}, 30*time.Second)
	limit := math.Round(perSecond / 2)
	t.Logf("prometheus appends %.0f samples/s; limiting tenant to %.0f", perSecond, limit)
	writeFile(t, overrides, fmt.Sprintf("overrides:\n  limited:\n    ingestion_rate: %.0f\n    ingestion_burst_size: 2000\n", limit))
	clustertest.Eventually(t, func() string {
		if got := getUserLimits(t, a, "limited").Limits["ingestion_rate"]; got != limit {
			return fmt.Sprintf("ingestion_rate %v, want %v", got, limit)
		}
		return ""
	}, 10*time.Second)

	// 429s with Retry-After, and Prometheus retries them.
	clustertest.Eventually(t, func() string {
		if a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "limited", "reason": "rate_limited"}) == 0 {
			return "no push rate-limited yet"
		}
		if p.Metric(t, "prometheus_remote_storage_samples_retried_total", map[string]string{"remote_name": "limited"}) == 0 {
			return "prometheus has retried nothing yet"
		}
		return ""
	}, 60*time.Second)

	// A broken file keeps the last good limits.
	writeFile(t, overrides, "overrides:\n  limited:\n    ingestion_rate: [not a number\n")
	clustertest.Eventually(t, func() string {
		if v := a.Metric(t, "argus_runtime_config_last_reload_successful", nil); v != 0 {
			return "the broken file is not read yet"
		}
		return ""
	}, 10*time.Second)
	require.Equal(t, limit, getUserLimits(t, a, "limited").Limits["ingestion_rate"])
	rejected := a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "limited", "reason": "rate_limited"})
	clustertest.Eventually(t, func() string {
		if a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "limited", "reason": "rate_limited"}) == rejected {
			return "the limit must still apply"
		}
		return ""
	}, 20*time.Second)

	// Lift the limit: Prometheus catches up.
	writeFile(t, overrides, "overrides:\n  limited:\n    ingestion_rate: 10000000\n")
	clustertest.Eventually(t, func() string {
		if v := a.Metric(t, "argus_runtime_config_last_reload_successful", nil); v != 1 {
			return "the fixed file is not read yet"
		}
		return ""
	}, 10*time.Second)
	end := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	for _, tn := range []string{"limited", "free"} {
		clustertest.RequireRawEqual(t, p, a, tn, w0, end)
		require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": tn}), "nothing dropped for %s", tn)
	}
	require.Zero(t, a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "free"}))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_retried_total", map[string]string{"remote_name": "free"}))
	t.Logf("samples answered 429 by argus: %.0f; retried by prometheus: %.0f; lost: 0",
		a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "limited", "reason": "rate_limited"}),
		p.Metric(t, "prometheus_remote_storage_samples_retried_total", map[string]string{"remote_name": "limited"}))
}
