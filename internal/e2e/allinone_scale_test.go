package e2e

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// The all-in-one's promise for one user (docs/getting-started.md): a
// Prometheus of 1M series scraped every 15 s remote-writes to
// `argus -target=all` with Prometheus's default remote_write and no limit
// touched, and nothing is refused or dropped.
const (
	scaleMetrics          = 100  // metric names per target
	scaleSeriesPerMetric  = 1000 // series per metric name and target
	scaleSeriesPerTarget  = scaleMetrics * scaleSeriesPerMetric
	scaleRounds           = 4 // scrape rounds compared at least
	scaleScrapeInterval   = 15 * time.Second
	scaleMetricNamePrefix = "argus_scale_m"
	scaleTenant           = "scale"
)

// TestAllInOneMillionSeries is that promise: 10 targets of 100K series each
// (1M series), scraped every 15 s by the real Prometheus, whose
// remote_write to a default all-in-one argus has no queue_config at all.
// It needs about 2 free cores for its 3 to 5 minutes (Prometheus alone
// takes about one to scrape and send 1M series every 15 s), more than
// `make test` has while other packages run beside it, so `make bench` runs
// it (ARGUS_SCALE_1M=1) and `make test` runs the same at 200K series
// (TestAllInOneScale).
func TestAllInOneMillionSeries(t *testing.T) {
	skipIfShort(t)
	if os.Getenv("ARGUS_SCALE_1M") != "1" {
		t.Skip("1M series need 2 free cores for minutes: `make bench` runs it (ARGUS_SCALE_1M=1); TestAllInOneScale runs 200K series in `make test`")
	}
	runScale(t, 10)
}

// TestAllInOneScale is TestAllInOneMillionSeries at 200K series (2 targets).
func TestAllInOneScale(t *testing.T) {
	skipIfShort(t)
	runScale(t, 2)
}

// runScale runs targets targets of 100K series each through Prometheus
// into a default all-in-one. After scaleRounds+1 full scrape rounds the
// exporter stops answering (Prometheus marks the series stale), and once
// Prometheus's queue has sent everything it asserts that Prometheus failed,
// dropped and retried no sample and argus discarded none (every reason) and
// refused no push to its ingester; that at the time of the last scrape of
// each round argus answers count by (job) and sum by (job) over the series
// exactly as Prometheus's own TSDB does (the values change every scrape, so
// a lost sample changes a sum), with every series there; and so
// for the number of samples of all rounds (count_over_time). It logs the
// RSS and CPU of both processes.
func runScale(t *testing.T, targets int) {
	if runtime.GOOS != "linux" {
		t.Skip("reads RSS and CPU from /proc")
	}
	clustertest.PrometheusBinary(t)
	exp := startScaleExporter(t, targets)
	a := clustertest.StartArgus(t, clustertest.Options{}) // -target=all, every default
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{ConfigYAML: scaleConfig(a, exp.addr, targets)})
	argusCPU0, promCPU0 := cpuOf(t, a.PID()), cpuOf(t, p.PID())
	start := time.Now()

	// Waits are generous: on 2 shared cores, Prometheus skips scrapes when
	// its own loop falls behind.
	clustertest.Eventually(t, func() string {
		if n := exp.minScrapes(); n < scaleRounds+2 {
			return fmt.Sprintf("every target scraped at least %d times, want %d", n, scaleRounds+2)
		}
		return ""
	}, 15*time.Minute)
	exp.stop()
	rounds := scrapeTimes(t, p, targets)
	require.GreaterOrEqual(t, len(rounds), scaleRounds, "rounds with every target's sample in Prometheus's TSDB: %v", rounds)
	last := rounds[len(rounds)-1]
	waitRemoteWriteSent(t, p, last)
	elapsed := time.Since(start)
	argusCPU, promCPU := cpuOf(t, a.PID())-argusCPU0, cpuOf(t, p.PID())-promCPU0
	requireNothingLost(t, p, a)
	logScaleResources(t, p, targets, elapsed, a.PID(), argusCPU, promCPU)
	requireSameAnswers(t, p, a, targets, rounds)
	_, ah := rssOf(t, a.PID())
	_, ph := rssOf(t, p.PID())
	t.Logf("after the queries over all series: argus peak RSS %d MiB, prometheus peak RSS %d MiB", ah>>20, ph>>20)
}

// requireSameAnswers compares argus's answers with Prometheus's at each of
// rounds, and the samples of all of them.
func requireSameAnswers(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, targets int, rounds []int64) {
	t.Helper()
	sel := `{__name__=~"` + scaleMetricNamePrefix + `.+"}`
	// At 1M series each query takes Prometheus and argus seconds: two per
	// round, and the total number of series is read from the first.
	want := strconv.Itoa(scaleSeriesPerTarget)
	for i, at := range rounds {
		ts := clustertest.FormatAPITime(at)
		for _, q := range []string{"count by (job) (" + sel + ")", "sum by (job) (" + sel + ")"} {
			params := url.Values{"query": {q}, "time": {ts}}
			pc, pb := p.Query(t, "/api/v1/query", params)
			ac, ab := a.Query(t, scaleTenant, clustertest.PromAPI+"/query", params)
			diff, n := clustertest.DiffBodies(t, pc, pb, ac, ab, true)
			require.Empty(t, diff, "round %d at %s: %s (-prometheus +argus)", i+1, ts, q)
			require.Equal(t, targets, n, "%s: a result per target", q)
			if strings.HasPrefix(q, "count") {
				require.Equal(t, targets, strings.Count(string(pb), `"`+want+`"]`), "every series of every target at round %d: %s", i+1, pb)
			}
		}
	}
	last := rounds[len(rounds)-1]
	window := strconv.FormatInt((last-rounds[0])/1000+int64(scaleScrapeInterval/time.Second), 10) + "s"
	// count_over_time drops the metric name; the label m keeps the series
	// of the metric names apart.
	params := url.Values{"query": {"sum by (job) (count_over_time(" + sel + "[" + window + "]))"}, "time": {clustertest.FormatAPITime(last)}}
	diff, _ := clustertest.DiffAnswers(t, p, a, scaleTenant, "/query", params, true)
	require.Empty(t, diff, "samples of all rounds (-prometheus +argus)")
}

// scaleConfig is a prometheus.yml with one job per target and Prometheus's
// default remote_write: no queue_config, no retry_on_http_429.
func scaleConfig(a *clustertest.Process, exporter string, targets int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\nscrape_configs:\n", scaleScrapeInterval)
	for i := range targets {
		fmt.Fprintf(&b, "  - job_name: scale-%d\n    metrics_path: /metrics/%d\n    static_configs:\n      - targets: [%q]\n", i, i, exporter)
	}
	fmt.Fprintf(&b, "remote_write:\n  - url: %q\n    headers:\n      %s: %s\n", a.PushURL(), clustertest.TenantHeader, scaleTenant)
	return b.String()
}

// scrapeTimes returns, per scrape round n (1-based, the n-th scrape of
// every target), the timestamp of its last target's scrape, in Unix ms,
// for the rounds of which every target's scrape succeeded. The exporter writes n
// into every value (n*1000 + series), so series 0 of the first metric
// tells the round of each sample.
func scrapeTimes(t *testing.T, p *clustertest.Prometheus, targets int) []int64 {
	t.Helper()
	q := scaleMetricNamePrefix + `0{m="0",series="0"}[10m]`
	code, body := p.Query(t, "/api/v1/query", url.Values{"query": {q}})
	ss := clustertest.MatrixData(t, code, body)
	require.Len(t, ss, targets, "%s", q)
	last := map[int]int64{} // round -> latest timestamp among targets
	seen := map[int]int{}   // round -> targets that have it
	for _, s := range ss {
		for _, smp := range s.Samples {
			n := int(smp.V) / 1000
			seen[n]++
			last[n] = max(last[n], smp.T)
		}
	}
	var out []int64
	for n := 1; n <= slices.Max(slices.Collect(maps.Keys(seen))); n++ {
		if seen[n] == targets {
			out = append(out, last[n])
		}
	}
	return out
}

// waitRemoteWriteSent waits until Prometheus's remote-write queue has sent
// a sample newer than at and has none pending: the write-ahead log is read
// in append order and every sample at or before at was appended before the
// newer ones (the next round, the stale markers of the stopped targets), so
// all of them have been answered by argus. With the exporter stopped, only
// the up and scrape_* samples of the failing scrapes are still appended.
func waitRemoteWriteSent(t *testing.T, p *clustertest.Prometheus, at int64) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		sent := p.Metric(t, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds", nil)
		pending := p.Metric(t, "prometheus_remote_storage_samples_pending", nil)
		if sent*1000 <= float64(at) || pending != 0 {
			return fmt.Sprintf("remote write: highest sent %.3f s, want > %.3f s; %v samples pending", sent, float64(at)/1000, pending)
		}
		return ""
	}, 15*time.Minute)
}

// requireNothingLost asserts that Prometheus neither failed (a 429 without
// retry_on_http_429 is a failure), retried nor dropped a sample, and that
// argus discarded none for any reason and its ingester refused none and no
// write missed its quorum.
func requireNothingLost(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process) {
	t.Helper()
	sent := p.Metric(t, "prometheus_remote_storage_samples_total", nil)
	require.Positive(t, sent)
	for _, m := range []string{
		"prometheus_remote_storage_samples_failed_total",
		"prometheus_remote_storage_samples_retried_total",
		"prometheus_remote_storage_samples_dropped_total",
		"prometheus_remote_storage_metadata_failed_total",
		"prometheus_remote_storage_metadata_retried_total",
	} {
		require.Zero(t, p.Metric(t, m, nil), "prometheus %s (of %v samples sent)", m, sent)
	}
	fams := a.MetricFamilies(t)
	for _, m := range []string{
		"argus_discarded_samples_total", // every reason: the sum over reasons is 0
		"argus_discarded_metadata_total",
		"argus_ingester_samples_rejected_total",
		"argus_distributor_replication_quorum_failures_total",
	} {
		require.Contains(t, fams, m)
		require.Zero(t, a.Metric(t, m, nil), "argus %s", m)
	}
}

// logScaleResources logs RSS (now and peak) and CPU of argus and
// Prometheus, for the sizing in docs/getting-started.md.
func logScaleResources(t *testing.T, p *clustertest.Prometheus, targets int, elapsed time.Duration, argusPID int, argusCPU, promCPU time.Duration) {
	t.Helper()
	samples := p.Metric(t, "prometheus_remote_storage_samples_total", nil)
	ar, ah := rssOf(t, argusPID)
	pr, ph := rssOf(t, p.PID())
	t.Logf("%d series at %v, %v of scraping and sending %.0f samples: "+
		"argus RSS %d MiB (peak %d MiB), CPU %v (%.1f µs/sample); prometheus RSS %d MiB (peak %d MiB), CPU %v (%.1f µs/sample, scraping included); "+
		"argus/prometheus: peak RSS %.2f, CPU %.2f",
		targets*scaleSeriesPerTarget, scaleScrapeInterval, elapsed.Round(time.Second), samples,
		ar>>20, ah>>20, argusCPU.Round(time.Millisecond), float64(argusCPU.Microseconds())/samples,
		pr>>20, ph>>20, promCPU.Round(time.Millisecond), float64(promCPU.Microseconds())/samples,
		float64(ah)/float64(ph), argusCPU.Seconds()/promCPU.Seconds())
}

func cpuOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	d, err := clustertest.ProcessCPU(pid)
	require.NoError(t, err)
	return d
}

// rssOf reads VmRSS and VmHWM (the peak) of pid from /proc, in bytes.
func rssOf(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		require.NoError(t, err, "%s", line)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak
}

// scaleExporter serves /metrics/<i> for targets 0..n-1: scaleMetrics gauges
// argus_scale_m<m> of scaleSeriesPerMetric series {m="<m>",series="<s>"} each, in the text format, from
// precomputed line prefixes. The value of series s at the n-th scrape of a
// target is n*1000+s, so every scrape changes every value.
type scaleExporter struct {
	addr     string
	prefixes [][]byte    // line prefixes of one target, "name{m=\"m\",series=\"s\"} " (after its # TYPE line for s=0)
	stopped  atomic.Bool // then every scrape fails with a 503
	mu       sync.Mutex
	scrapes  []int // per target; guarded by mu
}

func startScaleExporter(t *testing.T, targets int) *scaleExporter {
	t.Helper()
	e := &scaleExporter{scrapes: make([]int, targets)}
	for m := range scaleMetrics {
		name := scaleMetricNamePrefix + strconv.Itoa(m)
		for s := range scaleSeriesPerMetric {
			var p []byte
			if s == 0 {
				p = fmt.Appendf(p, "# TYPE %s gauge\n", name)
			}
			e.prefixes = append(e.prefixes, fmt.Appendf(p, "%s{m=\"%d\",series=\"%d\"} ", name, m, s))
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // Returns ErrServerClosed at Close.
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

func (e *scaleExporter) serve(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/metrics/"))
	if err != nil || i < 0 || i >= len(e.scrapes) {
		http.NotFound(w, r)
		return
	}
	if e.stopped.Load() {
		http.Error(w, "stopped", http.StatusServiceUnavailable)
		return
	}
	e.mu.Lock()
	e.scrapes[i]++
	n := e.scrapes[i]
	e.mu.Unlock()
	buf := make([]byte, 0, len(e.prefixes)*40)
	for j, p := range e.prefixes {
		buf = append(buf, p...)
		buf = strconv.AppendInt(buf, int64(n*1000+j%scaleSeriesPerMetric), 10)
		buf = append(buf, '\n')
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(buf) // Prometheus counts a failed scrape itself.
}

// stop makes every later scrape fail.
func (e *scaleExporter) stop() { e.stopped.Store(true) }

// minScrapes is the number of scrapes of the least scraped target.
func (e *scaleExporter) minScrapes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.scrapes[0]
	for _, s := range e.scrapes {
		n = min(n, s)
	}
	return n
}
