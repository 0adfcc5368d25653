package ring

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// testMember is one process of a real memberlist cluster on 127.0.0.1: a KV
// and the Lifecycler of an ingester, with fast timers.
type testMember struct {
	id     string
	kv     *KV
	lc     *Lifecycler
	cancel context.CancelFunc
	done   chan struct{}
}

const (
	testHeartbeat = 100 * time.Millisecond
	testTimeout   = time.Second
)

func startMember(t testing.TB, id, join, tokensPath string) *testMember {
	t.Helper()
	return startMemberTimeout(t, id, "", join, tokensPath, testTimeout)
}

// startMemberTimeout starts a member whose ring has heartbeat timeout
// hbTimeout, named node in the gossip (id if empty).
func startMemberTimeout(t testing.TB, id, node, join, tokensPath string, hbTimeout time.Duration) *testMember {
	t.Helper()
	if node == "" {
		node = id
	}
	kv, err := NewKV(MemberlistConfig{
		NodeName: node, Join: join, BindAddr: "127.0.0.1",
		GossipInterval: 50 * time.Millisecond, GossipNodes: 3, PushPullInterval: 500 * time.Millisecond,
		RetransmitMult: 4, RejoinInterval: 200 * time.Millisecond, LeftTombstoneTTL: time.Hour,
	}, Options{ReplicationFactor: 3, HeartbeatTimeout: hbTimeout}, Deps{InstanceID: id})
	require.NoError(t, err)
	lc, err := NewLifecycler(Config{
		NumTokens: 128, ReplicationFactor: 3, InstanceID: id, InstanceAddr: "127.0.0.1", InstancePort: 9095,
		HeartbeatPeriod: testHeartbeat, HeartbeatTimeout: hbTimeout, AutoForgetUnhealthyPeriods: 2, TokensFilePath: tokensPath,
	}, kv, Deps{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, kv.Starting(ctx))
	require.NoError(t, lc.Starting(ctx))
	m := &testMember{id: id, kv: kv, lc: lc, done: make(chan struct{})}
	runCtx, runCancel := context.WithCancel(context.Background())
	m.cancel = runCancel
	go func() {
		defer close(m.done)
		_ = kv.Running(runCtx)
		_ = lc.Running(runCtx)
	}()
	require.NoError(t, lc.SetActive(ctx))
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop stops the member gracefully: LEAVING, LEFT, leave the gossip.
func (m *testMember) stop(t testing.TB) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.lc.Stopping(ctx))
	require.NoError(t, m.kv.Stopping(ctx))
	m.cancel = nil
}

// crash stops the member as kill -9 would: no LEFT, no leave message.
func (m *testMember) crash(t testing.TB) {
	m.cancel()
	<-m.done
	close(m.lc.stop)
	<-m.lc.loopDone
	require.NoError(t, m.kv.ml.Load().Shutdown())
	close(m.kv.stop)
	<-m.kv.workerDone
	m.cancel = nil
}

// view is what tests compare across members: instance → state and tokens.
type view map[string]string

func viewOf(d *Desc, now time.Time) view {
	v := view{}
	for id, in := range d.Instances {
		s := in.State.String()
		if in.State != StateLeft && now.Sub(in.Heartbeat()) > testTimeout {
			s = stateUnhealthy
		}
		v[id] = fmt.Sprintf("%s %s %d:%v", s, in.Addr, len(in.Tokens), in.Tokens[:min(2, len(in.Tokens))])
	}
	return v
}

// requireConverged waits until every member sees want (states by instance)
// and they all see the same ring.
func requireConverged(t *testing.T, members []*testMember, want map[string]State) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		first := viewOf(members[0].kv.Desc(), time.Now())
		for id, s := range want {
			if !strings.HasPrefix(first[id], s.String()+" ") {
				last = fmt.Sprintf("%s sees %s as %q, want %s", members[0].id, id, first[id], s)
				return false
			}
		}
		for _, m := range members[1:] {
			if diff := cmp.Diff(first, viewOf(m.kv.Desc(), time.Now())); diff != "" {
				last = fmt.Sprintf("%s and %s differ: %s", members[0].id, m.id, diff)
				return false
			}
		}
		return true
	}, 15*time.Second, 50*time.Millisecond, "did not converge: %s", func() string { return last }())
}

func startCluster(t *testing.T, n int) []*testMember {
	t.Helper()
	var members []*testMember
	want := map[string]State{}
	for i := range n {
		join := ""
		if i > 0 {
			join = members[0].kv.Addr()
		}
		id := fmt.Sprintf("ing-%d", i)
		members = append(members, startMember(t, id, join, filepath.Join(t.TempDir(), TokensFileName)))
		want[id] = StateActive
		// A rolling start: the next member sees this one's tokens, so
		// BalancedTokens can balance.
		requireConverged(t, members, want)
	}
	return members
}

func TestKV_ClusterConvergesAndShards(t *testing.T) {
	members := startCluster(t, 4)
	// Every member routes every token to the same replicas.
	r0 := members[0].kv.Ring()
	for _, m := range members[1:] {
		r := m.kv.Ring()
		for tok := uint32(0); tok < 1<<32-1<<24; tok += 1 << 24 {
			a, err := r0.Get(tok, nil)
			require.NoError(t, err)
			b, err := r.Get(tok, nil)
			require.NoError(t, err)
			require.Equal(t, a, b)
			require.Len(t, a, 3)
		}
	}
	for id, o := range r0.Ownership() {
		require.InDelta(t, 0.25, o, 0.025, "instance %s", id)
	}
	ins, maxFail, err := members[0].kv.ReadSet()
	require.NoError(t, err)
	require.Len(t, ins, 4)
	require.Equal(t, 1, maxFail)
	require.Len(t, members[0].kv.Members(), 4)
}

func TestKV_LeaveCrashForget(t *testing.T) {
	members := startCluster(t, 4)

	// A graceful stop is LEFT everywhere.
	members[3].stop(t)
	requireConverged(t, members[:3], map[string]State{"ing-0": StateActive, "ing-1": StateActive, "ing-2": StateActive, "ing-3": StateLeft})

	// A crash turns UNHEALTHY, then forgotten (LEFT) by the live members.
	members[2].crash(t)
	live := members[:2]
	require.Eventually(t, func() bool {
		_, maxFail, err := live[0].kv.ReadSet()
		return err == nil && maxFail == 0
	}, 10*time.Second, 20*time.Millisecond, "crashed instance never turned unhealthy")
	requireConverged(t, live, map[string]State{"ing-0": StateActive, "ing-1": StateActive, "ing-2": StateLeft})
	for _, tok := range []uint32{0, 1 << 30, 1 << 31} {
		got, err := live[1].kv.Get(tok, nil)
		require.NoError(t, err)
		require.Len(t, got, 2)
	}

	// Two members left with RF 3: forgetting another would drop below quorum.
	// The event to wait for is the auto-forget pass that finds ing-1 expired
	// and keeps it: after it, ing-1 must still be ACTIVE (unhealthy).
	held := testutil.ToFloat64(members[0].kv.metrics.forgetHeld)
	members[1].crash(t)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(members[0].kv.metrics.forgetHeld) > held
	}, 10*time.Second, 20*time.Millisecond, "no auto-forget pass held ing-1 back")
	require.Equal(t, StateActive, members[0].kv.Desc().Instances["ing-1"].State)
}

func TestKV_RestartKeepsTokens(t *testing.T) {
	a := startMember(t, "ing-a", "", "")
	path := filepath.Join(t.TempDir(), TokensFileName)
	b := startMember(t, "ing-b", a.kv.Addr(), path)
	tokens := slices.Clone(b.lc.Tokens())
	require.Len(t, tokens, 128)
	requireConverged(t, []*testMember{a, b}, map[string]State{"ing-a": StateActive, "ing-b": StateActive})
	b.stop(t)
	requireConverged(t, []*testMember{a}, map[string]State{"ing-b": StateLeft})

	b = startMember(t, "ing-b", a.kv.Addr(), path)
	require.Equal(t, tokens, b.lc.Tokens())
	requireConverged(t, []*testMember{a, b}, map[string]State{"ing-a": StateActive, "ing-b": StateActive})
	require.Equal(t, tokens, a.kv.Desc().Instances["ing-b"].Tokens)
}

func TestKV_Forget(t *testing.T) {
	kv, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3}, Deps{})
	require.NoError(t, err)
	require.ErrorIs(t, kv.Forget("nope"), ErrUnknownInstance)
	kv.Update("x", InstanceDesc{State: StateActive, Tokens: []uint32{1}, HeartbeatUnixMillis: time.Now().Add(time.Hour).UnixMilli()})
	require.NoError(t, kv.Forget("x"))
	got := kv.Desc().Instances["x"]
	require.Equal(t, StateLeft, got.State)
	require.Empty(t, got.Tokens)
	require.Empty(t, kv.Instances())
	require.Equal(t, []string{"x"}, slices.Collect(maps.Keys(kv.Desc().Instances)))
}

func testMemberlistConfig() MemberlistConfig {
	return MemberlistConfig{BindAddr: "127.0.0.1", GossipInterval: time.Second, GossipNodes: 3, PushPullInterval: time.Second,
		RetransmitMult: 4, RejoinInterval: time.Second, LeftTombstoneTTL: time.Hour}
}
