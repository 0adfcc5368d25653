package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestLocalIngesterReads pushes the same series to the real Prometheus
// 3.16, to an all-in-one that reads its own ingester in-process (the
// default) and to one that reads it over gRPC
// (-querier.local-ingester-reads=false), and asks all three the same
// questions: the two Argus answers must be byte-identical, and both must
// answer what Prometheus answers. Series have a finished chunk and an open
// one (more than 120 samples), and some have stopped before the end.
func TestLocalIngesterReads(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "team-a"
	local := clustertest.StartArgus(t, clustertest.Options{})
	remote := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-querier.local-ingester-reads=false"}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		NoSelfScrape: true,
		Flags:        []string{"--web.enable-remote-write-receiver"},
	})

	const step = 15 * time.Second
	end := time.Now().Truncate(time.Minute)
	var series []clustertest.TimeSeries
	for i := range 300 {
		n := 200
		if i%7 == 0 {
			n = 150 // Ends 12.5 minutes before the others: out of the lookback.
		}
		ss := make([]clustertest.Sample, n)
		for j := range ss {
			ss[j] = clustertest.Sample{T: end.Add(-time.Duration(200-1-j) * step).UnixMilli(), V: float64(i*1000 + j)}
		}
		series = append(series, clustertest.TimeSeries{
			Labels: clustertest.Labels("__name__", []string{"req_total", "req_errors_total", "latency_seconds"}[i%3],
				"instance", fmt.Sprintf("host-%02d", i/3%40), "job", []string{"api", "db"}[i%2], "shard", fmt.Sprint(i/120)),
			Samples: ss,
		})
	}
	body := clustertest.EncodeWriteRequest(t, series)
	for _, a := range []*clustertest.Process{local, remote} {
		code, msg := a.PushBody(t, tenant, body)
		require.Equal(t, 2, code/100, "%d %s", code, msg)
	}
	pushToPrometheus(t, p, body)

	at := clustertest.FormatAPITime(end.UnixMilli())
	start := clustertest.FormatAPITime(end.Add(-45 * time.Minute).UnixMilli())
	rng := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {start}, "end": {at}, "step": {"60"}}
	}
	queries := []struct {
		path      string
		params    url.Values
		unordered bool // the order of instant vectors and /series is not promised
	}{
		{"/query", url.Values{"query": {`count({job=~".+"})`}, "time": {at}}, false},
		{"/query", url.Values{"query": {`req_total`}, "time": {at}}, true},
		{"/query", url.Values{"query": {`sum by (job) (rate(req_total[5m]))`}, "time": {at}}, true},
		{"/query_range", rng(`max by (instance) ({__name__=~"req_.*_total"})`), false},
		{"/query_range", rng(`rate(req_total{job="db", shard!="1"}[2m])`), false},
		{"/query_range", rng(`count_over_time(latency_seconds[10m])`), false},
		{"/series", url.Values{"match[]": {`{__name__=~"req_.*"}`}, "start": {start}, "end": {at}}, true},
		{"/labels", url.Values{"start": {start}, "end": {at}}, false},
		{"/labels", url.Values{"match[]": {`latency_seconds`}, "start": {start}, "end": {at}}, false},
		{"/label/instance/values", url.Values{"start": {start}, "end": {at}}, false},
		{"/label/shard/values", url.Values{"match[]": {`{job="api"}`}, "start": {start}, "end": {at}}, false},
	}
	for _, q := range queries {
		name := q.path + "?" + q.params.Encode()
		lc, lb := local.Query(t, tenant, clustertest.PromAPI+q.path, q.params)
		rc, rb := remote.Query(t, tenant, clustertest.PromAPI+q.path, q.params)
		require.Equal(t, http.StatusOK, lc, "%s: %s", name, lb)
		require.Equal(t, rc, lc, name)
		require.True(t, bytes.Equal(rb, lb), "%s: over gRPC\n%s\nin-process\n%s", name, clustertest.Truncate(string(rb), 2000), clustertest.Truncate(string(lb), 2000))
		pc, pb := p.Query(t, "/api/v1"+q.path, q.params)
		d, n := clustertest.DiffBodies(t, pc, pb, lc, lb, q.unordered)
		require.Empty(t, d, "%s (-prometheus +argus)", name)
		require.Positive(t, n, "%s: prometheus's answer is empty", name)
	}
	require.Positive(t, local.Metric(t, "argus_querier_local_reads_total", nil), "the default all-in-one did not read in-process")
	require.Zero(t, remote.Metric(t, "argus_querier_local_reads_total", nil), "-querier.local-ingester-reads=false read in-process")
}

// pushToPrometheus remote-writes body (a snappy WriteRequest) to p.
func pushToPrometheus(t *testing.T, p *clustertest.Prometheus, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL()+"/api/v1/write", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg := new(bytes.Buffer)
	_, _ = msg.ReadFrom(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNoContent, resp.StatusCode, msg.String())
}
