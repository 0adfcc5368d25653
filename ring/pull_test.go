package ring

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestKV_HeartbeatOfUnknownTokensPullsState checks that a member that gets a
// heartbeat message for tokens it does not hold (it missed the full update)
// fetches the ring state at once from the instance's own member, instead of
// waiting for the periodic push/pull, which here is an hour away.
func TestKV_HeartbeatOfUnknownTokensPullsState(t *testing.T) {
	cfg := testMemberlistConfig()
	cfg.PushPullInterval = time.Hour
	start := func(node, instance, join string) *KV {
		c := cfg
		c.NodeName, c.Join = node, join
		kv, err := NewKV(c, Options{ReplicationFactor: 1, HeartbeatTimeout: time.Minute}, Deps{InstanceID: instance})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, kv.Starting(ctx))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, kv.Stopping(ctx))
		})
		return kv
	}
	owner := start("node-x", "x", "")
	// A bystander between them: with a random target the pull would go to
	// it half of the time and find nothing.
	start("node-y", "y", owner.Addr())
	lacking := start("node-z", "z", owner.Addr())

	// The owner holds x's tokens and gossips nothing: as if every copy of
	// the full update to lacking was lost.
	in := InstanceDesc{Addr: "x:9095", State: StateActive, Tokens: RandomTokens(rand.New(rand.NewPCG(1, 2)), 128, nil),
		HeartbeatUnixMillis: time.Now().UnixMilli()}
	owner.mu.Lock()
	owner.desc.Merge(&Desc{Instances: map[string]InstanceDesc{"x": in}})
	owner.view.Store(nil)
	owner.mu.Unlock()
	_, ok := lacking.Desc().Instances["x"]
	require.False(t, ok)

	lacking.handOff(encodeHeartbeat(nil, "x", in))
	require.Eventually(t, func() bool {
		got, ok := lacking.Desc().Instances["x"]
		return ok && slices.Equal(got.Tokens, in.Tokens) && got.State == StateActive
	}, 10*time.Second, 10*time.Millisecond, "the member that missed x's tokens never got them")
	require.Equal(t, 1.0, testutil.ToFloat64(lacking.metrics.gossipDropped.WithLabelValues(dropUnknownTokens)))
	require.Equal(t, 1.0, testutil.ToFloat64(lacking.metrics.statePulls))
}
