package benchscrape

// Run one op (scripts/bench.sh sets the binaries):
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkScrapeCPU -benchtime=1x -count=1 ./internal/benchscrape/

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// Knobs (environment) and their defaults: targets, series per target, and
// the seconds measured after the warm-up.
const (
	targetsEnv     = "BENCH_SCRAPE_TARGETS"
	seriesEnv      = "BENCH_SCRAPE_SERIES"
	secondsEnv     = "BENCH_SCRAPE_SECONDS"
	defaultTargets = 50
	defaultSeries  = 1000
	defaultSeconds = 20
	warmup         = 5 * time.Second
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startTargets starts n exporters of series counters each, in this process
// (their CPU is not counted), every value moving by one per scrape.
func startTargets(b *testing.B, n, series int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		var scrapes atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			k := scrapes.Add(1)
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			var sb strings.Builder
			sb.WriteString("# TYPE bench_requests_total counter\n")
			for s := range series {
				fmt.Fprintf(&sb, "bench_requests_total{path=\"/api/%d\",code=\"200\"} %d\n", s, k*int64(s+1))
			}
			_, _ = w.Write([]byte(sb.String()))
		}))
		b.Cleanup(srv.Close)
		addrs[i] = strconv.Quote(strings.TrimPrefix(srv.URL, "http://"))
	}
	return addrs
}

// server is one scraper under test: its pid and its count of samples
// stored so far.
type server struct {
	pid     int
	samples func(b *testing.B) float64
}

// measure waits out the warm-up, then returns the samples stored and the
// CPU the process used over d.
func measure(b *testing.B, s server, d time.Duration) (samples float64, cpu time.Duration) {
	time.Sleep(warmup)
	s0, c0 := s.samples(b), processCPU(b, s.pid)
	time.Sleep(d)
	s1, c1 := s.samples(b), processCPU(b, s.pid)
	return s1 - s0, c1 - c0
}

func processCPU(b *testing.B, pid int) time.Duration {
	c, err := clustertest.ProcessCPU(pid)
	require.NoError(b, err)
	return c
}

// BenchmarkScrapeCPU scrapes BENCH_SCRAPE_TARGETS targets of
// BENCH_SCRAPE_SERIES counters each at a 1 s interval, with Argus
// (-target=all with -scraper.config-file) and then with Prometheus, each
// fresh, and reports the samples stored per CPU second of each (samples/s
// per core) and their ratio.
func BenchmarkScrapeCPU(b *testing.B) {
	nt, ns, secs := envInt(targetsEnv, defaultTargets), envInt(seriesEnv, defaultSeries), envInt(secondsEnv, defaultSeconds)
	addrs := startTargets(b, nt, ns)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [%s]\n", strings.Join(addrs, ", "))
	cfgPath := filepath.Join(b.TempDir(), "prometheus.yml")
	require.NoError(b, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	d := time.Duration(secs) * time.Second
	b.Run(fmt.Sprintf("targets=%d/series=%d", nt, ns), func(b *testing.B) {
		for b.Loop() {
			a := clustertest.StartArgus(b, clustertest.Options{Flags: []string{
				"-log.level=warn", "-scraper.config-file=" + cfgPath, "-auth.multitenancy-enabled=false",
				"-distributor.ingestion-rate-limit=0", "-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0",
			}})
			as, ac := measure(b, server{pid: a.PID(), samples: func(b *testing.B) float64 {
				return a.Metric(b, "argus_scraper_pushed_samples_total", nil)
			}}, d)
			a.Stop(b)
			p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{ConfigYAML: cfg})
			ps, pc := measure(b, server{pid: p.PID(), samples: func(b *testing.B) float64 {
				return p.Metric(b, "prometheus_tsdb_head_samples_appended_total", nil)
			}}, d)
			p.Stop(b)
			require.Positive(b, as)
			require.Positive(b, ps)
			argusRate, promRate := as/ac.Seconds(), ps/pc.Seconds()
			b.ReportMetric(argusRate, "argus-samples/cpu-s")
			b.ReportMetric(promRate, "prometheus-samples/cpu-s")
			b.ReportMetric(argusRate/promRate, "argus/prometheus-x")
			b.ReportMetric(as/d.Seconds(), "argus-samples/s")
			b.ReportMetric(ps/d.Seconds(), "prometheus-samples/s")
			b.Logf("argus: %.0f samples in %s CPU; prometheus: %.0f samples in %s CPU", as, ac, ps, pc)
		}
	})
}
