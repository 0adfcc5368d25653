package benchingest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// stepMs is the time between two samples of a series: a 15 s scrape.
const stepMs = int64(15 * time.Second / time.Millisecond)

// metricNames are the metric names of the series, series i having
// metricNames[i%5].
var metricNames = [...]string{"http_requests_total", "container_network_receive_bytes_total",
	"container_memory_working_set_bytes", "node_load1", "kube_pod_container_status_ready"}

// seriesLabels returns the labels of series i, shaped like Kubernetes pod
// metrics: 9 labels, about 200 bytes of label text, 5 metric names.
func seriesLabels(i int) []*arguspb.Label {
	metrics := metricNames
	jobs := [...]string{"kubelet", "node-exporter", "kube-state-metrics", "apiserver", "payments",
		"checkout", "search", "coredns"}
	p := i / len(metrics)
	job := jobs[p%len(jobs)]
	return []*arguspb.Label{
		{Name: "__name__", Value: metrics[i%len(metrics)]},
		{Name: "container", Value: [...]string{"app", "sidecar", "istio-proxy", "init"}[p%4]},
		{Name: "endpoint", Value: "http-metrics"},
		{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:8080", p>>16&0xff, p>>8&0xff, p&0xff)},
		{Name: "job", Value: job},
		{Name: "namespace", Value: fmt.Sprintf("team-%02d", p/7%40)},
		{Name: "node", Value: fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", p/110%256, p/110*7%256)},
		{Name: "pod", Value: fmt.Sprintf("%s-%d-%08x", job, p/3%50, uint32(p)*2654435761)},
		{Name: "service", Value: fmt.Sprintf("%s-%d", job, p/3%50)},
	}
}

// sampleValue is the value of sample j of series i: a third counters, a
// third gauges with full mantissas, a third constants, as exporters send.
func sampleValue(i, j int) float64 {
	switch i % 3 {
	case 0:
		return float64(j*(i%17) + i%1000)
	case 1:
		h := uint64(i)*0x9E3779B97F4A7C15 ^ uint64(j)*0xBF58476D1CE4E5B9
		h ^= h >> 31
		return float64(h%1_000_000_000) / 1000
	default:
		return 1
	}
}

// workload is one run of pushes to one server: series series, each sent
// perRequest consecutive samples per request (seriesPerRequest series in a
// request), samples samples per series in all, the first at startMs.
type workload struct {
	series, perRequest, seriesPerRequest, samples int
	startMs                                       int64
	labels                                        [][]*arguspb.Label
}

// requests is the number of requests of the workload.
func (w *workload) requests() int {
	perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
	return perRound * (w.samples / w.perRequest)
}

// request encodes request k: round k/perRound (samples
// [round*perRequest, (round+1)*perRequest) of every series), series
// chunk k%perRound. Requests of one round hold disjoint series; a round
// starts when the last one ends, so every series gets its samples in order.
func (w *workload) request(k int, buf *arguspb.WriteRequest) ([]byte, error) {
	perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
	round, chunk := k/perRound, k%perRound
	lo, hi := chunk*w.seriesPerRequest, min((chunk+1)*w.seriesPerRequest, w.series)
	buf.Timeseries = buf.Timeseries[:0]
	for i := lo; i < hi; i++ {
		ts := &arguspb.TimeSeries{Labels: w.labels[i], Samples: make([]*arguspb.Sample, w.perRequest)}
		for j := range ts.Samples {
			n := round*w.perRequest + j
			ts.Samples[j] = &arguspb.Sample{TimestampMs: w.startMs + int64(n)*stepMs, Value: sampleValue(i, n)}
		}
		buf.Timeseries = append(buf.Timeseries, ts)
	}
	raw, err := buf.MarshalVT()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// pushAll sends every request of w to url, pushers at a time, a round's
// requests in any order but each round after the previous one, and fails
// on any answer but 2xx.
func pushAll(ctx context.Context, client *http.Client, url string, header http.Header, w *workload, pushers int) error {
	perRound := (w.series + w.seriesPerRequest - 1) / w.seriesPerRequest
	for first := 0; first < w.requests(); first += perRound {
		var next atomic.Int64
		next.Store(int64(first))
		errs := make(chan error, pushers)
		var wg sync.WaitGroup
		for range pushers {
			wg.Go(func() {
				var buf arguspb.WriteRequest
				for {
					k := int(next.Add(1)) - 1
					if k >= first+perRound || ctx.Err() != nil {
						return
					}
					body, err := w.request(k, &buf)
					if err == nil {
						err = clustertest.PostRemoteWrite(ctx, client, url, header, body)
					}
					if err != nil {
						errs <- fmt.Errorf("request %d: %w", k, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// newClient returns an HTTP client that keeps a connection per pusher.
func newClient(pushers int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pushers, DisableCompression: true}, Timeout: 5 * time.Minute}
}

// cpuOf returns the CPU time process pid has used so far.
func cpuOf(pid int) (time.Duration, error) { return clustertest.ProcessCPU(pid) }
