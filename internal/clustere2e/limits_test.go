package clustere2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestSeriesLimit_OtherTenantExact is the cluster twin of internal/e2e's
// test of the same name: 3 ingesters at RF=3, a distributor and a querier,
// every process reading the same runtime config file, and the real
// Prometheus remote-writing to tenants "capped" (max 300 series) and
// "free". Each ingester enforces its share of the global limit (300 × RF 3 /
// 3 ingesters = 300) exactly; capped gets 400s naming the series; free keeps
// every sample, exactly as Prometheus stored it.
func TestSeriesLimit_OtherTenantExact(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	require.NoError(t, os.WriteFile(overrides, []byte("overrides:\n  capped:\n    max_global_series_per_user: 300\n"), 0o644))
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3,
		ExtraFlags: []string{"-runtime-config.file=" + overrides}})
	c.WaitRing(t, 3)
	d, q := c.Distributor(0), c.Querier(0)
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: d.PushURL(), Tenant: "capped", Name: "capped"},
			{URL: d.PushURL(), Tenant: "free", Name: "free"},
		},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 10*time.Second, 0, 20*time.Second)
	w.SleepPastEnd()

	at := clustertest.RequireRawEqual(t, p, q.Process, "free", w.W0, w.End)
	d0, n := clustertest.DiffAnswers(t, p, q.Process, "free", "/query", url.Values{"query": {`count({__name__=~".+"})`}, "time": {at}}, true)
	require.Empty(t, d0)
	require.Positive(t, n)
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "free"}))
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_retried_total", map[string]string{"remote_name": "free"}))

	require.Positive(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "capped"}))
	log := p.Log(t)
	require.Contains(t, log, "400 Bad Request: err-argus-max-series-per-user: tenant")
	require.Regexp(t, `err-argus-max-series-per-user: \{__name__=`, log, "the 400 names the series")
	for _, ing := range c.Ingesters() {
		require.Equal(t, 300.0, ing.Metric(t, "argus_ingester_memory_series", map[string]string{"tenant": "capped"}), ing.ID())
	}
	code, body := d.Query(t, "capped", "/api/v1/user_limits", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var ul struct {
		Usage struct {
			MemorySeries int64 `json:"memory_series"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(body, &ul))
	require.Equal(t, int64(300), ul.Usage.MemorySeries)
	require.Positive(t, d.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "capped", "reason": "per_user_series_limit"}))
	require.Zero(t, d.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": "free"}))
}

// TestRateLimit_SharedByDistributors checks that a tenant's ingestion rate
// limit is global: with 2 distributors in the gossip each enforces half of
// it, and says so in the 429.
func TestRateLimit_SharedByDistributors(t *testing.T) {
	skipIfShort(t)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	require.NoError(t, os.WriteFile(overrides, []byte("overrides:\n  limited:\n    ingestion_rate: 100\n    ingestion_burst_size: 100\n"), 0o644))
	c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 2, Queriers: 1, RF: 3,
		ExtraFlags: []string{"-runtime-config.file=" + overrides}})
	c.WaitRing(t, 3)
	d := c.Distributor(0)
	clustertest.Eventually(t, func() string {
		code, body := d.Query(t, "limited", "/api/v1/user_limits", nil)
		var ul struct {
			Usage struct {
				Distributors int `json:"distributors"`
			} `json:"usage"`
		}
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(body, &ul))
		if ul.Usage.Distributors != 2 {
			return "distributors seen: " + string(body)
		}
		return ""
	}, 30*time.Second)

	now := time.Now().Truncate(time.Second).UnixMilli()
	batch := func(n, offset int) []clustertest.TimeSeries {
		var ss []clustertest.TimeSeries
		for i := range n {
			ss = append(ss, clustertest.TimeSeries{Labels: clustertest.Labels("__name__", "r", "i", strconv.Itoa(i+offset)), Samples: []clustertest.Sample{{T: now, V: 1}}})
		}
		return ss
	}
	code, body := d.Push(t, "limited", batch(100, 0)) // the burst
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = d.Push(t, "limited", batch(60, 100))
	require.Equal(t, http.StatusTooManyRequests, code, body)
	require.Contains(t, body, `err-argus-ingestion-rate-limited: tenant "limited": ingestion rate limit -distributor.ingestion-rate-limit=100 (50 samples/s on each of 2 distributors)`)
	code, body = d.Push(t, "other", batch(60, 0))
	require.Equal(t, http.StatusNoContent, code, "another tenant is not limited: %s", body)
}
