package promimport_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestImportAnswersLikePrometheus builds a real Prometheus 3.16 data dir
// the two ways a team gets one, imports it with the real `argus tsdb import`,
// starts the real argus on the result, and asks both the same questions:
//
//	openmetrics text ──promtool tsdb create-blocks-from openmetrics──▶ blocks ─┬─ copied into prometheus's data dir (backfill)
//	                                                                           └─ argus tsdb import -tenant=om
//	remote write of 5h ──▶ prometheus (compacts blocks) ──admin snapshot──▶ argus tsdb import -tenant=snap
//	argus (on the imported dir) ◀── same queries ──▶ prometheus: answers identical
//
// The openmetrics history is [now-10h, now-6h), the remote-written one
// [now-5h, now-15s]; every sample is older than the queries' end, so both
// servers hold exactly the same samples.
func TestImportAnswersLikePrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prometheus and argus")
	}
	promBin := clustertest.PrometheusBinary(t)
	promtool := filepath.Join(filepath.Dir(promBin), "promtool")
	_, err := os.Stat(promtool)
	require.NoError(t, err, "promtool is built next to prometheus by scripts/install-tools.sh")
	argusBin := clustertest.ArgusBinary(t)

	now := time.Now().Truncate(time.Minute).UnixMilli()
	hour := time.Hour.Milliseconds()

	// History from openmetrics, backfilled into Prometheus's data dir.
	omBlocks := filepath.Join(t.TempDir(), "om-blocks")
	omFile := filepath.Join(t.TempDir(), "history.om")
	require.NoError(t, os.WriteFile(omFile, []byte(openMetricsHistory(now-10*hour, now-6*hour)), 0o644))
	run(t, promtool, "tsdb", "create-blocks-from", "openmetrics", omFile, omBlocks)
	promData := filepath.Join(t.TempDir(), "prom-data")
	require.NoError(t, os.CopyFS(promData, os.DirFS(omBlocks)))

	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		DataDir: promData, NoSelfScrape: true,
		Flags: []string{"--web.enable-remote-write-receiver", "--web.enable-admin-api"},
	})
	pushRemoteWrite(t, p.URL()+"/api/v1/write", now-5*hour, now-15_000)
	// 5h in the head: Prometheus compacts the oldest 2h into a block.
	clustertest.Eventually(t, func() string {
		if n := p.Metric(t, "prometheus_tsdb_compactions_total", nil); n < 1 {
			return "no head compaction yet"
		}
		return ""
	}, 2*time.Minute)
	snapshot := takeSnapshot(t, p)

	storageDir := t.TempDir()
	out := run(t, argusBin, "tsdb", "import", "-storage.path="+storageDir, "-tenant=snap", snapshot)
	t.Logf("import of the snapshot:\n%s", out)
	out = run(t, argusBin, "tsdb", "import", "-storage.path="+storageDir, "-tenant=om", omBlocks)
	t.Logf("import of the promtool blocks:\n%s", out)
	t.Logf("argus tsdb list:\n%s", run(t, argusBin, "tsdb", "list", "-storage.path="+storageDir))
	run(t, argusBin, "tsdb", "verify", "-storage.path="+storageDir)

	a := clustertest.StartArgus(t, clustertest.Options{StorageDir: storageDir, Flags: []string{"-log.level=warn"}})
	end := now
	compareRaw(t, p, a, "snap", `{__name__=~".+"}`, end, 11*time.Hour)
	compareRaw(t, p, a, "om", `{job="om"}`, end, 11*time.Hour)
	for _, tenant := range []string{"snap", "om"} {
		t.Run(tenant, func(t *testing.T) {
			compareQueries(t, p, a, tenant, now)
		})
	}
}

// compareRaw requires the raw samples of sel over the window before end to
// be identical, and more than a few.
func compareRaw(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, tenant, sel string, end int64, window time.Duration) {
	t.Helper()
	params := url.Values{"query": {fmt.Sprintf("%s[%ds]", sel, int(window.Seconds()))}, "time": {clustertest.FormatAPITime(end)}}
	d, series, samples := clustertest.DiffRaw(t, p, a, tenant, params)
	require.Empty(t, d, "tenant %s: raw samples of %s (-prometheus +argus)", tenant, sel)
	t.Logf("tenant %s: raw samples of %s identical: %d series, %d samples", tenant, sel, series, samples)
	require.Greater(t, series, 10)
	require.Greater(t, samples, series*900)
}

// compareQueries runs the equivalence set on tenant: instant queries at
// times inside each history and at its edges, range queries over all of it.
func compareQueries(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, tenant string, now int64) {
	hour := time.Hour.Milliseconds()
	sel := `{job=~"om|rw"}`
	if tenant == "om" {
		sel = `{job="om"}`
	}
	queries := []string{
		`rate(` + metric(tenant, "requests_total") + `[5m])`,
		`sum by (code) (increase(` + metric(tenant, "requests_total") + `[1h]))`,
		`histogram_quantile(0.9, sum by (le) (rate(` + metric(tenant, "latency_seconds_bucket") + `[10m])))`,
		`topk(3, ` + metric(tenant, "temperature") + `)`,
		`max_over_time(` + metric(tenant, "temperature") + `[30m:1m])`,
		`deriv(` + metric(tenant, "temperature") + `[20m])`,
		`count by (__name__) (` + sel + `)`,
		`absent(nonexistent_metric)`,
		metric(tenant, "temperature") + ` offset 1h`,
		`quantile_over_time(0.5, ` + metric(tenant, "temperature") + `[1h])`,
		`timestamp(` + metric(tenant, "temperature") + `)`,
	}
	times := []int64{now - 9*hour, now - 7*hour - 30*60_000, now - 6*hour + 2*60_000, now - 4*hour, now - 2*hour - 1, now}
	for _, q := range queries {
		for _, at := range times {
			params := url.Values{"query": {q}, "time": {clustertest.FormatAPITime(at)}}
			if d, _ := clustertest.DiffAnswers(t, p, a, tenant, "/query", params, !strings.HasPrefix(q, "topk")); d != "" {
				t.Errorf("%s at %s (-prometheus +argus):\n%s", q, params.Get("time"), d)
			}
		}
		params := url.Values{"query": {q}, "start": {clustertest.FormatAPITime(now - 11*hour)}, "end": {clustertest.FormatAPITime(now)}, "step": {"307"}}
		d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
		if d != "" {
			t.Errorf("%s over 11h (-prometheus +argus):\n%s", q, d)
		}
		require.Positive(t, n, "%s: prometheus's answer is empty", q)
	}
	rng := url.Values{"start": {clustertest.FormatAPITime(now - 11*hour)}, "end": {clustertest.FormatAPITime(now)}}
	with := func(kv ...string) url.Values {
		v := url.Values{"start": rng["start"], "end": rng["end"]}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for _, mq := range []struct{ path string }{{"/labels"}, {"/label/__name__/values"}, {"/label/instance/values"}} {
		params := with("match[]", sel)
		if d, n := clustertest.DiffAnswers(t, p, a, tenant, mq.path, params, true); d != "" || n == 0 {
			t.Errorf("GET %s?%s: %d results (-prometheus +argus):\n%s", mq.path, params.Encode(), n, d)
		}
	}
	params := with("match[]", metric(tenant, "requests_total"))
	if d, n := clustertest.DiffAnswers(t, p, a, tenant, "/series", params, true); d != "" || n == 0 {
		t.Errorf("GET /series?%s: %d results (-prometheus +argus):\n%s", params.Encode(), n, d)
	}
}

// metric names a metric of the history tenant was imported from: the
// openmetrics one, or both for the snapshot.
func metric(tenant, name string) string {
	if tenant == "om" {
		return "om_" + name
	}
	return `{__name__=~"(om|rw)_` + name + `"}`
}

// openMetricsHistory returns OpenMetrics text with samples every 15 s in
// [from, to) (Unix ms) of 4 instances: a counter by code, a gauge and a
// classic histogram.
func openMetricsHistory(from, to int64) string {
	var b strings.Builder
	instances := []string{"i-0", "i-1", "i-2", "i-3"}
	family := func(name, typ string, line func(inst string, k int, ts int64)) {
		fmt.Fprintf(&b, "# TYPE %s %s\n", name, typ)
		k := 0
		for ts := from; ts < to; ts += 15_000 {
			for _, inst := range instances {
				line(inst, k, ts)
			}
			k++
		}
	}
	family("om_requests", "counter", func(inst string, k int, ts int64) {
		for c, code := range []string{"200", "500"} {
			fmt.Fprintf(&b, "om_requests_total{job=\"om\",instance=%q,code=%q} %d %s\n", inst, code, k*(3-2*c)+len(inst), omTime(ts))
		}
	})
	family("om_temperature", "gauge", func(inst string, k int, ts int64) {
		fmt.Fprintf(&b, "om_temperature{job=\"om\",instance=%q} %g %s\n", inst, 20+5*math.Sin(float64(k)/37)+float64(len(inst)%3)/7, omTime(ts))
	})
	family("om_latency_seconds", "histogram", func(inst string, k int, ts int64) {
		cum := 0
		for i, le := range []string{"0.1", "0.5", "1", "+Inf"} {
			cum += k * (4 - i) / 2
			fmt.Fprintf(&b, "om_latency_seconds_bucket{job=\"om\",instance=%q,le=%q} %d %s\n", inst, le, cum, omTime(ts))
		}
		fmt.Fprintf(&b, "om_latency_seconds_count{job=\"om\",instance=%q} %d %s\n", inst, cum, omTime(ts))
		fmt.Fprintf(&b, "om_latency_seconds_sum{job=\"om\",instance=%q} %g %s\n", inst, float64(cum)*0.37, omTime(ts))
	})
	b.WriteString("# EOF\n")
	return b.String()
}

// omTime formats a Unix ms time as OpenMetrics seconds.
func omTime(ms int64) string { return fmt.Sprintf("%d.%03d", ms/1000, ms%1000) }

// pushRemoteWrite pushes the same kinds of series as openMetricsHistory,
// named rw_*, job "rw", every 15 s in [from, to], 20 minutes a request.
func pushRemoteWrite(t *testing.T, url string, from, to int64) {
	t.Helper()
	const perPush = 80 // samples per series per request: 20 minutes
	k := 0
	for start := from; start <= to; start += perPush * 15_000 {
		var series []clustertest.TimeSeries
		add := func(v func(k int) float64, nameValues ...string) {
			var samples []clustertest.Sample
			for i := 0; i < perPush && start+int64(i)*15_000 <= to; i++ {
				samples = append(samples, clustertest.Sample{T: start + int64(i)*15_000, V: v(k + i)})
			}
			series = append(series, clustertest.TimeSeries{Labels: clustertest.Labels(nameValues...), Samples: samples})
		}
		for n, inst := range []string{"i-0", "i-1", "i-2", "i-3"} {
			add(func(k int) float64 { return float64(k*3 + n) }, "__name__", "rw_requests_total", "code", "200", "instance", inst, "job", "rw")
			add(func(k int) float64 { return float64(k/7 + n) }, "__name__", "rw_requests_total", "code", "500", "instance", inst, "job", "rw")
			add(func(k int) float64 { return 18 + 4*math.Cos(float64(k+n)/29) }, "__name__", "rw_temperature", "instance", inst, "job", "rw")
			for i, le := range []string{"0.1", "0.5", "1", "+Inf"} {
				add(func(k int) float64 { return float64(k * (i + 1)) }, "__name__", "rw_latency_seconds_bucket", "instance", inst, "job", "rw", "le", le)
			}
		}
		k += perPush
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(clustertest.EncodeWriteRequest(t, series)))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "remote write to prometheus: %s", msg.String())
	}
}

// takeSnapshot asks Prometheus for a snapshot with its head and returns
// its directory.
func takeSnapshot(t *testing.T, p *clustertest.Prometheus) string {
	t.Helper()
	code, body := p.QueryPost(t, "/api/v1/admin/tsdb/snapshot", url.Values{})
	require.Equal(t, http.StatusOK, code, "snapshot: %s", body)
	var r struct{ Data struct{ Name string } }
	require.NoError(t, json.Unmarshal(body, &r))
	require.NotEmpty(t, r.Data.Name)
	return filepath.Join(p.DataDir(), "snapshots", r.Data.Name)
}

// run runs a command and returns its standard output; it fails the test
// with the output if the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %s:\n%s%s", name, strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}
