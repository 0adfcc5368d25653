package e2e

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/client/promjson"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestGRPCQueryEquivalence asks every query of the equivalence set
// (equivalenceQueries) through the public gRPC query API and through the
// HTTP API of the same querier, over the same stored samples, and requires
// the gRPC answer, rendered as the HTTP API renders it (client/promjson),
// to be the HTTP answer's data byte for byte, with the same warnings and
// infos. Data comes from the real Prometheus, scraping itself and argus and
// remote-writing to argus, as in TestPrometheusEquivalence; the raw samples
// of the window are first required identical to Prometheus's, so that no
// sample of the window arrives between the two answers.
//
//	all-in-one:  prometheus ──RW──▶ argus (all)      ◀── HTTP and gRPC ── test
//	cluster:     prometheus ──RW──▶ distributor ─▶ 3 ingesters (RF 3) ◀─ querier ◀── HTTP and gRPC ── test
func TestGRPCQueryEquivalence(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Run("all-in-one", func(t *testing.T) {
		t.Parallel()
		a := clustertest.StartArgus(t, clustertest.Options{})
		grpcEquivalence(t, a, a)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := clustertest.StartCluster(t, clustertest.Topology{Ingesters: 3, Distributors: 1, Queriers: 1})
		grpcEquivalence(t, c.Distributor(0).Process, c.Querier(0).Process)
	})
}

// grpcEquivalence runs Prometheus writing to push and compares the answers
// of query over both APIs.
func grpcEquivalence(t *testing.T, push, query *clustertest.Process) {
	const tenant = "team-a"
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": push.HostPort()},
		RemoteWrite:    &clustertest.RemoteWrite{URL: push.PushURL(), Tenant: tenant},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 20*time.Second, 45*time.Second, 15*time.Second)
	w.SleepPastEnd()
	at := clustertest.RequireRawEqual(t, p, query, tenant, w.W0, w.End)
	c, err := client.Dial(query.GRPCAddr(), client.Options{Tenant: tenant})
	require.NoError(t, err)
	defer c.Close()
	end := w.End.Truncate(time.Millisecond)
	for _, qc := range equivalenceQueries {
		httpData := func(path string, params url.Values) (string, []string, []string) {
			code, body := query.Query(t, tenant, clustertest.PromAPI+path, params)
			require.Equal(t, 200, code, "%s: %s", qc.Q, body)
			var env struct {
				Data            json.RawMessage
				Warnings, Infos []string
			}
			require.NoError(t, json.Unmarshal(body, &env))
			return string(env.Data), env.Warnings, env.Infos
		}
		wantData, wantWarn, wantInfo := httpData("/query", url.Values{"query": {qc.Q}, "time": {at}})
		res, err := c.Query(t.Context(), client.InstantQuery{Expr: qc.Q, Time: end})
		require.NoError(t, err, qc.Q)
		requireSameData(t, "instant "+qc.Q, wantData, wantWarn, wantInfo, res)
		for _, step := range []time.Duration{5 * time.Second, 7 * time.Second} {
			params := url.Values{"query": {qc.Q}, "start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {strconv.Itoa(int(step.Seconds()))}}
			wantData, wantWarn, wantInfo := httpData("/query_range", params)
			res, err := c.QueryRange(t.Context(), client.RangeQuery{Expr: qc.Q, Start: w.E0, End: end, Step: step})
			require.NoError(t, err, qc.Q)
			requireSameData(t, "range "+step.String()+" "+qc.Q, wantData, wantWarn, wantInfo, res)
		}
	}
	// The CLI prints the same data object.
	for _, q := range []string{`sum by (job) (rate(scrape_samples_scraped[20s]))`, `up`} {
		wantData, _, _ := func() (string, []string, []string) {
			_, body := query.Query(t, tenant, clustertest.PromAPI+"/query_range", url.Values{"query": {q}, "start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5"}})
			var env struct{ Data json.RawMessage }
			require.NoError(t, json.Unmarshal(body, &env))
			return string(env.Data), nil, nil
		}()
		out := runArgusQuery(t, 0, "-addr="+query.GRPCAddr(), "-tenant="+tenant, "-output=json",
			"-start="+clustertest.FormatAPITime(w.E0.UnixMilli()), "-end="+at, "-step=5s", q)
		require.Equal(t, wantData+"\n", out, q)
	}
}

func requireSameData(t *testing.T, name, wantData string, wantWarn, wantInfo []string, res *client.Result) {
	t.Helper()
	got, err := promjson.Data(res)
	require.NoError(t, err, name)
	require.Equal(t, wantData, string(got), name)
	// Prometheus keeps annotations in a map: their order differs between
	// two HTTP answers to the same query too.
	require.ElementsMatch(t, wantWarn, res.Warnings, name)
	require.ElementsMatch(t, wantInfo, res.Infos, name)
}

// runArgusQuery runs `argus query args...`, requires exit status code, and
// returns its stdout (its stderr when code is not 0).
func runArgusQuery(t *testing.T, code int, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), clustertest.ArgusBinary(t), append([]string{"query"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code == 0 {
		require.NoError(t, err, stderr.String())
		return stdout.String()
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, stderr.String())
	require.Equal(t, code, exit.ExitCode(), stderr.String())
	return stderr.String()
}

// TestGRPCQueryNativeHistograms pushes the native histogram test data
// (exponential and custom buckets, integer and float, gauge, a counter
// reset, a schema change, a series mixing floats and histograms) and asks
// every native histogram query over gRPC and HTTP: the gRPC answer,
// histograms included, rendered as the HTTP API renders it, is the HTTP
// data byte for byte, with the same warnings and infos.
func TestGRPCQueryNativeHistograms(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const tenant = "hist"
	a := clustertest.StartArgus(t, clustertest.Options{})
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, body := range clustertest.NativeHistogramBodies(t, end) {
		code, msg := a.PushBody(t, tenant, body)
		require.Equal(t, 2, code/100, "%d %s", code, msg)
	}
	c, err := client.Dial(a.GRPCAddr(), client.Options{Tenant: tenant})
	require.NoError(t, err)
	defer c.Close()
	histograms := 0
	for _, q := range clustertest.NativeHistogramQueries(end) {
		code, body := a.Query(t, tenant, clustertest.PromAPI+q.Path, q.Params)
		require.Equal(t, 200, code, "%s", body)
		var env struct {
			Data            json.RawMessage
			Warnings, Infos []string
		}
		require.NoError(t, json.Unmarshal(body, &env))
		var res *client.Result
		expr := q.Params.Get("query")
		if q.Path == "/query" {
			res, err = c.Query(t.Context(), client.InstantQuery{Expr: expr, Time: end})
		} else {
			require.Equal(t, "60", q.Params.Get("step"))
			res, err = c.QueryRange(t.Context(), client.RangeQuery{Expr: expr, Start: end.Add(-24 * time.Minute), End: end, Step: time.Minute})
		}
		require.NoError(t, err, expr)
		for _, s := range res.Series {
			histograms += len(s.Histograms)
		}
		requireSameData(t, q.Path+" "+expr, string(env.Data), env.Warnings, env.Infos, res)
	}
	require.Greater(t, histograms, 100, "the answers hold histogram samples")
}
