package ring

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKV_HealthyMembersByRole gossips three processes with different roles
// and counts the distributors each sees, before and after one leaves.
func TestKV_HealthyMembersByRole(t *testing.T) {
	start := func(id, join, grpcAddr string, roles ...string) (*KV, func()) {
		kv, err := NewKV(MemberlistConfig{
			NodeName: id, Join: join, BindAddr: "127.0.0.1",
			GossipInterval: 50 * time.Millisecond, GossipNodes: 3, PushPullInterval: 500 * time.Millisecond,
			RetransmitMult: 4, RejoinInterval: 200 * time.Millisecond, LeftTombstoneTTL: time.Hour,
		}, Options{ReplicationFactor: 3, HeartbeatTimeout: testTimeout}, Deps{Roles: roles, GRPCAddr: grpcAddr})
		require.NoError(t, err)
		require.Equal(t, boolInt(len(roles) > 0 && roles[0] == "distributor"), kv.HealthyMembers("distributor"), "before starting: this process alone")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, kv.Starting(ctx))
		runCtx, stopRun := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = kv.Running(runCtx) }()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			stopRun()
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, kv.Stopping(ctx))
		}
		t.Cleanup(stop)
		return kv, stop
	}
	a, _ := start("a", "", ":9095", "distributor")
	seed := a.Members()[0].Addr
	b, stopB := start("b", seed, "127.0.0.2:9096", "distributor", "ingester")
	c, _ := start("c", seed, "", "querier")
	count := func(role string) []int {
		return []int{a.HealthyMembers(role), b.HealthyMembers(role), c.HealthyMembers(role)}
	}
	require.Eventually(t, func() bool {
		return slicesEqual(count("distributor"), []int{2, 2, 2}) && slicesEqual(count("ingester"), []int{1, 1, 1}) &&
			slicesEqual(count("querier"), []int{1, 1, 1})
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []int{0, 0, 0}, count("compactor"))
	require.Equal(t, []string{"a", "b"}, c.AliveMembers("distributor"), "AliveMembers names them, sorted")
	require.Equal(t, "c", c.LocalMember())
	// a's wildcard host is its gossip address; c gossips none.
	require.Equal(t, map[string]string{"a": "127.0.0.1:9095", "b": "127.0.0.2:9096"}, c.MemberAddrs("distributor"))
	require.Equal(t, map[string]string{"c": ""}, a.MemberAddrs("querier"))
	stopB()
	require.Eventually(t, func() bool {
		return a.HealthyMembers("distributor") == 1 && c.HealthyMembers("distributor") == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"a"}, c.AliveMembers("distributor"))
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRing_HealthyInstancesCount counts ACTIVE instances with a fresh
// heartbeat only.
func TestRing_HealthyInstancesCount(t *testing.T) {
	now := time.Unix(1000, 0)
	d := NewDesc()
	d.Instances["active"] = InstanceDesc{Addr: "a", State: StateActive, Tokens: []uint32{1}, HeartbeatUnixMillis: now.UnixMilli()}
	d.Instances["stale"] = InstanceDesc{Addr: "b", State: StateActive, Tokens: []uint32{2}, HeartbeatUnixMillis: now.Add(-time.Minute).UnixMilli()}
	d.Instances["joining"] = InstanceDesc{Addr: "c", State: StateJoining, Tokens: []uint32{3}, HeartbeatUnixMillis: now.UnixMilli()}
	d.Instances["leaving"] = InstanceDesc{Addr: "d", State: StateLeaving, Tokens: []uint32{4}, HeartbeatUnixMillis: now.UnixMilli()}
	d.Instances["active2"] = InstanceDesc{Addr: "e", State: StateActive, Tokens: []uint32{5}, HeartbeatUnixMillis: now.UnixMilli()}
	r := NewRing(d, Options{ReplicationFactor: 3, HeartbeatTimeout: 10 * time.Second, Now: func() time.Time { return now }})
	require.Equal(t, 2, r.HealthyInstancesCount())
	s, err := NewStatic(Instance{ID: "x", Addr: "x"}, Instance{ID: "y", Addr: "y"})
	require.NoError(t, err)
	require.Equal(t, 2, s.HealthyInstancesCount())
	require.Equal(t, 1, s.HealthyMembers("distributor"))
}
