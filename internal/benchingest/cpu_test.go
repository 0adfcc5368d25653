package benchingest

// BenchmarkIngestCPU runs Argus (all-in-one), Prometheus and
// VictoriaMetrics, the real servers, one after the other for each request
// shape. One op is the whole comparison, so run one op (scripts/bench.sh
// sets the binaries):
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... VICTORIAMETRICS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkIngestCPU -benchtime=1x -count=1 -timeout=60m ./internal/benchingest/

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

const (
	// seriesEnv overrides defaultSeries; serversEnv, a comma-separated list
	// of server names, runs only those (default: all three).
	seriesEnv     = "BENCH_INGEST_SERIES"
	serversEnv    = "BENCH_INGEST_SERVERS"
	defaultSeries = 200_000
	// requestSamples is about how many samples a request carries whatever
	// its shape, as Prometheus's remote write sends (max_samples_per_send
	// 2000): 2000 series of one sample, 50 of 40, 16 of 120.
	requestSamples = 2000
	// minSamples is the fewest samples per series timed: a shape of one
	// sample per request is pushed in that many rounds.
	minSamples = 10
	// ingestPushers is the number of concurrent requests.
	ingestPushers = 4
	// settle is how long after the last answer the CPU is read, so that
	// work a server defers (VictoriaMetrics's in-memory parts) is counted.
	settle = 2 * time.Second
	tenant = "bench"
)

// shapes are the samples per series per request.
var shapes = []int{1, 40, 120}

// ingestServer is one server under test.
type ingestServer struct {
	pushURL string
	header  http.Header
	pid     int
	// query answers an instant query (path /api/v1/query of its API).
	query func(b *testing.B, params url.Values) (int, []byte)
	// flush makes what was pushed queryable, if the server needs it.
	flush func(b *testing.B)
	// drain, when set, waits after the timed pushes for the work the
	// server does for them on a cadence of seconds (Argus's flush of the
	// chunks they finished), so that it falls inside the timed window.
	drain func(b *testing.B)
	// persist, when set, makes the server do now the persistence it defers
	// past the timed window (see persistedNote); its CPU is reported apart.
	persist func(b *testing.B)
	stop    func(b *testing.B)
	// profile, when set, writes a CPU profile of the server over the next
	// secs seconds to path (profile_test.go).
	profile func(secs int, path string) error
}

// persistedNote: Argus's timed window holds its flushes into the level-0
// file (chunks and their index) and its WAL checkpoints; Prometheus's
// equivalents, the head compaction into a block (index and chunks) and
// its checkpoint, run only once the head spans 3h, so never in the window
// (the timed samples span at most 30 min). After the window, Prometheus
// is made to write its head as a block (the admin snapshot API, the same
// block writer its compaction uses) and that CPU per timed sample is
// reported as prometheus-persist-cpu-ns/sample, with the ratio of Argus to
// Prometheus plus it (cpu-x-prometheus-persisted). It is an upper bound of
// what a steady state charges Prometheus per sample for its index (a 2h
// block of 15 s samples amortizes each series' index over 480 samples, the
// snapshot over the 121 here) and leaves out its checkpoint; the plain
// cpu-x-prometheus leaves all of it out. The goal is judged on the plain
// ratio.

type namedServer struct {
	name  string
	start func(b *testing.B) ingestServer
}

// BenchmarkIngestCPU pushes the same series (BENCH_INGEST_SERIES, default
// 200K, shaped like Kubernetes pod metrics) to Argus, Prometheus and
// VictoriaMetrics, each fresh, with 1, 40 and 120 samples per series per
// request, and reports the CPU each server used per sample (from
// /proc/<pid>/stat), Argus's ratio to each of the others, and the samples
// per second of wall time. A first untimed push of one sample per series
// creates the series, so that the timed pushes append to existing series
// as a steady scrape does. Every server must store every sample: a count
// over all of them is checked after the timing.
func BenchmarkIngestCPU(b *testing.B) {
	n := envInt(b, seriesEnv, defaultSeries)
	servers := []namedServer{{"argus", startArgus}, {"prometheus", startPrometheus}, {"victoriametrics", startVictoriaMetrics}}
	if only := os.Getenv(serversEnv); only != "" {
		names := strings.Split(only, ",")
		servers = slices.DeleteFunc(servers, func(s namedServer) bool { return !slices.Contains(names, s.name) })
	}
	labels := sync.OnceValue(func() [][]*arguspb.Label {
		out := make([][]*arguspb.Label, n)
		for i := range out {
			out[i] = seriesLabels(i)
		}
		return out
	})
	for _, spr := range shapes {
		b.Run(fmt.Sprintf("series=%d/per-request=%d", n, spr), func(b *testing.B) {
			res := map[string]ingestResult{}
			for b.Loop() {
				for _, srv := range servers {
					res[srv.name] = measureIngest(b, srv, labels(), spr)
				}
			}
			for _, srv := range servers {
				b.ReportMetric(res[srv.name].cpuNs, srv.name+"-cpu-ns/sample")
				b.ReportMetric(res[srv.name].perSec, srv.name+"-samples/s")
				if p := res[srv.name].persistNs; p > 0 {
					b.ReportMetric(p, srv.name+"-persist-cpu-ns/sample")
				}
			}
			argus := res["argus"].cpuNs
			for _, other := range []string{"prometheus", "victoriametrics"} {
				if o := res[other]; argus > 0 && o.cpuNs > 0 {
					b.ReportMetric(argus/o.cpuNs, "cpu-x-"+other)
					if o.persistNs > 0 {
						b.ReportMetric(argus/(o.cpuNs+o.persistNs), "cpu-x-"+other+"-persisted")
					}
				}
			}
		})
	}
}

// ingestResult is one server's measure: CPU ns per timed sample, timed
// samples per second of wall time, and the CPU ns per timed sample of its
// deferred persistence when it has a persist step (else 0).
type ingestResult struct{ cpuNs, perSec, persistNs float64 }

// measureIngest starts srv, creates the series, pushes the timed samples
// and returns its ingestResult; it checks the count of every stored sample
// and stops the server.
func measureIngest(b *testing.B, srv namedServer, labels [][]*arguspb.Label, spr int) (r ingestResult) {
	n := len(labels)
	s := srv.start(b)
	client := newClient(ingestPushers)
	defer client.CloseIdleConnections()
	samples := max(spr, minSamples)
	startMs := time.Now().Truncate(time.Minute).UnixMilli() - int64(samples+2)*stepMs
	create := &workload{series: n, perRequest: 1, seriesPerRequest: requestSamples, samples: 1, startMs: startMs, labels: labels}
	timed := &workload{series: n, perRequest: spr, seriesPerRequest: max(1, requestSamples/spr), samples: samples, startMs: startMs + stepMs, labels: labels}
	ctx := context.Background()
	require.NoError(b, pushAll(ctx, client, s.pushURL, s.header, create, ingestPushers), "%s: creating the series", srv.name)

	cpu0, err := cpuOf(s.pid)
	require.NoError(b, err)
	t0 := time.Now()
	profiled := startProfile(b, s, spr)
	require.NoError(b, pushAll(ctx, client, s.pushURL, s.header, timed, ingestPushers), "%s: timed pushes", srv.name)
	wall := time.Since(t0)
	if s.drain != nil {
		s.drain(b)
	}
	profiled()
	time.Sleep(settle)
	cpu1, err := cpuOf(s.pid)
	require.NoError(b, err)
	total := n * samples
	r.cpuNs = float64(cpu1-cpu0) / float64(total)
	r.perSec = float64(total) / wall.Seconds()
	b.Logf("%s, %d series x %d samples, %d per request: %.0f ns CPU/sample (%v CPU), %.0f samples/s (%v wall)",
		srv.name, n, samples, spr, r.cpuNs, cpu1-cpu0, r.perSec, wall.Round(time.Millisecond))
	if s.persist != nil {
		s.persist(b)
		cpu2, err := cpuOf(s.pid)
		require.NoError(b, err)
		r.persistNs = float64(cpu2-cpu1) / float64(total)
		b.Logf("%s: its deferred persistence took %.0f ns CPU/sample (%v CPU)", srv.name, r.persistNs, cpu2-cpu1)
	}

	s.flush(b)
	endMs := timed.startMs + int64(samples-1)*stepMs
	stored := 0
	for _, metric := range metricNames { // One at a time: without __name__ their series collide.
		stored += countSamples(b, s, srv.name, fmt.Sprintf("%s[%dms]", metric, endMs-startMs+1), endMs)
	}
	require.Equal(b, n*(samples+1), stored, "%s: every sample stored", srv.name)
	s.stop(b)
	return r
}

// countSamples returns sum(count_over_time(sel)) at endMs on s.
func countSamples(b *testing.B, s ingestServer, name, sel string, endMs int64) int {
	code, body := s.query(b, url.Values{"query": {"sum(count_over_time(" + sel + "))"}, "time": {clustertest.FormatAPITime(endMs)}})
	require.Equal(b, http.StatusOK, code, "%s: %s", name, clustertest.Truncate(string(body), 1000))
	var r struct {
		Data struct {
			Result []struct{ Value [2]json.RawMessage }
		}
	}
	require.NoError(b, json.Unmarshal(body, &r))
	if len(r.Data.Result) == 0 {
		return 0
	}
	var v string
	require.NoError(b, json.Unmarshal(r.Data.Result[0].Value[1], &v), "%s: %s", name, clustertest.Truncate(string(body), 1000))
	n, err := strconv.Atoi(v)
	require.NoError(b, err, "%s: %s", name, clustertest.Truncate(string(body), 1000))
	return n
}

func startArgus(b *testing.B) ingestServer {
	p := clustertest.StartArgus(b, clustertest.Options{Flags: append([]string{"-log.level=warn", "-distributor.ingestion-rate-limit=0",
		"-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0"}, argusProfileFlags()...)})
	return ingestServer{
		pushURL: p.PushURL(), header: http.Header{clustertest.TenantHeader: {tenant}}, pid: p.PID(),
		query: func(b *testing.B, params url.Values) (int, []byte) {
			return p.Query(b, tenant, clustertest.PromAPI+"/query", params)
		},
		flush:   func(*testing.B) {},
		drain:   func(b *testing.B) { waitFlushed(b, p) },
		stop:    func(b *testing.B) { p.Stop(b) },
		profile: p.CPUProfile,
	}
}

// waitFlushed waits until the argus process p has flushed every chunk
// finished so far: its flush queue is empty and a flush has ended since
// the queue last held series (or, if the queue stays empty and no flush
// ends, for idleWait: nothing was finished). Without it the flush of the
// last requests' chunks fell after the CPU reading or not, by the phase
// of the 10 s flush ticker: 556 to 760 ns per sample on the same binary
// at 120 samples per request. It polls /metrics once a second (a few ms
// of the server's CPU each, counted).
func waitFlushed(b *testing.B, p *clustertest.Process) {
	const (
		idleWait = 3 * time.Second
		poll     = time.Second
		limit    = 5 * time.Minute
	)
	last := p.Metric(b, "argus_ingester_flush_duration_seconds_count", nil)
	waited := false
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(poll) {
		fams := p.MetricFamilies(b)
		queued := clustertest.SumMetric(fams, "argus_ingester_flush_queue_length", nil)
		n := clustertest.SumMetric(fams, "argus_ingester_flush_duration_seconds_count", nil)
		switch {
		case queued > 0:
			last, waited = n, true
		case n > last:
			return
		case !waited && time.Until(deadline) < limit-idleWait:
			return
		}
	}
	b.Fatalf("argus: flush queue not drained in %v", limit)
}

func startPrometheus(b *testing.B) ingestServer {
	p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{
		NoSelfScrape: true,
		Flags:        []string{"--web.enable-remote-write-receiver", "--web.enable-admin-api"},
	})
	return ingestServer{
		pushURL: p.URL() + "/api/v1/write", header: http.Header{}, pid: p.PID(),
		query: func(b *testing.B, params url.Values) (int, []byte) { return p.Query(b, "/api/v1/query", params) },
		flush: func(*testing.B) {},
		// The snapshot writes the head as a block, as its compaction does.
		persist: func(b *testing.B) {
			code, body := p.QueryPost(b, "/api/v1/admin/tsdb/snapshot", url.Values{"skip_head": {"false"}})
			require.Equal(b, http.StatusOK, code, "prometheus snapshot: %s", clustertest.Truncate(string(body), 1000))
		},
		stop: func(b *testing.B) { p.Stop(b) },
	}
}

func startVictoriaMetrics(b *testing.B) ingestServer {
	// Its defaults cap a query at fewer series than the count selects.
	v := clustertest.StartVictoriaMetrics(b, "-search.maxUniqueTimeseries=5000000")
	return ingestServer{
		pushURL: v.WriteURL(), header: http.Header{}, pid: v.PID(),
		query: func(b *testing.B, params url.Values) (int, []byte) { return v.Query(b, "/api/v1/query", params) },
		flush: func(b *testing.B) { v.ForceFlush(b) },
		stop:  func(b *testing.B) { v.Stop(b) },
	}
}

// envInt returns $name as an int, or def when it is unset.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, "%s", name)
	require.Positive(b, n, "%s", name)
	return n
}
