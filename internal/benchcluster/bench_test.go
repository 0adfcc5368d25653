// BenchmarkClusterIngest compares the write path of a cluster (3 ingesters,
// RF=3, 1 distributor) with the all-in-one process, both the real argus
// binary, in one run. `make bench` runs it after internal/benchcmp and prints
// the medians and ratios; by hand (about 10 s a run; ARGUS_BIN optional):
//
//	go test -run='^$' -bench=BenchmarkClusterIngest -benchtime=40x -count=1 ./internal/benchcluster/ | tee new.txt
//	benchstat -col /topology new.txt   # all-in-one against cluster, over several such runs
//	benchstat old.txt new.txt          # a change against a baseline
//
// One op is one round: one sample for each of 12K series, in 12 pre-encoded
// requests of 1000 series sent by 4 concurrent clients. Use -benchtime=Nx
// (N rounds): every round is encoded before the timer starts, while with a
// time -benchtime rounds past the first encoded batch are encoded inside the
// timed loop. Repeat the comparison with separate `go test -count=1` runs,
// as scripts/bench.sh does: the cluster's ratio metrics compare it with the
// all-in-one sub-benchmark that ran just before it in the same process (with
// -count=N, the last all-in-one repetition). Allocations are not reported:
// this process is only the load generator.
package benchcluster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

const (
	// warmupRounds are pushed before the timer starts: the first creates the
	// series, the others let heaps, connection pools and caches settle.
	warmupRounds = 3
	// defaultRounds is how many timed rounds are encoded up front when
	// -benchtime is a duration rather than Nx.
	defaultRounds = 20
	// replicationFactor of the cluster topology.
	replicationFactor = 3
	// ringTimeout bounds the wait for the distributor to see every ingester
	// ACTIVE.
	ringTimeout = 60 * time.Second
)

// topology is one way of running argus: the process that receives the
// pushes and the roles of every process, whose CPU is measured.
type topology struct {
	pushURL string
	// procs maps a role name (all, distributor, ingester) to the processes
	// running it.
	procs map[string][]*clustertest.Process
}

// result is what one sub-benchmark measured over its timed rounds.
type result struct {
	samplesPerSec float64
	// cpuPerSample is CPU time per accepted sample by role (all,
	// distributor, ingester), of every argus process ("total") and of this
	// test process ("loadgen").
	cpuPerSample map[string]time.Duration
	// cores is the CPU time of every argus process divided by the wall time:
	// how much of the machine's 2 cores the topology kept busy.
	cores float64
	// idlePerSec is the CPU time per second of wall time of every argus
	// process ("total") while no push is sent (see idleCPU): background work
	// (gossip, WAL fsyncs, flushes, the Go runtime) that CPU per sample
	// includes, divided by the throughput.
	idlePerSec map[string]time.Duration
}

// idleWindow is how long idleCPU measures the processes without load.
const idleWindow = 3 * time.Second

// idleCPU returns the CPU time per second of each role of topo over
// idleWindow without pushes, after the warm-up rounds.
func idleCPU(b *testing.B, topo topology) map[string]time.Duration {
	b.Helper()
	before := cpuByRole(b, topo)
	time.Sleep(idleWindow) // nothing to wait on: the window is the measurement
	after := cpuByRole(b, topo)
	out := map[string]time.Duration{}
	for role, d := range after {
		if role != "loadgen" {
			out[role] = (d - before[role]) * time.Second / idleWindow
		}
	}
	return out
}

// lastAllInOne is the result of the last all-in-one sub-benchmark of this
// process, which the cluster's ratios divide by. Written and read by the
// benchmark goroutine only (sub-benchmarks run one after the other).
var lastAllInOne *result

// BenchmarkClusterIngest pushes the same rounds to a fresh all-in-one argus
// and then to a fresh cluster, and reports samples/s, cores busy and CPU per
// sample of each (see result.report), and for the cluster its ratios to the
// all-in-one (result.reportRatios). It never asserts timings.
func BenchmarkClusterIngest(b *testing.B) {
	b.Run("topology=all-in-one", func(b *testing.B) {
		r := measure(b, "all-in-one", startAllInOne(b))
		r.report(b)
		lastAllInOne = &r
	})
	b.Run("topology=3-ingesters-rf3", func(b *testing.B) {
		r := measure(b, "cluster", startCluster(b))
		r.report(b)
		if base := lastAllInOne; base != nil {
			r.reportRatios(b, *base)
		}
	})
}

// measure pushes the warm-up rounds, then one round per b.Loop iteration,
// and returns throughput and CPU per sample over the timed rounds.
func measure(b *testing.B, name string, topo topology) result {
	b.Helper()
	l := sharedLoad()
	timed := defaultRounds
	if n, ok := benchtimeRounds(); ok {
		timed = n
	}
	l.round(b, warmupRounds+timed-1) // encode before any timer runs
	p := newPusher(b, topo.pushURL)
	ctx := b.Context()
	for r := range warmupRounds {
		require.NoError(b, p.pushAll(ctx, l.round(b, r)))
	}

	idle := idleCPU(b, topo)
	before := cpuByRole(b, topo)
	profiled := startProfiles(b, name, topo)
	defer profiled()
	start := time.Now()
	rounds := 0
	for b.Loop() {
		require.NoError(b, p.pushAll(ctx, l.round(b, warmupRounds+rounds)))
		rounds++
	}
	wall := time.Since(start)
	after := cpuByRole(b, topo)

	samples := rounds * seriesCount
	r := result{
		samplesPerSec: float64(samples) / wall.Seconds(),
		idlePerSec:    idle,
		cpuPerSample:  map[string]time.Duration{},
		cores:         (after["total"] - before["total"]).Seconds() / wall.Seconds(),
	}
	for role, d := range after {
		r.cpuPerSample[role] = (d - before[role]) / time.Duration(samples)
	}
	return r
}

// cpuByRole reads the CPU time of every process of topo, summed by role,
// plus "total" (every argus process) and "loadgen" (this test process).
func cpuByRole(b *testing.B, topo topology) map[string]time.Duration {
	b.Helper()
	out := map[string]time.Duration{}
	for role, ps := range topo.procs {
		for _, p := range ps {
			d, err := clustertest.ProcessCPU(p.PID())
			require.NoError(b, err)
			out[role] += d
			out["total"] += d
		}
	}
	d, err := clustertest.ProcessCPU(0)
	require.NoError(b, err)
	out["loadgen"] = d
	return out
}

// report reports samples/s, cores busy and CPU µs per sample: of all argus
// processes (cpu-µs/sample), per role in a cluster, per replica for the
// ingesters (their CPU divided by RF), and of the load generator.
func (r result) report(b *testing.B) {
	b.ReportMetric(r.samplesPerSec, "samples/s")
	b.ReportMetric(r.cores, "cpu-cores")
	for role, d := range r.idlePerSec {
		if role != "all" { // the same as total
			b.ReportMetric(float64(d)/float64(time.Millisecond), role+"-idle-cpu-ms/s")
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	for role, d := range r.cpuPerSample {
		switch role {
		case "all": // the same as total
		case "total":
			b.ReportMetric(us(d), "cpu-µs/sample")
		case "ingester":
			b.ReportMetric(us(d), "ingester-cpu-µs/sample")
			b.ReportMetric(us(d)/replicationFactor, "ingester-cpu-µs/replica")
		default:
			b.ReportMetric(us(d), role+"-cpu-µs/sample")
		}
	}
}

// reportRatios reports r against the all-in-one base: throughput, CPU per
// sample of all processes, and each role's CPU against the all-in-one's total.
func (r result) reportRatios(b *testing.B, base result) {
	b.ReportMetric(r.samplesPerSec/base.samplesPerSec, "x-samples/s")
	aio := float64(base.cpuPerSample["total"])
	for role, d := range r.cpuPerSample {
		if role == "loadgen" {
			continue
		}
		unit := "x-" + role + "-cpu/sample"
		if role == "total" {
			unit = "x-cpu/sample"
		}
		b.ReportMetric(float64(d)/aio, unit)
	}
}

// benchtimeRounds returns N when -test.benchtime is Nx.
func benchtimeRounds() (int, bool) {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		return 0, false
	}
	s, ok := strings.CutSuffix(f.Value.String(), "x")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// commonFlags quiet the per-request logs, lift the ingestion rate and
// series limits, which a benchmark of throughput must not hit (equally in
// both topologies), and turn retention off: the data starts on a fixed date
// in the past, which the default 15 d retention would refuse as too old.
var commonFlags = []string{"-log.level=warn", "-distributor.ingestion-rate-limit=0", "-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0", "-ingester.retention-period=0"}

func startAllInOne(b *testing.B) topology {
	b.Helper()
	p := clustertest.StartArgus(b, clustertest.Options{Flags: commonFlags})
	return topology{pushURL: p.PushURL(), procs: map[string][]*clustertest.Process{"all": {p}}}
}

// startCluster starts 3 ingesters and 1 distributor on one memberlist ring
// and waits until the distributor sees the 3 ingesters ACTIVE.
//
//	load generator ──HTTP──▶ distributor ──gRPC, RF=3, quorum 2──▶ ing-0, ing-1, ing-2
//	every process ◀──memberlist gossip (joined at ing-0)──▶ every process
func startCluster(b *testing.B) topology {
	b.Helper()
	ml := clustertest.FreePorts(b, replicationFactor+1) // TCP free; memberlist also binds UDP on it
	seed := fmt.Sprintf("127.0.0.1:%d", ml[0])
	member := func(target, id string, port int) *clustertest.Process {
		flags := append([]string{
			"-target=" + target, // overrides StartArgus's -target=all
			"-ingester.ring.store=memberlist",
			"-memberlist.bind-addr=127.0.0.1",
			"-memberlist.bind-port=" + strconv.Itoa(port),
			"-memberlist.nodename=" + id,
			"-memberlist.rejoin-interval=1s",
			"-ingester.ring.instance-id=" + id,
			"-ingester.ring.instance-addr=127.0.0.1",
			"-ingester.ring.heartbeat-period=1s",
			"-ingester.ring.replication-factor=" + strconv.Itoa(replicationFactor),
		}, commonFlags...)
		if port != ml[0] {
			flags = append(flags, "-memberlist.join="+seed)
		}
		return clustertest.StartArgus(b, clustertest.Options{Flags: flags})
	}
	topo := topology{procs: map[string][]*clustertest.Process{}}
	for i := range replicationFactor {
		topo.procs["ingester"] = append(topo.procs["ingester"], member("ingester", fmt.Sprintf("ing-%d", i), ml[i]))
	}
	dist := member("distributor", "dist-0", ml[replicationFactor])
	topo.procs["distributor"] = []*clustertest.Process{dist}
	topo.pushURL = dist.PushURL()
	waitActive(b, dist.URL(), replicationFactor)
	return topo
}

// waitActive polls GET /ring (as JSON) until it lists want ACTIVE instances.
func waitActive(b *testing.B, baseURL string, want int) {
	b.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(ringTimeout)
	var last string
	for {
		n, err := activeInstances(b.Context(), client, baseURL)
		if err == nil && n == want {
			return
		}
		last = fmt.Sprintf("%d ACTIVE, err %v", n, err)
		if time.Now().After(deadline) {
			b.Fatalf("ring of %s: want %d ACTIVE instances after %v, last saw %s", baseURL, want, ringTimeout, last)
		}
		time.Sleep(100 * time.Millisecond) // the ring is gossiped: nothing to wait on but polling
	}
}

func activeInstances(ctx context.Context, client *http.Client, baseURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/ring", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /ring: status %d", resp.StatusCode)
	}
	var ring struct {
		Instances []struct {
			State string `json:"state"`
		} `json:"instances"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ring); err != nil {
		return 0, fmt.Errorf("decode /ring: %w", err)
	}
	n := 0
	for _, in := range ring.Instances {
		if in.State == "ACTIVE" {
			n++
		}
	}
	return n, nil
}
