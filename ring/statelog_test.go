package ring

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKV_LogsGossipedStateChanges checks that a member logs each state of
// another instance that gossip changed (full updates and heartbeat
// messages alike), once per change, and an instance first heard of only at
// debug level.
func TestKV_LogsGossipedStateChanges(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	kv, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 1, HeartbeatTimeout: time.Minute}, Deps{Logger: logger})
	require.NoError(t, err)

	in := InstanceDesc{Addr: "x:9095", State: StateActive, Tokens: RandomTokens(rand.New(rand.NewPCG(1, 2)), 16, nil),
		HeartbeatUnixMillis: 1000}
	full := &Desc{Instances: map[string]InstanceDesc{"x": in}}
	kv.mergeRemote(full.Encode(nil))
	require.Empty(t, buf.String(), "an instance first heard of is not an Info change")

	in.State, in.HeartbeatUnixMillis = StateLeaving, 2000
	kv.mergeRemote(encodeHeartbeat(nil, "x", in))
	kv.mergeRemote(encodeHeartbeat(nil, "x", in)) // A retransmission changes nothing.
	in.HeartbeatUnixMillis = 3000
	kv.mergeRemote(encodeHeartbeat(nil, "x", in)) // A heartbeat, same state.
	in.State, in.HeartbeatUnixMillis = StateLeft, 4000
	kv.mergeRemote((&Desc{Instances: map[string]InstanceDesc{"x": in}}).Encode(nil))

	var got []string
	for line := range strings.Lines(buf.String()) {
		got = append(got, strings.TrimSpace(line[strings.Index(line, "msg="):]))
	}
	require.Equal(t, []string{
		`msg="ring instance state changed" component=ring instance=x from=ACTIVE to=LEAVING`,
		`msg="ring instance state changed" component=ring instance=x from=LEAVING to=LEFT`,
	}, got)
}
