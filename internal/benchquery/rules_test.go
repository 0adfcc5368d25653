package benchquery

// BenchmarkRuleEvaluation measures the ruler: 1,000 recording rules (10
// groups of 100, a 10 s interval) over 100K series, on the real argus
// binary (rules uploaded through /prometheus/config/v1/rules, results
// written back through the distributor) and on the real Prometheus 3.16
// loading the same rules as a rule file, both filled alike in the same run.
// It reports the mean time a group's evaluation took (Prometheus's
// rule_group_last_duration_seconds, which both servers export, averaged over
// the groups; the median of several readings) and the CPU time the server
// process used per 1,000 rule evaluations (rule_evaluations_total, so that
// iterations a loaded machine skips do not flatter either side), and the
// ratios Argus/Prometheus. One op is the
// whole run (about 3 minutes on 2 cores):
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkRuleEvaluation -benchtime=1x -count=1 -timeout=30m -v ./internal/benchquery/
//
// BENCH_RULES_SERIES overrides the 100000 series.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

const (
	ruleGroups     = 10
	rulesPerGroup  = 100
	ruleInterval   = 10 * time.Second
	ruleWarmup     = 3 // intervals before the first reading
	ruleReadings   = 6 // intervals read
	defaultRuleSrs = 100_000
)

// benchRuleGroups returns the groups, each as the YAML of one group: rule i
// sums the 5-minute rate of one metric in one namespace by instance (about
// n/400 series each).
func benchRuleGroups() []string {
	groups := make([]string, ruleGroups)
	for g := range groups {
		var b strings.Builder
		fmt.Fprintf(&b, "name: bench-%02d\ninterval: %s\nrules:\n", g, ruleInterval)
		for r := range rulesPerGroup {
			i := g*rulesPerGroup + r
			fmt.Fprintf(&b, "  - record: bench:rule_%04d\n    expr: sum by (instance) (rate(%s{namespace=\"namespace-%02d\"}[5m]))\n",
				i, metricNames[i%len(metricNames)], i/len(metricNames)%40)
		}
		groups[g] = b.String()
	}
	return groups
}

// ruleServer is one server under test.
type ruleServer struct {
	name    string
	pushURL string
	header  http.Header
	pid     int
	// lastDuration is the sum over the groups of the last evaluation's duration.
	lastDuration func(b *testing.B) float64
	// evaluations is the number of rule evaluations so far.
	evaluations func(b *testing.B) float64
	recorded    func(b *testing.B) string // count of the recorded series
}

func BenchmarkRuleEvaluation(b *testing.B) {
	n := defaultRuleSrs
	if v := os.Getenv("BENCH_RULES_SERIES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "BENCH_RULES_SERIES")
	}
	groups := benchRuleGroups()
	for b.Loop() {
		got := map[string][2]float64{}
		for _, start := range []func(*testing.B, []string) ruleServer{startRulesPrometheus, startRulesArgus} {
			s := start(b, groups)
			fillRuleServer(b, s, n)
			wall, cpu := readRuleEvaluation(b, s)
			got[s.name] = [2]float64{wall, cpu}
		}
		a, p := got["argus"], got["prometheus"]
		b.ReportMetric(a[0], "argus-group-eval-ms")
		b.ReportMetric(p[0], "prometheus-group-eval-ms")
		b.ReportMetric(a[0]/p[0], "eval-ratio")
		b.ReportMetric(a[1], "argus-cpu-ms/1000-evals")
		b.ReportMetric(p[1], "prometheus-cpu-ms/1000-evals")
		b.ReportMetric(a[1]/p[1], "cpu-ratio")
		b.Logf("1000 recording rules over %d series: a group of 100 rules takes argus %.0f ms, prometheus %.0f ms (%.2fx); CPU per 1000 rule evaluations argus %.0f ms, prometheus %.0f ms (%.2fx)",
			n, a[0], p[0], a[0]/p[0], a[1], p[1], a[1]/p[1])
	}
	b.ReportMetric(0, "ns/op")
}

// fillRuleServer pushes n series of 10 samples a minute apart, the last
// at the start of this minute.
func fillRuleServer(b *testing.B, s ruleServer, n int) {
	endMs := time.Now().Truncate(time.Minute).UnixMilli()
	client := &http.Client{Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	for first := 0; first < n; first += queryPushSeries {
		body := clustertest.EncodeWriteRequest(b, querySeriesBatch(first, min(first+queryPushSeries, n), querySamples, endMs))
		req, err := http.NewRequest(http.MethodPost, s.pushURL, bytes.NewReader(body))
		require.NoError(b, err)
		req.Header = s.header.Clone()
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		require.NoError(b, err)
		_ = resp.Body.Close()
		require.True(b, resp.StatusCode/100 == 2, "%s: push of series %d..: %d", s.name, first, resp.StatusCode)
	}
}

// readRuleEvaluation waits ruleWarmup intervals, then over ruleReadings
// intervals reads the mean group evaluation time and the process's CPU time
// per 1,000 rule evaluations, and returns their medians in milliseconds.
func readRuleEvaluation(b *testing.B, s ruleServer) (wall, cpu float64) {
	time.Sleep(ruleWarmup * ruleInterval)
	var walls, cpus []float64
	for range ruleReadings {
		c0, e0 := cpuTime(b, s.pid), s.evaluations(b)
		time.Sleep(ruleInterval)
		if evals := s.evaluations(b) - e0; evals > 0 {
			cpus = append(cpus, float64(cpuTime(b, s.pid)-c0)/float64(time.Millisecond)/evals*1000)
		}
		walls = append(walls, s.lastDuration(b)*1000/ruleGroups)
	}
	require.NotEmpty(b, cpus, "%s evaluated no rule", s.name)
	slices.Sort(walls)
	slices.Sort(cpus)
	b.Logf("%s: group evaluation ms %v, CPU ms per 1000 rule evaluations %v; recorded series: %s", s.name, walls, cpus, s.recorded(b))
	return walls[len(walls)/2], cpus[len(cpus)/2]
}

func startRulesPrometheus(b *testing.B, groups []string) ruleServer {
	var file strings.Builder
	file.WriteString("groups:\n")
	for _, g := range groups {
		for i, line := range strings.Split(strings.TrimSuffix(g, "\n"), "\n") {
			if i == 0 {
				file.WriteString("  - " + line + "\n")
			} else {
				file.WriteString("    " + line + "\n")
			}
		}
	}
	p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{
		NoSelfScrape: true, ScrapeInterval: ruleInterval, Rules: file.String(),
		Flags: []string{"--web.enable-remote-write-receiver"},
	})
	b.Cleanup(func() { p.Stop(b) })
	return ruleServer{
		name: "prometheus", pushURL: p.URL() + "/api/v1/write", header: http.Header{}, pid: p.PID(),
		lastDuration: func(b *testing.B) float64 { return p.Metric(b, "prometheus_rule_group_last_duration_seconds", nil) },
		evaluations:  func(b *testing.B) float64 { return p.Metric(b, "prometheus_rule_evaluations_total", nil) },
		recorded: func(b *testing.B) string {
			_, body := p.Query(b, "/api/v1/query", url.Values{"query": {`count({__name__=~"bench:rule_.*"})`}})
			return clustertest.Truncate(string(body), 200)
		},
	}
}

func startRulesArgus(b *testing.B, groups []string) ruleServer {
	p := clustertest.StartArgus(b, clustertest.Options{Flags: commonFlags})
	b.Cleanup(func() { p.Stop(b) })
	for _, g := range groups {
		req, err := http.NewRequest(http.MethodPost, p.URL()+"/prometheus/config/v1/rules/bench", strings.NewReader(g))
		require.NoError(b, err)
		req.Header.Set(clustertest.TenantHeader, tenant)
		code, body := p.Do(b, req)
		require.Equal(b, http.StatusAccepted, code, string(body))
	}
	return ruleServer{
		name: "argus", pushURL: p.PushURL(), header: http.Header{clustertest.TenantHeader: {tenant}}, pid: p.PID(),
		lastDuration: func(b *testing.B) float64 {
			return p.Metric(b, "argus_ruler_prometheus_rule_group_last_duration_seconds", nil)
		},
		evaluations: func(b *testing.B) float64 {
			return p.Metric(b, "argus_ruler_prometheus_rule_evaluations_total", nil)
		},
		recorded: func(b *testing.B) string {
			_, body := p.Query(b, tenant, clustertest.PromAPI+"/query", url.Values{"query": {`count({__name__=~"bench:rule_.*"})`}})
			return clustertest.Truncate(string(body), 200)
		},
	}
}
