package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestHeartbeatMessage checks that an update whose tokens were already
// gossiped goes as a small heartbeat message, that a member holding those
// tokens merges it into exactly the sender's description, and that one
// holding other tokens drops it and counts it.
func TestHeartbeatMessage(t *testing.T) {
	sender, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3}, Deps{})
	require.NoError(t, err)
	in := InstanceDesc{Addr: "10.0.0.1:9095", Zone: "z", State: StateActive, Tokens: RandomTokens(rand.New(rand.NewPCG(512, 1)), 512, nil), HeartbeatUnixMillis: 1000, RegisteredAt: 5}
	sender.Update("ing-1", in)
	require.Empty(t, sender.queue.GetBroadcasts(0, 1<<20), "512 tokens do not fit a packet")
	require.InDelta(t, 1.0, testutil.ToFloat64(sender.metrics.gossipDropped.WithLabelValues(dropTooLarge)), 0, "too large: dropped and counted")

	in.Tokens = RandomTokens(rand.New(rand.NewPCG(128, 1)), 128, nil)
	sender.Update("ing-1", in)
	in.HeartbeatUnixMillis = 2000
	sender.Update("ing-1", in)
	msgs := sender.queue.GetBroadcasts(0, 1<<20)
	require.Len(t, msgs, 2, "the full update and the heartbeat, which does not replace it")
	slices.SortFunc(msgs, func(a, b []byte) int { return len(a) - len(b) })
	hb, fullMsg := msgs[0], msgs[1]
	require.Equal(t, byte(heartbeatVersion), hb[0])
	require.Less(t, len(hb), 64)
	require.Greater(t, len(fullMsg), 500)

	// A member that got the full update applies the heartbeat.
	got, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3}, Deps{})
	require.NoError(t, err)
	got.mergeRemote(fullMsg)
	got.mergeRemote(hb)
	require.Equal(t, in, got.Desc().Instances["ing-1"])
	require.ElementsMatch(t, []string{"ing-1", "ing-1" + heartbeatSuffix}, names(got.queue),
		"re-gossiped on: the tokens in full once, then the heartbeat")

	// A member that missed it drops the heartbeat.
	missed, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3}, Deps{})
	require.NoError(t, err)
	missed.mergeRemote(hb)
	require.Empty(t, missed.Desc().Instances)
	require.InDelta(t, 1.0, testutil.ToFloat64(missed.metrics.gossipDropped.WithLabelValues(dropUnknownTokens)), 0)
	other := in
	other.Tokens = []uint32{1, 2, 3}
	other.HeartbeatUnixMillis = 1
	missed.Update("ing-1", other)
	missed.mergeRemote(hb)
	require.Equal(t, other, missed.Desc().Instances["ing-1"], "other tokens: not applied")

	_, err = decodeHeartbeat(hb[:len(hb)-1])
	require.ErrorIs(t, err, ErrCorruptDesc)
}

func names(q *memberlist.TransmitLimitedQueue) []string {
	var out []string
	for _, b := range q.GetBroadcasts(0, 1<<20) {
		if b[0] == heartbeatVersion {
			m, _ := decodeHeartbeat(b)
			out = append(out, m.id+heartbeatSuffix)
			continue
		}
		d, _ := DecodeDesc(b)
		for id := range d.Instances {
			out = append(out, id)
		}
	}
	return out
}

// TestConfigRefusesUngossipableTokens checks that a token count whose full
// update could exceed a gossip message is refused, naming the most that fit,
// and that this most is accepted.
func TestConfigRefusesUngossipableTokens(t *testing.T) {
	cfg := Config{NumTokens: 512, ReplicationFactor: 3, InstanceID: "ingester-zone-a-0", InstancePort: 9095, HeartbeatPeriod: time.Second}
	err := cfg.Validate()
	require.ErrorContains(t, err, "num-tokens 512 could not be gossiped")
	var most int
	_, err = fmt.Sscanf(err.Error()[len(err.Error())-len("use at most 999 tokens"):], "use at most %d tokens", &most)
	require.NoError(t, err)
	cfg.NumTokens = most
	require.NoError(t, cfg.Validate())
	require.LessOrEqual(t, maxFullUpdateSize(cfg.InstanceID, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:9095", "", most), maxBroadcastSize)
	cfg.NumTokens = most + 1
	require.Error(t, cfg.Validate())
	cfg.NumTokens = 128
	require.NoError(t, cfg.Validate())

	// The bound is reached by the widest fields: token deltas ≥ 2^28 (5
	// bytes) and times of 10 bytes.
	in := InstanceDesc{Addr: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:9095", State: StateLeft,
		Tokens: []uint32{1 << 28, 2 << 28, 3 << 28}, HeartbeatUnixMillis: math.MinInt64, RegisteredAt: math.MinInt64}
	one := &Desc{Instances: map[string]InstanceDesc{cfg.InstanceID: in}}
	require.Equal(t, maxFullUpdateSize(cfg.InstanceID, in.Addr, "", 3), len(one.Encode(nil)), "the bound is tight")
}

// TestKV_DeadMemberTakesNoWrites checks that an ingester whose process is
// killed stops getting writes as soon as the gossip declares it dead, long
// before its heartbeat (timeout one hour here) expires, while reads still
// count it; and that it takes writes again once it is back.
func TestKV_DeadMemberTakesNoWrites(t *testing.T) {
	const hour = time.Hour
	var members []*testMember
	for i := range 3 {
		join := ""
		if i > 0 {
			join = members[0].kv.Addr()
		}
		members = append(members, startMemberTimeout(t, fmt.Sprintf("ing-%d", i), "", join, filepath.Join(t.TempDir(), TokensFileName), hour))
	}
	requireConverged(t, members, map[string]State{"ing-0": StateActive, "ing-1": StateActive, "ing-2": StateActive})
	writesTo := func(id string) bool {
		for tok := uint32(0); tok < 1<<32-1<<26; tok += 1 << 26 {
			got, err := members[0].kv.Get(tok, nil)
			require.NoError(t, err)
			if slices.ContainsFunc(got, func(in Instance) bool { return in.ID == id }) {
				return true
			}
		}
		return false
	}
	require.True(t, writesTo("ing-2"))

	members[2].crash(t)
	require.Eventually(t, func() bool { return !writesTo("ing-2") }, 30*time.Second, 50*time.Millisecond,
		"the failure detector never took ing-2 out of writes")
	ins, maxFail, err := members[0].kv.ReadSet()
	require.NoError(t, err)
	require.Len(t, ins, 3, "reads go by heartbeat")
	require.Equal(t, 1, maxFail)

	// Restarted, it is a new gossip member (memberlist refuses a dead name
	// at a new address): the default node name has a random suffix.
	startMemberTimeout(t, "ing-2", "ing-2-restarted", members[0].kv.Addr(), filepath.Join(t.TempDir(), TokensFileName), hour)
	require.Eventually(t, func() bool { return writesTo("ing-2") }, 30*time.Second, 50*time.Millisecond,
		"ing-2 never took writes again")
}

// countingTransport counts the bytes a member sends: packets and the
// streams it dials or accepts. shutdown shuts its memberlist down.
type countingTransport struct {
	memberlist.Transport // not NodeAwareTransport: memberlist then calls WriteTo and DialTimeout
	sent                 *atomic.Int64
	streams              chan net.Conn
	// closing is closed when memberlist stops reading streams; done when
	// the transport is shut down.
	closing, done chan struct{}
}

func newCountingTransport(sent *atomic.Int64) (*countingTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, err
	}
	c := &countingTransport{Transport: nt, sent: sent, streams: make(chan net.Conn),
		closing: make(chan struct{}), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.done:
				return
			case conn := <-nt.StreamCh():
				select {
				case c.streams <- countingConn{Conn: conn, sent: sent}:
				case <-c.closing:
					// Memberlist no longer reads: drain, so that the
					// transport's listener is not stuck and can shut down.
					_ = conn.Close()
				}
			}
		}
	}()
	return c, nil
}

// shutdown shuts ml, which runs on c, down, and stops c's goroutine.
func (c *countingTransport) shutdown(ml *memberlist.Memberlist) {
	close(c.closing)
	_ = ml.Shutdown()
	close(c.done)
}

func (c *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.sent.Add(int64(len(b)))
	return c.Transport.WriteTo(b, addr)
}

func (c *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := c.Transport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: conn, sent: c.sent}, nil
}

func (c *countingTransport) StreamCh() <-chan net.Conn { return c.streams }

type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}

// TestGossipSimulation100 runs 100 ring members in this process over real
// memberlist on loopback, with the default gossip settings, each
// heartbeating its own instance (128 tokens) every 5 s as an ingester does,
// and reports the bytes each member sends per second in steady state.
//
// One state change made on one member must then reach every member within
// the ring's promise of 5 s. The bound is asserted on the propagation time
// less the time this process's threads waited for a CPU that the machine
// gave to other processes (runQueueWaits): the 100 members share this one
// process, which on a loaded test machine gets a small share of the cores
// (at a load average of 18 on 2 cores its threads waited 9 to 14 times as
// long for a CPU as they ran), where each real member has its own. The wall
// time, and how much of it was spent waiting, are logged. Counting gossip
// rounds instead does not work: Go's timers keep firing at about the right
// rate under load while the work they start (decoding, merging and
// re-gossiping updates) queues behind the starved threads. The arrival of
// the change is read cheaply (one map lookup per member) so that the
// test's own polling does not starve the members further, and the garbage
// collector runs less often than by default (GOGC 400): a third of the
// process's CPU went to collecting the 100 members' one heap, mostly
// memberlist's LZW compression tables, which a real member pays for its
// own small heap only.
func TestGossipSimulation100(t *testing.T) {
	if testing.Short() {
		t.Skip("100 memberlist members")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads run-queue waits in /proc")
	}
	const (
		n     = 100
		bound = 5 * time.Second
	)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var sent atomic.Int64
	kvs := startGossipMembers(t, n, &sent)
	converged := func() string {
		for i, kv := range kvs {
			// Instances, not memberlist members: on a loaded test machine
			// the failure detector may suspect one for a while.
			if got := numInstances(kv); got != n {
				return fmt.Sprintf("member %d sees %d members, %d instances", i, kv.numMembers(), got)
			}
		}
		return ""
	}
	for deadline := time.Now().Add(180 * time.Second); converged() != ""; time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the 100 members never all saw each other: %s", converged())
	}

	alive := 0
	for _, kv := range kvs {
		alive += kv.numMembers()
	}
	t.Logf("members alive on average, as each sees them: %.1f of %d", float64(alive)/n, n)

	// Steady state: heartbeats only.
	gossiped := func() float64 {
		sum := 0.0
		for _, kv := range kvs {
			sum += testutil.ToFloat64(kv.metrics.gossipBytes)
		}
		return sum
	}
	before, beforeGossip, start := sent.Load(), gossiped(), time.Now()
	time.Sleep(15 * time.Second)
	secs := time.Since(start).Seconds()
	t.Logf("steady state, per member per second: %.0f bytes sent in all, %.0f bytes of ring updates gossiped (%d members, heartbeat 5s, gossip 200ms to 3, push/pull 15s scaled by memberlist)",
		float64(sent.Load()-before)/secs/n, (gossiped()-beforeGossip)/secs/n, n)

	// One state change, on member 37.
	run0, wait0 := runQueueWaits(t)
	change := time.Now()
	kvs[37].Update("probe", InstanceDesc{Addr: "probe:9095", State: StateLeaving, Tokens: []uint32{42}, HeartbeatUnixMillis: change.UnixMilli()})
	arrived := make([]time.Duration, n) // 0: not yet
	for missing := n; missing > 0; time.Sleep(5 * time.Millisecond) {
		require.Less(t, time.Since(change), 120*time.Second, "a state change never reached every member: %d missing", missing)
		for i, kv := range kvs {
			if arrived[i] == 0 && instanceState(kv, "probe") == StateLeaving {
				arrived[i] = time.Since(change)
				missing--
			}
		}
	}
	run1, wait1 := runQueueWaits(t)
	took := slices.Max(arrived)
	run, wait := run1-run0, wait1-wait0
	net := time.Duration(float64(took) * float64(run) / float64(run+wait))
	slices.Sort(arrived)
	t.Logf("one state change reached all %d members in %s of wall time (median member %s); this process's threads ran %s and waited %s for a CPU meanwhile, so %s net of the waits (bound %s)",
		n, took.Round(time.Millisecond), arrived[n/2].Round(time.Millisecond), run.Round(time.Millisecond), wait.Round(time.Millisecond), net.Round(time.Millisecond), bound)
	require.LessOrEqual(t, net, bound, "the ring promises that a change reaches every member within %s", bound)
}

// startGossipMembers starts n ring members in this process, each on its
// own countingTransport (counting into sent) and heartbeating its own
// instance of 128 tokens every 5 s, and shuts them down at the end of the
// test. Member 0 starts first, the others join it 8 at a time: one after
// the other they take minutes to join on a loaded machine.
func startGossipMembers(t *testing.T, n int, sent *atomic.Int64) []*KV {
	kvs := make([]*KV, n)
	ctx, cancel := context.WithCancel(context.Background())
	var heartbeats sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		heartbeats.Wait()
		for _, kv := range kvs {
			if kv != nil {
				kv.transport.(*countingTransport).shutdown(kv.ml.Load())
				close(kv.stop)
				<-kv.workerDone
			}
		}
	})
	startMember := func(i int) error {
		cfg := MemberlistConfig{
			NodeName: fmt.Sprintf("m-%03d", i), BindAddr: "127.0.0.1",
			GossipInterval: 200 * time.Millisecond, GossipNodes: 3, PushPullInterval: 15 * time.Second,
			RetransmitMult: 4, RejoinInterval: time.Second, LeftTombstoneTTL: time.Hour,
		}
		if i > 0 {
			cfg.Join = kvs[0].Addr()
		}
		kv, err := NewKV(cfg, Options{ReplicationFactor: 3, HeartbeatTimeout: time.Minute}, Deps{InstanceID: cfg.NodeName})
		if err != nil {
			return err
		}
		if kv.transport, err = newCountingTransport(sent); err != nil {
			return err
		}
		startCtx, startCancel := context.WithTimeout(ctx, 60*time.Second)
		defer startCancel()
		if err := kv.Starting(startCtx); err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		kvs[i] = kv
		heartbeats.Go(func() { heartbeat(ctx, kv, cfg.NodeName, 5*time.Second) })
		return nil
	}
	require.NoError(t, startMember(0))
	errs := make([]error, n)
	var starting sync.WaitGroup
	slots := make(chan struct{}, 8)
	for i := 1; i < n; i++ {
		starting.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = startMember(i)
		})
	}
	starting.Wait()
	require.NoError(t, errors.Join(errs...))
	return kvs
}

// runQueueWaits returns how long the threads of this process have run on a
// CPU and waited in a run queue for one, from /proc/self/task/*/schedstat
// (Linux). A thread that exits takes its times with it: the Go runtime
// keeps its threads.
func runQueueWaits(t *testing.T) (run, wait time.Duration) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "schedstat"))
		if err != nil {
			continue // exited meanwhile
		}
		var r, w, timeslices int64
		_, err = fmt.Sscan(string(b), &r, &w, &timeslices)
		require.NoError(t, err, "schedstat of thread %s: %q", task.Name(), b)
		run += time.Duration(r)
		wait += time.Duration(w)
	}
	return run, wait
}

// numInstances is len(kv.Desc().Instances) without copying the ring.
func numInstances(kv *KV) int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return len(kv.desc.Instances)
}

// instanceState is kv's state of instance id, without copying the ring.
func instanceState(kv *KV, id string) State {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.desc.Instances[id].State
}

// heartbeat publishes instance id with 128 tokens every period, as a
// Lifecycler does, until ctx ends.
func heartbeat(ctx context.Context, kv *KV, id string, period time.Duration) {
	in := InstanceDesc{Addr: id + ":9095", State: StateActive, Tokens: RandomTokens(rand.New(rand.NewPCG(128, 1)), 128, nil), RegisteredAt: time.Now().UnixMilli()}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		in.HeartbeatUnixMillis = time.Now().UnixMilli()
		kv.Update(id, in)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
