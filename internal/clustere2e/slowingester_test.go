package clustere2e

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestSlowIngester: one of three ingesters (RF=3) is reached through a TCP
// proxy in the test process: its ring entry advertises the proxy's port
// (-ingester.ring.instance-port), so the distributor's and the querier's
// gRPC go through it. The test stalls the proxy: it keeps the connections
// open but holds every byte, so the ingester looks alive to the ring and to
// gRPC and answers nothing. Pushes sent meanwhile must all be acknowledged
// at quorum (2 of 3) while the stalled ingester has appended none of their
// samples, which proves that no answer waited for it; no time is measured.
// Released, the held pushes reach it, and argus_distributor_straggler_pushes_total
// counts each as a straggler. The whole cluster answers exactly every pushed
// sample, and so does the slow ingester alone (the two others killed, a
// partial-response query) for the series each push has of its own.
//
// Each push also carries one sample of a series shared by every push, as a
// Prometheus shard would. The held pushes reach the slow ingester at once,
// on concurrent gRPC streams, so it may apply them out of order and reject
// the older samples of the shared series as out of order (there is no
// out-of-order window): such a straggler is counted as outcome="rejected",
// and the slow ingester's copy of the shared series lacks exactly those
// samples while the quorum's copies have them. The test requires what it
// holds of the shared series to be samples that were pushed, and logs how
// many it lacks.
//
//	test ─push─▶ dist-0 ─▶ ing-0, ing-1
//	                    └─▶ proxy (stalled by the test) ─▶ ing-2 ◀─ querier-0
func TestSlowIngester(t *testing.T) {
	skipIfShort(t)
	const tenant, series, before, stalled = "team-slow", 50, 5, 20
	c, proxy := startSlowCluster(t)
	d, q, slow := c.Distributor(0), c.Querier(0), c.Ingester(2)

	sp := slowPushes{base: time.Now().Add(-5 * time.Minute).Truncate(time.Second).UnixMilli(), series: series}
	push := func(k int) {
		code, body := d.Push(t, tenant, sp.batch(k))
		require.Equal(t, http.StatusNoContent, code, "push %d: %s", k, body)
	}
	appended := func() float64 {
		return slow.Metric(t, "argus_ingester_samples_appended_total", map[string]string{"tenant": tenant})
	}
	stragglers := func(outcome string) float64 {
		return d.Metric(t, "argus_distributor_straggler_pushes_total", map[string]string{"outcome": outcome})
	}

	// Before the stall, each push waits until the slow ingester has it: a
	// push is answered at quorum, so without the wait the next one could
	// reach it first and its shared-series sample be refused as out of
	// order, which is what the stall is to show, not this warm-up.
	for k := range before {
		push(k)
		clustertest.Eventually(t, func() string {
			if got := appended(); got != float64((k+1)*series) {
				return fmt.Sprintf("%s appended %v samples, want %d", slow.ID(), got, (k+1)*series)
			}
			return ""
		}, 30*time.Second)
	}
	okBefore, rejectedBefore := stragglers("ok"), stragglers("rejected")

	proxy.stall()
	for k := before; k < before+stalled; k++ {
		push(k) // Answered at quorum, or the test hangs here and fails by its timeout.
	}
	require.Equal(t, float64(before*series), appended(), "%s got samples through a stalled proxy", slow.ID())
	require.Positive(t, proxy.held(), "the stalled proxy held no bytes: the pushes did not go its way")
	t.Logf("%d pushes acknowledged while %s was stalled (the proxy holding %d bytes)", stalled, slow.ID(), proxy.held())

	proxy.resume()
	var ok, rejected float64
	clustertest.Eventually(t, func() string {
		ok, rejected = stragglers("ok")-okBefore, stragglers("rejected")-rejectedBefore
		if ok+rejected < stalled {
			return fmt.Sprintf("%v of the %d held pushes counted as stragglers (ok or rejected)", ok+rejected, stalled)
		}
		return ""
	}, 60*time.Second)

	pushes := before + stalled
	want := sp.want(pushes)
	require.Empty(t, clustertest.DiffSamples(want, sp.query(t, q, tenant, pushes, false)), "the cluster")
	c.Ingester(0).Kill(t)
	c.Ingester(1).Kill(t)
	got := sp.query(t, q, tenant, pushes, true)
	shared := got[len(got)-1]
	require.Equal(t, "slow_shared", shared.Metric["__name__"], "the shared series, sorted last")
	require.Empty(t, clustertest.DiffSamples(want[:len(want)-1], got[:len(got)-1]), "%s alone: the series of each push", slow.ID())
	wantShared := map[clustertest.Sample]bool{}
	for _, smp := range want[len(want)-1].Samples {
		wantShared[smp] = true
	}
	for _, smp := range shared.Samples {
		require.True(t, wantShared[smp], "%s holds a shared sample never pushed: %v", slow.ID(), smp)
	}
	t.Logf("released: %v held pushes counted as ok stragglers, %v as rejected; %s alone holds every sample of each push's own series, and %d of the %d samples of the shared series (the others rejected as out of order)",
		ok, rejected, slow.ID(), len(shared.Samples), pushes)
}

// startSlowCluster starts the cluster of TestSlowIngester: 3 ingesters
// (RF=3), the third reached through a stallProxy, 1 distributor and 1
// querier.
func startSlowCluster(t *testing.T) (*clustertest.Cluster, *stallProxy) {
	t.Helper()
	grpcPort := clustertest.FreePorts(t, 1)[0]
	proxy := startStallProxy(t, fmt.Sprintf("127.0.0.1:%d", grpcPort))
	c := clustertest.StartCluster(t, clustertest.Topology{
		Ingesters: 3, Distributors: 1, Queriers: 1, RF: 3,
		// The held pushes must outlive the stall rather than time out.
		ExtraFlags: []string{"-distributor.remote-timeout=2m"},
		IngesterFlags: func(i int) []string {
			if i != 2 {
				return nil
			}
			return []string{"-server.grpc-listen-port=" + strconv.Itoa(grpcPort), "-ingester.ring.instance-port=" + strconv.Itoa(proxy.port())}
		},
	})
	slow := c.Ingester(2)
	in, found := c.Distributor(0).Ring(t).Instance(slow.ID())
	require.True(t, found)
	require.Equal(t, proxy.addr(), in.Addr, "the ring must send %s's traffic through the proxy", slow.ID())
	return c, proxy
}

// slowPushes is the data of TestSlowIngester: push k carries series-1
// series of its own (slow_own{push="k",s=...}) and one sample of
// slow_shared, each at base+k s with value k*1000+s.
type slowPushes struct {
	base   int64 // ms
	series int
}

func (sp slowPushes) ts(k int) int64 { return sp.base + int64(k)*1000 }

func (sp slowPushes) labels(k, s int) []clustertest.Label {
	if s == sp.series-1 {
		return clustertest.Labels("__name__", "slow_shared")
	}
	return clustertest.Labels("__name__", "slow_own", "push", fmt.Sprintf("%02d", k), "s", fmt.Sprintf("%02d", s))
}

func (sp slowPushes) batch(k int) []clustertest.TimeSeries {
	out := make([]clustertest.TimeSeries, sp.series)
	for s := range out {
		out[s] = clustertest.TimeSeries{Labels: sp.labels(k, s), Samples: []clustertest.Sample{{T: sp.ts(k), V: float64(k*1000 + s)}}}
	}
	return out
}

// want is every sample of pushes [0, pushes), sorted, the shared series last.
func (sp slowPushes) want(pushes int) []clustertest.Series {
	var out []clustertest.Series
	shared := clustertest.Series{Metric: map[string]string{"__name__": "slow_shared"}}
	for k := range pushes {
		for s, ts := range sp.batch(k) {
			if s == sp.series-1 {
				shared.Samples = append(shared.Samples, ts.Samples...)
				continue
			}
			ser := clustertest.Series{Metric: map[string]string{}, Samples: ts.Samples}
			for _, l := range ts.Labels {
				ser.Metric[l.Name] = l.Value
			}
			out = append(out, ser)
		}
	}
	clustertest.SortSeries(out)
	return append(out, shared)
}

// query returns the raw samples of pushes [0, pushes) from q, sorted, the
// shared series last; partial asks for a partial response, which must then
// carry its warning.
func (sp slowPushes) query(t *testing.T, q *clustertest.Member, tenant string, pushes int, partial bool) []clustertest.Series {
	t.Helper()
	end := sp.ts(pushes - 1)
	params := url.Values{
		"query": {fmt.Sprintf(`{__name__=~"slow_own|slow_shared"}[%dms]`, end-sp.base+1)},
		"time":  {clustertest.FormatAPITime(end)},
	}
	if partial {
		params.Set("partial_response", "true")
	}
	code, body := q.Query(t, tenant, clustertest.PromAPI+"/query", params)
	if partial {
		require.Equal(t, http.StatusOK, code, string(body))
		warnings := clustertest.DecodeAPI(t, body).Warnings
		require.Len(t, warnings, 1, string(body))
		require.True(t, strings.HasPrefix(warnings[0], "partial response: "), warnings[0])
	}
	got := clustertest.MatrixData(t, code, body)
	var own, shared []clustertest.Series
	for _, s := range got {
		if s.Metric["__name__"] == "slow_shared" {
			shared = append(shared, s)
		} else {
			own = append(own, s)
		}
	}
	clustertest.SortSeries(own)
	return append(own, shared...)
}

// stallProxy forwards every TCP connection it accepts to target. While
// stalled it keeps reading but holds what it read, in both directions, until
// resumed: the connections stay open and the peer behind it looks alive and
// silent, as a stalled process would.
type stallProxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	gate      chan struct{} // closed while forwarding; open while stalled
	heldBytes int64         // read while stalled, not yet forwarded
	conns     []net.Conn
	wg        sync.WaitGroup
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, target: target, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) port() int    { return p.ln.Addr().(*net.TCPAddr).Port }
func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) held() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heldBytes
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

func (p *stallProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// close stops accepting, closes every connection and waits for the
// forwarding goroutines.
func (p *stallProxy) close() {
	_ = p.ln.Close()
	p.resume()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst through the gate, and closes dst when src ends.
func (p *stallProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			stalled := !isClosed(gate)
			if stalled {
				p.heldBytes += int64(n)
			}
			p.mu.Unlock()
			<-gate
			if stalled {
				p.mu.Lock()
				p.heldBytes -= int64(n)
				p.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or closed: closing dst ends the other direction too
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
