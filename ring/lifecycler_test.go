package ring

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func defaultConfig(t testing.TB) (Config, MemberlistConfig) {
	t.Helper()
	var c Config
	var m MemberlistConfig
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(f)
	m.RegisterFlags(f)
	require.NoError(t, f.Parse(nil))
	return c, m
}

func TestConfig_FlagsAndValidate(t *testing.T) {
	c, m := defaultConfig(t)
	require.Equal(t, 128, c.NumTokens)
	require.Equal(t, 3, c.ReplicationFactor)
	require.Equal(t, 5*time.Second, c.HeartbeatPeriod)
	require.Equal(t, time.Minute, c.HeartbeatTimeout)
	require.Equal(t, 10, c.AutoForgetUnhealthyPeriods)
	require.Equal(t, 7946, m.BindPort)
	require.NoError(t, c.Validate())
	require.NoError(t, m.Validate())

	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(f)
	m.RegisterFlags(f)
	require.NoError(t, f.Parse([]string{
		"-ingester.ring.instance-id=ing-7", "-ingester.ring.instance-addr=10.1.2.3", "-ingester.ring.instance-port=9000",
		"-ingester.ring.zone-awareness-enabled", "-ingester.ring.instance-availability-zone=z1",
		"-memberlist.join=a:7946, b ,", "-memberlist.bind-port=0",
	}))
	require.Equal(t, "10.1.2.3:9000", c.advertisedAddr())
	require.Equal(t, []string{"a:7946", "b"}, m.joinAddrs())
	require.Equal(t, Options{ReplicationFactor: 3, ZoneAwareness: true, HeartbeatTimeout: time.Minute}, c.Options())
	require.NoError(t, c.Validate())

	c.InstanceZone = ""
	require.NoError(t, c.Validate(), "a process reading the ring has no zone")
	require.ErrorContains(t, c.ValidateInstance(), "-ingester.ring.instance-availability-zone", "an ingester has one")
	c, _ = defaultConfig(t)
	c.HeartbeatTimeout = time.Second
	require.Error(t, c.Validate())
}

func TestStdLoggerAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newStdLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[WARN] memberlist: Was able to connect to x over TCP but UDP probes failed")
	l.Printf("[ERR] memberlist: boom")
	l.Printf("[DEBUG] memberlist: chatter")
	l.Printf("no level")
	l.Printf("[ERR] memberlist: Error accepting TCP connection: accept tcp 127.0.0.1:7946: use of closed network connection")
	out := buf.String()
	require.Contains(t, out, `level=WARN msg=memberlist detail="Was able to connect to x over TCP but UDP probes failed"`)
	require.Contains(t, out, `level=ERROR msg=memberlist detail=boom`)
	require.Contains(t, out, `level=DEBUG msg=memberlist detail=chatter`)
	require.Contains(t, out, `level=DEBUG msg=memberlist detail="no level"`)
	require.Contains(t, out, `level=DEBUG msg=memberlist detail="Error accepting TCP connection: accept tcp 127.0.0.1:7946: use of closed network connection"`)
}

// newLocalLifecycler returns a lifecycler over a KV that is not gossiping
// (no memberlist), for tests of the state machine in a synctest bubble.
func newLocalLifecycler(t *testing.T, kv *KV, id string, mutate func(*Config)) *Lifecycler {
	t.Helper()
	c, _ := defaultConfig(t)
	c.InstanceID, c.InstanceAddr = id, "127.0.0.1"
	c.TokensFilePath = filepath.Join(t.TempDir(), TokensFileName)
	if mutate != nil {
		mutate(&c)
	}
	l, err := NewLifecycler(c, kv, Deps{})
	require.NoError(t, err)
	return l
}

func newLocalKV(t *testing.T, reg prometheus.Registerer) *KV {
	t.Helper()
	kv, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 3, HeartbeatTimeout: time.Minute}, Deps{Registerer: reg})
	require.NoError(t, err)
	return kv
}

func TestLifecycler_StateMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := newLocalKV(t, nil)
		l := newLocalLifecycler(t, kv, "ing-1", func(c *Config) { c.JoinAfter = 10 * time.Second })
		ctx := context.Background()
		require.Equal(t, State(0), l.State())
		require.NoError(t, l.Starting(ctx))
		runCtx, cancel := context.WithCancel(ctx)
		runDone := make(chan error)
		go func() { runDone <- l.Running(runCtx) }()

		require.Equal(t, StateJoining, l.State())
		require.Len(t, l.Tokens(), 128)
		require.Equal(t, StateJoining, kv.Desc().Instances["ing-1"].State)

		// SetActive waits for join-after.
		require.NoError(t, l.SetActive(ctx))
		require.Equal(t, StateJoining, l.State())
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, StateActive, l.State())
		require.Equal(t, StateActive, kv.Desc().Instances["ing-1"].State)

		// Heartbeats move forward every period.
		hb := kv.Desc().Instances["ing-1"].HeartbeatUnixMillis
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		require.Greater(t, kv.Desc().Instances["ing-1"].HeartbeatUnixMillis, hb)

		// Someone forgets the live instance: its next heartbeat takes it back.
		require.NoError(t, kv.Forget("ing-1"))
		require.Equal(t, StateLeft, kv.Desc().Instances["ing-1"].State)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, StateActive, kv.Desc().Instances["ing-1"].State)
		require.Len(t, kv.Desc().Instances["ing-1"].Tokens, 128)

		require.NoError(t, l.StartLeaving(ctx))
		require.Equal(t, StateLeaving, kv.Desc().Instances["ing-1"].State)
		require.NoError(t, l.SetActive(ctx), "no way back from LEAVING")
		require.Equal(t, StateLeaving, l.State())

		cancel()
		require.NoError(t, <-runDone)
		require.NoError(t, l.Stopping(ctx))
		require.Equal(t, StateLeft, kv.Desc().Instances["ing-1"].State)
		require.ErrorIs(t, l.SetActive(ctx), ErrLifecyclerStopped)

		// A restart keeps the tokens (from the file) and comes back JOINING.
		tokens := l.Tokens()
		l2, err := NewLifecycler(l.cfg, kv, Deps{})
		require.NoError(t, err)
		require.NoError(t, l2.Starting(ctx))
		require.Equal(t, tokens, l2.Tokens())
		require.Equal(t, StateJoining, kv.Desc().Instances["ing-1"].State)
		require.NoError(t, l2.Stopping(ctx))
	})
}

func TestLifecycler_AutoForgetKeepsQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		kv := newLocalKV(t, reg)
		now := time.Now()
		old := now.Add(-11 * time.Minute).UnixMilli() // 11 heartbeat timeouts
		for _, id := range []string{"dead-1", "dead-2", "dead-3"} {
			kv.Update(id, InstanceDesc{State: StateActive, Tokens: []uint32{uint32(len(id))}, HeartbeatUnixMillis: old})
		}
		kv.Update("recent", InstanceDesc{State: StateActive, Tokens: []uint32{99}, HeartbeatUnixMillis: now.Add(-2 * time.Minute).UnixMilli()})
		l := newLocalLifecycler(t, kv, "me", nil)
		ctx := context.Background()
		require.NoError(t, l.Starting(ctx))
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()

		// 5 members, quorum 2: all three dead ones may go; "recent" is only
		// unhealthy, not yet past the auto-forget period.
		d := kv.Desc()
		for _, id := range []string{"dead-1", "dead-2", "dead-3"} {
			require.Equal(t, StateLeft, d.Instances[id].State, id)
		}
		require.Equal(t, StateActive, d.Instances["recent"].State)

		kv.updateMetrics()
		require.InDelta(t, 3.0, testutil.ToFloat64(kv.metrics.members.WithLabelValues("LEFT")), 0)
		require.InDelta(t, 1.0, testutil.ToFloat64(kv.metrics.members.WithLabelValues("UNHEALTHY")), 0)
		require.InDelta(t, 1.0, testutil.ToFloat64(kv.metrics.members.WithLabelValues("JOINING")), 0)
		n, err := testutil.GatherAndCount(reg, "argus_ring_owned_tokens_ratio")
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.NoError(t, l.Stopping(ctx))
	})

	synctest.Test(t, func(t *testing.T) {
		kv := newLocalKV(t, nil)
		kv.Update("dead", InstanceDesc{State: StateActive, Tokens: []uint32{1}, HeartbeatUnixMillis: time.Now().Add(-time.Hour).UnixMilli()})
		l := newLocalLifecycler(t, kv, "me", nil)
		require.NoError(t, l.Starting(context.Background()))
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		// 2 members, quorum 2: forgetting "dead" would leave 1.
		require.Equal(t, StateActive, kv.Desc().Instances["dead"].State)
		require.NoError(t, l.Stopping(context.Background()))
	})
}

func TestKV_GossipDropsAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	kv := newLocalKV(t, reg)
	d := delegate{kv}
	for range inboxSize + 3 {
		d.NotifyMsg([]byte{1, 0})
	}
	require.InDelta(t, 3.0, testutil.ToFloat64(kv.metrics.gossipDropped.WithLabelValues(dropInboxFull)), 0)
	kv.mergeRemote([]byte("junk"))
	require.InDelta(t, 1.0, testutil.ToFloat64(kv.metrics.gossipDropped.WithLabelValues(dropCorrupt)), 0)
	out, err := testutil.CollectAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, out)
	require.True(t, strings.HasPrefix(string(d.LocalState(false)), "\x01"))
}

func TestStopping_IdempotentAndSafeBeforeStarting(t *testing.T) {
	kv := newLocalKV(t, nil)
	l := newLocalLifecycler(t, kv, "ing-1", nil)
	ctx := context.Background()
	require.NoError(t, l.Stopping(ctx))
	require.NoError(t, kv.Stopping(ctx))

	m := startMember(t, "ing-2", "", "")
	m.stop(t)
	require.NoError(t, m.lc.Stopping(ctx))
	require.NoError(t, m.kv.Stopping(ctx))
}
