package benchquery

// BenchmarkSeriesQueries runs the real servers one after the other, each
// filled with BENCH_SERIES_QUERIES_SERIES series (default 1M; a smoke run:
// 20000), and times the queries Grafana sends all day. One op is the whole
// run, so run one op (scripts/bench.sh sets the binaries):
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... VICTORIAMETRICS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkSeriesQueries -benchtime=1x -count=1 -timeout=60m ./internal/benchquery/

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

const (
	// seriesQueriesEnv overrides defaultQuerySeries.
	seriesQueriesEnv = "BENCH_SERIES_QUERIES_SERIES"
	// seriesQueriesServersEnv, a comma-separated list of server names,
	// runs only those servers (default: all three).
	seriesQueriesServersEnv = "BENCH_SERIES_QUERIES_SERVERS"
	// seriesQueriesProfileEnv names a directory: after the timed rounds of
	// each query, Argus answers it again in a loop while its CPU and
	// allocation profiles are taken into <dir>/argus-<query>.{cpu,allocs}.pprof.
	seriesQueriesProfileEnv = "BENCH_SERIES_QUERIES_PROFILE"
	// profileSeconds is how long each profile runs.
	profileSeconds     = 15
	defaultQuerySeries = 1_000_000
	// seriesQueryRounds is how many times each query is timed (after one
	// untimed run); the median is reported.
	seriesQueryRounds = 5
	// querySamples samples per series, queryStepMs apart, the last at the
	// query time: 9 minutes of data. BENCH_SERIES_QUERIES_SAMPLES
	// overrides it (the memory of a head is measured with 40).
	querySamples = 10
	queryStepMs  = int64(time.Minute / time.Millisecond)
	// queryInstances is the number of values of the instance label.
	queryInstances = 1000
	// queryPushSeries is the number of series of one push.
	queryPushSeries = 1000
	// rssSettle is how long after the last query the RSS "after the
	// queries" is read: what an operator sees once a burst of dashboards
	// is over, not the peak (reported apart).
	rssSettle = 15 * time.Second
	// seriesQueryTimeout is each server's query timeout.
	seriesQueryTimeout = "5m"
)

// metricNames: half of the series match the regex query's selector.
var metricNames = []string{
	"app_requests_get_total", "app_requests_post_total", "app_requests_put_total", "app_requests_delete_total", "app_requests_patch_total",
	"app_latency_get_seconds", "app_latency_post_seconds", "app_latency_put_seconds", "app_latency_delete_seconds", "app_latency_patch_seconds",
}

// seriesQuery is one timed request.
type seriesQuery struct {
	name string
	// path is under /api/v1 (Prometheus, VictoriaMetrics) or
	// /prometheus/api/v1 (Argus).
	path   string
	params func(endMs int64) url.Values
	// check fails b unless data (the "data" of the answer) is right.
	check func(b *testing.B, n int, data json.RawMessage)
}

var seriesQueries = []seriesQuery{
	{name: "labels", path: "/labels", params: lastHour, check: func(b *testing.B, _ int, data json.RawMessage) {
		require.JSONEq(b, `["__name__","instance","job","namespace","pod"]`, string(data))
	}},
	{name: "label_values", path: "/label/instance/values", params: lastHour, check: func(b *testing.B, _ int, data json.RawMessage) {
		var vs []string
		require.NoError(b, json.Unmarshal(data, &vs))
		require.Len(b, vs, queryInstances)
	}},
	{name: "regex_max", path: "/query_range", params: func(endMs int64) url.Values {
		return url.Values{"query": {`max by (instance) ({__name__=~"app_requests_.*_total"})`},
			"start": {clustertest.FormatAPITime(endMs - 9*queryStepMs)}, "end": {clustertest.FormatAPITime(endMs)}, "step": {"60"}}
	}, check: func(b *testing.B, _ int, data json.RawMessage) {
		var d struct{ Result []json.RawMessage }
		require.NoError(b, json.Unmarshal(data, &d))
		require.Len(b, d.Result, queryInstances)
	}},
	{name: "count", path: "/query", params: func(endMs int64) url.Values {
		return url.Values{"query": {`count({job="app"})`}, "time": {clustertest.FormatAPITime(endMs)}}
	}, check: func(b *testing.B, n int, data json.RawMessage) {
		var d struct {
			Result []struct{ Value [2]json.RawMessage }
		}
		require.NoError(b, json.Unmarshal(data, &d))
		require.Len(b, d.Result, 1)
		require.Equal(b, strconv.Quote(strconv.Itoa(n)), string(d.Result[0].Value[1]))
	}},
}

// lastHour are the start and end of a label query over the last hour.
func lastHour(endMs int64) url.Values {
	return url.Values{"start": {clustertest.FormatAPITime(endMs - time.Hour.Milliseconds())}, "end": {clustertest.FormatAPITime(endMs)}}
}

// queryServer is one server under test: where to push, how to query, and
// its pid for the peak RSS.
type queryServer struct {
	pushURL string
	header  http.Header
	// apiURL is the base of the API paths (.../api/v1); queries are sent
	// with header, by a client that waits as long as a push may take: on a
	// loaded machine a query over 1M series can take longer than the
	// harness's own clients wait.
	apiURL string
	pid    int
	// ready is called after the pushes, before the queries.
	ready func(b *testing.B)
	// heap, if set, returns what the Go runtime of the server says of its
	// heap, to log beside its RSS.
	heap func(b *testing.B) string
	// profile, if set, runs do while the server profiles itself and writes
	// the profiles into files named after prefix.
	profile func(b *testing.B, prefix string, do func())
	stop    func(b *testing.B)
}

// namedServer starts one server of BenchmarkSeriesQueries.
type namedServer struct {
	name  string
	start func(b *testing.B) queryServer
}

// BenchmarkSeriesQueries fills Argus, Prometheus and VictoriaMetrics (the
// real servers, one after the other) with the same n series of 10 metrics
// (1,000 instances, 10 samples a minute apart) and times, on each, label
// names and the values of instance over the last hour, a range query of a
// __name__ regex matching half of the series over 9 minutes, and an
// instant count of all the series. Every answer is checked. It reports the
// median time of each query per server, Argus's ratio to each of the
// others, and each server's peak RSS.
func BenchmarkSeriesQueries(b *testing.B) {
	n := envSeries(b)
	b.Run("series="+strconv.Itoa(n), func(b *testing.B) {
		servers := []namedServer{
			{"argus", startQueryArgus}, {"prometheus", startQueryPrometheus}, {"victoriametrics", startQueryVictoriaMetrics},
		}
		if only := os.Getenv(seriesQueriesServersEnv); only != "" {
			names := strings.Split(only, ",")
			servers = slices.DeleteFunc(servers, func(s namedServer) bool { return !slices.Contains(names, s.name) })
		}
		took := map[string]map[string]float64{} // server -> query -> ms
		for b.Loop() {
			for _, srv := range servers {
				took[srv.name] = runServerQueries(b, srv.name, srv.start, n)
			}
		}
		for _, q := range seriesQueries {
			for _, srv := range servers {
				b.ReportMetric(took[srv.name][q.name], srv.name+"-"+q.name+"-ms")
			}
			for _, srv := range servers {
				b.ReportMetric(took[srv.name][q.name+"-cpu"], srv.name+"-"+q.name+"-cpu-ms")
			}
			if took["argus"] != nil && took["prometheus"] != nil {
				b.ReportMetric(took["argus"][q.name]/took["prometheus"][q.name], q.name+"-x-prometheus")
				if took["prometheus"][q.name+"-cpu"] > 0 { // Ticks of 10 ms: a label query may take none.
					b.ReportMetric(took["argus"][q.name+"-cpu"]/took["prometheus"][q.name+"-cpu"], q.name+"-cpu-x-prometheus")
				}
			}
			if took["argus"] != nil && took["victoriametrics"] != nil {
				b.ReportMetric(took["argus"][q.name]/took["victoriametrics"][q.name], q.name+"-x-victoriametrics")
			}
		}
		for _, srv := range servers {
			b.ReportMetric(took[srv.name]["peak-rss"], srv.name+"-peak-rss-MiB")
			b.ReportMetric(took[srv.name]["rss-before"], srv.name+"-rss-before-queries-MiB")
			b.ReportMetric(took[srv.name]["rss-after"], srv.name+"-rss-after-queries-MiB")
			b.ReportMetric(took[srv.name]["rss-after"]/took[srv.name]["rss-before"], srv.name+"-rss-after/before")
		}
	})
}

// runServerQueries starts a server, pushes n series, times every query and
// stops it; it returns the median ms of each query and the peak RSS in MiB
// (key "peak-rss").
func runServerQueries(b *testing.B, name string, start func(b *testing.B) queryServer, n int) map[string]float64 {
	samples := querySamples
	if v := os.Getenv("BENCH_SERIES_QUERIES_SAMPLES"); v != "" {
		var err error
		samples, err = strconv.Atoi(v)
		require.NoError(b, err, "BENCH_SERIES_QUERIES_SAMPLES")
		require.GreaterOrEqual(b, samples, querySamples, "BENCH_SERIES_QUERIES_SAMPLES: the queries span %d samples", querySamples)
	}
	s := start(b)
	endMs := time.Now().Truncate(time.Minute).UnixMilli()
	began := time.Now()
	client := &http.Client{Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	for first := 0; first < n; first += queryPushSeries {
		body := clustertest.EncodeWriteRequest(b, querySeriesBatch(first, min(first+queryPushSeries, n), samples, endMs))
		req, err := http.NewRequest(http.MethodPost, s.pushURL, bytes.NewReader(body))
		require.NoError(b, err)
		req.Header = s.header.Clone()
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		require.NoError(b, err)
		msg := new(bytes.Buffer)
		_, _ = msg.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		require.True(b, resp.StatusCode/100 == 2, "%s: push of series %d..: %d %s", name, first, resp.StatusCode, clustertest.Truncate(msg.String(), 1000))
	}
	s.ready(b)
	b.Logf("%s: pushed %d series x %d samples in %v", name, n, samples, time.Since(began).Round(time.Millisecond))
	out := map[string]float64{}
	before, err := currentRSS(s.pid)
	require.NoError(b, err)
	out["rss-before"] = mib(before)
	if s.heap != nil {
		b.Logf("%s: before the queries: %s", name, s.heap(b))
	}
	for _, q := range seriesQueries {
		params := q.params(endMs)
		var ms []float64
		cpuBefore := cpuTime(b, s.pid)
		for round := range seriesQueryRounds + 1 {
			if round == 1 {
				cpuBefore = cpuTime(b, s.pid)
			}
			t0 := time.Now()
			code, body := getAPI(b, client, s, q.path, params)
			d := time.Since(t0)
			require.Equal(b, http.StatusOK, code, "%s %s: %s", name, q.name, clustertest.Truncate(string(body), 2000))
			var r struct{ Data json.RawMessage }
			require.NoError(b, json.Unmarshal(body, &r), "%s %s", name, q.name)
			q.check(b, n, r.Data)
			if round > 0 { // The first run warms caches up and is not timed.
				ms = append(ms, float64(d)/float64(time.Millisecond))
			}
		}
		cpu := (cpuTime(b, s.pid) - cpuBefore).Seconds() * 1000 / seriesQueryRounds
		slices.Sort(ms)
		out[q.name] = ms[len(ms)/2]
		out[q.name+"-cpu"] = cpu
		b.Logf("%s: %s median %.1f ms (min %.1f, max %.1f), %.1f ms of CPU per query", name, q.name, out[q.name], ms[0], ms[len(ms)-1], cpu)
		if dir := os.Getenv(seriesQueriesProfileEnv); dir != "" && s.profile != nil {
			s.profile(b, filepath.Join(dir, name+"-"+q.name), func() { getAPI(b, client, s, q.path, params) })
		}
	}
	rss, err := peakRSS(s.pid)
	require.NoError(b, err)
	out["peak-rss"] = mib(rss)
	time.Sleep(rssSettle)
	after, err := currentRSS(s.pid)
	require.NoError(b, err)
	out["rss-after"] = mib(after)
	b.Logf("%s: RSS %.0f MiB before the queries, %.0f MiB %v after them, peak %.0f MiB", name, out["rss-before"], out["rss-after"], rssSettle, out["peak-rss"])
	if s.heap != nil {
		b.Logf("%s: after the queries: %s", name, s.heap(b))
	}
	s.stop(b)
	return out
}

// querySeriesBatch returns series first..end-1: metric i%10 of pod i/10,
// on instance i/10%queryInstances, samples samples up to endMs.
func querySeriesBatch(first, end, samples int, endMs int64) []clustertest.TimeSeries {
	batch := make([]clustertest.TimeSeries, 0, end-first)
	for i := first; i < end; i++ {
		ss := make([]clustertest.Sample, samples)
		for j := range ss {
			ss[j] = clustertest.Sample{T: endMs - int64(samples-1-j)*queryStepMs, V: float64(i%977 + j)}
		}
		batch = append(batch, clustertest.TimeSeries{
			Labels: clustertest.Labels(
				"__name__", metricNames[i%len(metricNames)],
				"instance", fmt.Sprintf("host-%03d:9100", i/len(metricNames)%queryInstances),
				"job", "app",
				"namespace", fmt.Sprintf("namespace-%02d", i/len(metricNames)%40),
				"pod", fmt.Sprintf("app-%07d", i/len(metricNames)),
			),
			Samples: ss,
		})
	}
	return batch
}

func startQueryArgus(b *testing.B) queryServer {
	// A query over 1M series on a loaded machine may take longer than the
	// default timeout (2 minutes); Prometheus gets the same.
	flags := append(slices.Clone(commonFlags), "-querier.timeout="+seriesQueryTimeout)
	if os.Getenv(seriesQueriesProfileEnv) != "" {
		flags = append(flags, "-server.register-instrumentation")
	}
	p := clustertest.StartArgus(b, clustertest.Options{Flags: flags})
	return queryServer{
		profile: func(b *testing.B, prefix string, do func()) { profileWhile(b, p.URL(), prefix, do) },
		pushURL: p.PushURL(), header: http.Header{clustertest.TenantHeader: {tenant}}, pid: p.PID(),
		apiURL: p.URL() + clustertest.PromAPI,
		ready:  func(*testing.B) {},
		heap: func(b *testing.B) string {
			out := ""
			for _, m := range []string{"heap_alloc", "heap_inuse", "heap_idle", "heap_released", "next_gc"} {
				out += fmt.Sprintf("%s %.0f MiB ", m, p.Metric(b, "go_memstats_"+m+"_bytes", nil)/(1<<20))
			}
			return out
		},
		stop: func(b *testing.B) { p.Stop(b) },
	}
}

func startQueryPrometheus(b *testing.B) queryServer {
	p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{
		NoSelfScrape: true,
		Flags:        []string{"--web.enable-remote-write-receiver", "--query.timeout=" + seriesQueryTimeout},
	})
	return queryServer{
		pushURL: p.URL() + "/api/v1/write", header: http.Header{}, pid: p.PID(),
		apiURL: p.URL() + "/api/v1",
		ready:  func(*testing.B) {},
		stop:   func(b *testing.B) { p.Stop(b) },
	}
}

func startQueryVictoriaMetrics(b *testing.B) queryServer {
	// Its defaults cap a query at fewer series than the count selects.
	v := clustertest.StartVictoriaMetrics(b, "-search.maxUniqueTimeseries=5000000", "-search.maxLabelsAPISeries=5000000")
	return queryServer{
		pushURL: v.WriteURL(), header: http.Header{}, pid: v.PID(),
		apiURL: v.URL() + "/api/v1",
		ready:  func(b *testing.B) { v.ForceFlush(b) },
		stop:   func(b *testing.B) { v.Stop(b) },
	}
}

// envSeries returns $BENCH_SERIES_QUERIES_SERIES, or defaultQuerySeries.
func envSeries(b *testing.B) int {
	b.Helper()
	s := os.Getenv(seriesQueriesEnv)
	if s == "" {
		return defaultQuerySeries
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, "%s", seriesQueriesEnv)
	require.GreaterOrEqual(b, n, queryInstances*len(metricNames), "%s: every instance needs all metrics", seriesQueriesEnv)
	return n
}

// profileWhile takes the CPU profile and the allocations (a delta) of the
// server at baseURL over profileSeconds, calling do over and over meanwhile,
// and writes them to prefix.cpu.pprof and prefix.allocs.pprof.
func profileWhile(b *testing.B, baseURL, prefix string, do func()) {
	var wg sync.WaitGroup
	for _, p := range []struct{ path, file string }{{"profile", ".cpu.pprof"}, {"allocs", ".allocs.pprof"}} {
		wg.Go(func() {
			resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", baseURL, p.path, profileSeconds))
			if err != nil {
				b.Errorf("profile %s: %v", p.path, err)
				return
			}
			defer resp.Body.Close()
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusOK {
				b.Errorf("profile %s: %d %s", p.path, resp.StatusCode, clustertest.Truncate(body.String(), 500))
				return
			}
			if err := os.WriteFile(prefix+p.file, body.Bytes(), 0o644); err != nil {
				b.Error(err)
			}
		})
	}
	for end := time.Now().Add(profileSeconds * time.Second); time.Now().Before(end); {
		do()
	}
	wg.Wait()
}

// getAPI sends GET path?params to s's API and returns the status and body.
func getAPI(b *testing.B, client *http.Client, s queryServer, path string, params url.Values) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, s.apiURL+path+"?"+params.Encode(), nil)
	require.NoError(b, err)
	req.Header = s.header.Clone()
	resp, err := client.Do(req)
	require.NoError(b, err, "GET %s", req.URL)
	defer resp.Body.Close()
	body := new(bytes.Buffer)
	_, err = body.ReadFrom(resp.Body)
	require.NoError(b, err)
	return resp.StatusCode, body.Bytes()
}

// cpuTime returns the CPU time that process pid has used (user and system,
// from /proc/<pid>/stat). Over the timed rounds of a query, it is what the
// query cost the server, its background work included, whatever else the
// machine runs: a steadier figure than the time on a loaded machine.
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(b, err)
	// The fields after the command (in parentheses, which may hold spaces):
	// utime and stime are the 14th and 15th of the line, in clock ticks.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(b, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(b, err)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, 100 on every Linux Go supports.
const clockTicks = 100
