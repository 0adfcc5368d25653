package benchcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// The load: seriesCount series that look like Kubernetes pod metrics (10
// labels, about 240 bytes of label text), one sample per series per round at
// the next 15s timestamp, in requests of batchSeries series, as Prometheus
// remote-writes them. Everything derives from loadSeed.
const (
	loadSeed    = 0xa4905_c1a5
	seriesCount = 12_000
	batchSeries = 1000
	// pushers is the number of concurrent HTTP clients; with 12 requests a
	// round, each pushes 3 per round when all answer equally fast.
	pushers = 4
	// stepMs is the time between two samples of a series.
	stepMs = int64(15 * time.Second / time.Millisecond)
	tenant = "bench"
)

// baseMs is the first timestamp, aligned to 2h so that chunk boundaries are
// the same in every run.
var baseMs = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// load holds the encoded requests of every round, built lazily and cached:
// round r is requests[r], seriesCount/batchSeries snappy-compressed
// WriteRequests. It is shared by all sub-benchmarks (every topology starts
// from empty storage, so each pushes the same rounds from round 0). Its
// methods are called from the benchmark goroutine only; the byte slices it
// returns are never modified and may be read concurrently.
type load struct {
	series []clustertest.TimeSeries // labels of every series; Samples unused
	vals   []float64                // value of every series at the last encoded round
	kinds  []uint8                  // 0 counter, 1 gauge, 2 constant
	rng    *rand.Rand
	rounds [][][]byte
}

var (
	theLoad     *load
	theLoadOnce sync.Once
)

func sharedLoad() *load {
	theLoadOnce.Do(func() { theLoad = newLoad() })
	return theLoad
}

func newLoad() *load {
	rng := rand.New(rand.NewPCG(loadSeed, 1))
	jobs := []string{"kubelet", "node-exporter", "kube-state-metrics", "apiserver", "coredns",
		"ingress-nginx", "cert-manager", "payments", "checkout", "search"}
	metrics := []string{"http_requests_total", "container_network_receive_bytes_total",
		"container_memory_working_set_bytes", "node_load1", "kube_pod_container_status_ready"}
	kindOf := []uint8{0, 0, 1, 1, 2}
	l := &load{rng: rng}
	for i := range seriesCount {
		p := i / len(metrics)
		job := jobs[p%len(jobs)]
		deployment := fmt.Sprintf("%s-%d", job, p/3%50)
		l.series = append(l.series, clustertest.TimeSeries{Labels: clustertest.Labels(
			"__name__", metrics[i%len(metrics)],
			"container", []string{"app", "sidecar", "istio-proxy", "init"}[p%4],
			"endpoint", "http-metrics",
			"instance", fmt.Sprintf("10.%d.%d.%d:8080", p>>16&0xff, p>>8&0xff, p&0xff),
			"job", job,
			"namespace", fmt.Sprintf("team-%02d", p/7%40),
			"node", fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", p/110%256, p/110*7%256),
			"pod", fmt.Sprintf("%s-%08x-%05x", deployment, rng.Uint32(), rng.Uint32()&0xfffff),
			"service", deployment,
			"uid", fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()),
		)})
		k := kindOf[i%len(kindOf)]
		l.kinds = append(l.kinds, k)
		l.vals = append(l.vals, [3]float64{float64(rng.IntN(100_000)), rng.Float64() * 1e6, 1}[k])
	}
	return l
}

// round returns the requests of round r, encoding every round up to r that
// is not encoded yet.
func (l *load) round(tb testing.TB, r int) [][]byte {
	tb.Helper()
	for len(l.rounds) <= r {
		ts := baseMs + int64(len(l.rounds))*stepMs
		var reqs [][]byte
		for lo := 0; lo < len(l.series); lo += batchSeries {
			batch := make([]clustertest.TimeSeries, 0, batchSeries)
			for i := lo; i < min(lo+batchSeries, len(l.series)); i++ {
				switch l.kinds[i] {
				case 0: // counter: +0..9, a third of the scrapes see no increase
					if x := l.rng.IntN(15); x < 10 {
						l.vals[i] += float64(x)
					}
				case 1: // gauge: a random walk with full mantissas
					l.vals[i] += l.rng.Float64()*2 - 1
				}
				batch = append(batch, clustertest.TimeSeries{
					Labels:  l.series[i].Labels,
					Samples: []clustertest.Sample{{T: ts, V: l.vals[i]}},
				})
			}
			reqs = append(reqs, clustertest.EncodeWriteRequest(tb, batch))
		}
		l.rounds = append(l.rounds, reqs)
	}
	return l.rounds[r]
}

// pusher sends pre-encoded remote-write 1.0 bodies to one URL with a fixed
// number of concurrent clients. It is used from one goroutine at a time.
type pusher struct {
	url    string
	client *http.Client
}

func newPusher(tb testing.TB, url string) *pusher {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: pushers, DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &pusher{url: url, client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// pushAll sends every body, pushers at a time, and returns when all have
// answered. Bodies must hold disjoint series (the requests of one round), as
// they are pushed in no particular order. Any answer but 2xx is an error.
func (p *pusher) pushAll(ctx context.Context, bodies [][]byte) error {
	var next atomic.Int64
	errs := make(chan error, pushers)
	for range pushers {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					errs <- nil
					return
				}
				if err := p.push(ctx, bodies[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range pushers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (p *pusher) push(ctx context.Context, body []byte) error {
	return clustertest.PostRemoteWrite(ctx, p.client, p.url, http.Header{clustertest.TenantHeader: {tenant}}, body)
}
