package storage

import (
	"fmt"
	"math/rand/v2"
)

// benchMetrics are the five metrics of each pod in the benchmark data,
// shaped like that of `make bench` (internal/benchcmp): two counters, two
// random-walk gauges, a constant.
var benchMetrics = []string{"http_requests_total", "container_network_receive_bytes_total",
	"container_memory_working_set_bytes", "node_load1", "kube_pod_container_status_ready"}

// benchPodLabels returns the label pairs (all but __name__) of pod p of the
// benchmark data, drawing its pod name and UID from rng. The benchmarks of
// DB and of parts call it in the same order from the same seed, so they
// measure the same series.
func benchPodLabels(p int, rng *rand.Rand) []string {
	jobs := []string{"kubelet", "node-exporter", "kube-state-metrics", "apiserver", "coredns",
		"ingress-nginx", "cert-manager", "payments", "checkout", "search"}
	containers := []string{"app", "sidecar", "istio-proxy", "init"}
	job := jobs[p%len(jobs)]
	deployment := fmt.Sprintf("%s-%d", job, p/3%50)
	return []string{
		"container", containers[p%len(containers)],
		"endpoint", "http-metrics",
		"instance", fmt.Sprintf("10.%d.%d.%d:8080", p>>16&0xff, p>>8&0xff, p&0xff),
		"job", job,
		"namespace", fmt.Sprintf("team-%02d", p/7%40),
		"node", fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", p/110%256, p/110*7%256),
		"pod", fmt.Sprintf("%s-%08x-%05x", deployment, rng.Uint32(), rng.Uint32()&0xfffff),
		"service", deployment,
		"uid", fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff,
			rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff),
	}
}
