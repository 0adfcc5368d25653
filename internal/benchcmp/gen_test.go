package benchcmp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The generated data, shared by both sides of every benchmark: label sets
// that look like Kubernetes pod metrics scraped every 15s, and values that mix
// counters, random-walk gauges and constants. Everything is derived from
// benchSeed, so two runs (and the two sides of one run) see the same series
// and the same samples.
const (
	benchSeed = 0x5eed_a4905

	// tenantID is the Argus tenant every benchmark writes to and reads from.
	tenantID = "bench"

	// batchSeries is the number of series in one push: one WriteRequest to
	// Argus, one Appender commit to Prometheus, like a remote-write batch.
	batchSeries = 1000

	// scrapeIntervalMs is the time between two samples of a series.
	scrapeIntervalMs = int64(15 * time.Second / time.Millisecond)

	// metricsPerPod is the number of series generated per pod (len(podMetrics)).
	metricsPerPod = 5
)

// baseTimeMs is the timestamp of the first sample of every series: a fixed
// instant aligned to 2h, as Prometheus aligns its chunk and block ranges, so
// that chunk boundaries are the same in every run.
var baseTimeMs = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

type seriesKind uint8

const (
	// kindCounter increases by a small random integer (often 0) per scrape.
	kindCounter seriesKind = iota
	// kindGauge is a random walk over floats with full mantissas.
	kindGauge
	// kindConstant never changes.
	kindConstant
)

// podMetrics are the metrics every pod exposes: 2 counters, 2 gauges and a
// constant, so 40% / 40% / 20% of the series.
var podMetrics = [metricsPerPod]struct {
	name string
	kind seriesKind
}{
	{"http_requests_total", kindCounter},
	{"container_network_receive_bytes_total", kindCounter},
	{"container_memory_working_set_bytes", kindGauge},
	{"node_load1", kindGauge},
	{"kube_pod_container_status_ready", kindConstant},
}

// queryMetric is the counter the range-query benchmark aggregates.
const queryMetric = "http_requests_total"

var jobs = []string{
	"kubelet", "node-exporter", "kube-state-metrics", "apiserver", "coredns",
	"ingress-nginx", "cert-manager", "payments", "checkout", "search",
}

var containers = []string{"app", "sidecar", "istio-proxy", "init"}

// genSeries is one generated series.
type genSeries struct {
	// labels are sorted by name, as the distributor hands them to ingesters.
	labels []*arguspb.Label
	kind   seriesKind
}

// generateSeries returns n series with about 10 labels each. Series i is
// metric i%5 of pod i/5; pods are spread over jobs, namespaces and nodes.
func generateSeries(n int) []genSeries {
	rng := rand.New(rand.NewPCG(benchSeed, 1))
	out := make([]genSeries, 0, n)
	var pod podLabels
	for i := range n {
		if i%metricsPerPod == 0 {
			pod = newPodLabels(rng, i/metricsPerPod)
		}
		m := podMetrics[i%metricsPerPod]
		out = append(out, genSeries{kind: m.kind, labels: pod.withName(m.name)})
	}
	return out
}

// podLabels are the labels every series of one pod shares.
type podLabels struct {
	container, endpoint, instance, job, namespace, node, pod, service, uid string
}

func newPodLabels(rng *rand.Rand, p int) podLabels {
	job := jobs[p%len(jobs)]
	ns := fmt.Sprintf("team-%02d", p/7%40)
	deployment := fmt.Sprintf("%s-%d", job, p/3%50)
	return podLabels{
		container: containers[p%len(containers)],
		endpoint:  "http-metrics",
		instance:  fmt.Sprintf("10.%d.%d.%d:8080", p>>16&0xff, p>>8&0xff, p&0xff),
		job:       job,
		namespace: ns,
		node:      fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", p/110%256, p/110*7%256),
		pod:       fmt.Sprintf("%s-%08x-%05x", deployment, rng.Uint32(), rng.Uint32()&0xfffff),
		service:   deployment,
		uid: fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
			rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff),
	}
}

// withName returns the label set of metric name of this pod, sorted by name.
func (p podLabels) withName(name string) []*arguspb.Label {
	return []*arguspb.Label{
		{Name: "__name__", Value: name},
		{Name: "container", Value: p.container},
		{Name: "endpoint", Value: p.endpoint},
		{Name: "instance", Value: p.instance},
		{Name: "job", Value: p.job},
		{Name: "namespace", Value: p.namespace},
		{Name: "node", Value: p.node},
		{Name: "pod", Value: p.pod},
		{Name: "service", Value: p.service},
		{Name: "uid", Value: p.uid},
	}
}

// valueGen produces the next value of every series. It is not safe for
// concurrent use. Two valueGens over the same series produce the same values.
type valueGen struct {
	kinds []seriesKind
	vals  []float64
	rngs  []rand.PCG
}

func newValueGen(series []genSeries) *valueGen {
	g := &valueGen{
		kinds: make([]seriesKind, len(series)),
		vals:  make([]float64, len(series)),
		rngs:  make([]rand.PCG, len(series)),
	}
	for i, s := range series {
		g.kinds[i] = s.kind
		g.rngs[i] = *rand.NewPCG(benchSeed, uint64(i)+2)
		switch s.kind {
		case kindCounter:
			g.vals[i] = float64(g.rngs[i].Uint64() % 100_000)
		case kindGauge:
			g.vals[i] = float64(g.rngs[i].Uint64()%1_000_000) / 7
		case kindConstant:
			g.vals[i] = 1
		}
	}
	return g
}

// next advances series i by one scrape and returns its value.
func (g *valueGen) next(i int) float64 {
	switch g.kinds[i] {
	case kindCounter:
		// 0 to 9; about a third of the scrapes see no increase.
		if x := g.rngs[i].Uint64() % 15; x < 10 {
			g.vals[i] += float64(x)
		}
	case kindGauge:
		// A uniform step in [-1, 1).
		g.vals[i] += float64(g.rngs[i].Uint64()>>11)/(1<<52) - 1
	case kindConstant:
	}
	return g.vals[i]
}

// newRequests splits series into WriteRequests of batchSeries series with one
// sample each; fill sets the samples. With clone, every label string is a fresh
// copy, so that what a TSDB retains of a request is charged to that TSDB.
func newRequests(series []genSeries, clone bool) []*arguspb.WriteRequest {
	var reqs []*arguspb.WriteRequest
	for lo := 0; lo < len(series); lo += batchSeries {
		hi := min(lo+batchSeries, len(series))
		req := &arguspb.WriteRequest{Timeseries: make([]*arguspb.TimeSeries, 0, hi-lo)}
		for _, s := range series[lo:hi] {
			ls := s.labels
			if clone {
				ls = make([]*arguspb.Label, len(s.labels))
				for j, l := range s.labels {
					ls[j] = &arguspb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
				}
			}
			req.Timeseries = append(req.Timeseries, &arguspb.TimeSeries{
				Labels:  ls,
				Samples: []*arguspb.Sample{{}},
			})
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// fill sets the one sample of every series of reqs (as returned by
// newRequests over the series of g) to the next value at timestamp ts.
func (g *valueGen) fill(reqs []*arguspb.WriteRequest, ts int64) {
	i := 0
	for _, req := range reqs {
		for _, s := range req.Timeseries {
			s.Samples[0].TimestampMs = ts
			s.Samples[0].Value = g.next(i)
			i++
		}
	}
}

// scrapeTime returns the timestamp of scrape k (0-based).
func scrapeTime(k int) int64 { return baseTimeMs + int64(k)*scrapeIntervalMs }
