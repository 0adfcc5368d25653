package ring

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func randomHA(rng *rand.Rand) *HAElections {
	h := NewHAElections()
	var entries []HAEntry
	for range rng.IntN(5) {
		entries = append(entries, HAEntry{
			Tenant: fmt.Sprintf("t%d", rng.IntN(2)), Cluster: fmt.Sprintf("c%d", rng.IntN(2)),
			HAElection: HAElection{Replica: fmt.Sprintf("r%d", rng.IntN(3)), ElectedAtMillis: int64(rng.IntN(3)), ReceivedAtMillis: int64(rng.IntN(3))},
		})
	}
	h.merge(entries)
	return h
}

func mergedHA(hs ...*HAElections) []HAEntry {
	out := NewHAElections()
	for _, h := range hs {
		out.merge(h.HAEntries())
	}
	return out.HAEntries()
}

func haOf(entries []HAEntry) *HAElections {
	h := NewHAElections()
	h.merge(entries)
	return h
}

// TestHAElectionsMerge_Laws checks that merging HA elections is idempotent,
// commutative and associative over random states drawn from few keys,
// replicas and times, so that ties are common.
func TestHAElectionsMerge_Laws(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	for i := range 5000 {
		a, b, c := randomHA(rng), randomHA(rng), randomHA(rng)
		require.Empty(t, cmp.Diff(a.HAEntries(), mergedHA(a, a)), "idempotence, iteration %d", i)
		require.Empty(t, cmp.Diff(mergedHA(a, b), mergedHA(b, a)), "commutativity, iteration %d", i)
		require.Empty(t, cmp.Diff(mergedHA(haOf(mergedHA(a, b)), c), mergedHA(a, haOf(mergedHA(b, c)))), "associativity, iteration %d", i)
		require.Empty(t, haOf(mergedHA(a, b)).merge(a.HAEntries()), "a merge of what is held changes nothing, iteration %d", i)
	}
}

// TestHAElectionsMerge_Winner lists which of two elections of one key a
// merge keeps, whichever arrives first.
func TestHAElectionsMerge_Winner(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b, want HAElection
	}{
		{"a refresh beats the state it refreshes",
			HAElection{"r1", 100, 100}, HAElection{"r1", 100, 115}, HAElection{"r1", 100, 115}},
		{"a failover beats a later refresh of the term it ended",
			HAElection{"r2", 101, 101}, HAElection{"r1", 100, 130}, HAElection{"r2", 101, 101}},
		{"two elections in one millisecond: the greater replica name",
			HAElection{"r1", 200, 200}, HAElection{"r2", 200, 200}, HAElection{"r2", 200, 200}},
		{"identical", HAElection{"r1", 5, 6}, HAElection{"r1", 5, 6}, HAElection{"r1", 5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][2]HAElection{{tc.a, tc.b}, {tc.b, tc.a}} {
				h := NewHAElections()
				h.merge([]HAEntry{{"t", "c", order[0]}})
				h.merge([]HAEntry{{"t", "c", order[1]}})
				got, _ := h.HAElection("t", "c")
				require.Equal(t, tc.want, got)
			}
		})
	}
}

func TestHAElections_ClustersAndRemoveStale(t *testing.T) {
	h := NewHAElections()
	h.merge([]HAEntry{{"t", "c1", HAElection{"r1", 1000, 1000}}, {"t", "c2", HAElection{"r1", 1000, 5000}}, {"u", "c1", HAElection{"r1", 1000, 5000}}})
	require.Equal(t, 2, h.HAClusters("t", time.UnixMilli(1000)))
	require.Equal(t, 1, h.HAClusters("t", time.UnixMilli(1001)))
	require.Equal(t, 0, h.HAClusters("v", time.UnixMilli(0)))
	require.Equal(t, 1, h.RemoveStale(time.UnixMilli(2000)))
	require.Equal(t, []HAEntry{
		{"t", "c2", HAElection{"r1", 1000, 5000}},
		{"u", "c1", HAElection{"r1", 1000, 5000}},
	}, h.HAEntries())
}

func TestHAEntries_EncodeRoundTrip(t *testing.T) {
	entries := []HAEntry{
		{"tenant-a", "c1", HAElection{"r1", 1_700_000_000_000, 1_700_000_015_000}},
		{"tenant-a", "c2", HAElection{"r2", -1, 0}},
		{"tenant-b", "c1", HAElection{"replica-é", 3, 4}},
	}
	got, err := decodeHAEntries(encodeHAEntries(nil, entries))
	require.NoError(t, err)
	require.Equal(t, entries, got)

	d := randomDesc(rand.New(rand.NewPCG(1, 2)))
	// Without elections, the full state is the ring description alone, as
	// members older than HA elections send and read it.
	require.Equal(t, d.Encode(nil), encodeFullState(nil, d, nil))
	gd, ge, err := decodeFullState(encodeFullState(nil, d, entries))
	require.NoError(t, err)
	require.True(t, d.Equal(gd))
	require.Equal(t, entries, ge)
}

func TestDecodeHAEntries_Corrupt(t *testing.T) {
	good := encodeHAEntries(nil, []HAEntry{{"t", "c", HAElection{"r", 1, 2}}})
	dup := encodeHAEntries(nil, []HAEntry{{"t", "c", HAElection{"r", 1, 2}}, {"t", "c", HAElection{"s", 1, 2}}})
	empty := encodeHAEntries(nil, []HAEntry{{"t", "", HAElection{"r", 1, 2}}})
	for name, b := range map[string][]byte{
		"empty": nil, "version": append([]byte{9}, good[1:]...), "truncated": good[:len(good)-1],
		"trailing": append(good[:len(good):len(good)], 0), "duplicate": dup, "empty cluster": empty,
		"count": {haVersion, 100},
	} {
		_, err := decodeHAEntries(b)
		require.ErrorIs(t, err, ErrCorruptDesc, name)
	}
	d := NewDesc()
	full := encodeFullState(nil, d, []HAEntry{{"t", "c", HAElection{"r", 1, 2}}})
	for name, b := range map[string][]byte{
		"ring length": {fullStateVersion, 100}, "truncated": full[:len(full)-1],
	} {
		_, _, err := decodeFullState(b)
		require.ErrorIs(t, err, ErrCorruptDesc, name)
	}
}

// startHAKV starts a KV (no lifecycler) that joins join, with fast gossip
// and a push/pull every pushPull.
func startHAKV(t *testing.T, name, join string, pushPull time.Duration) *KV {
	t.Helper()
	cfg := testMemberlistConfig()
	cfg.NodeName, cfg.Join, cfg.GossipInterval, cfg.PushPullInterval = name, join, 50*time.Millisecond, pushPull
	kv, err := NewKV(cfg, Options{ReplicationFactor: 1}, Deps{Roles: []string{"distributor"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, kv.Starting(ctx))
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = kv.Running(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = kv.Stopping(ctx)
	})
	return kv
}

func requireHAConverged(t *testing.T, kvs []*KV, want []HAEntry) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, kv := range kvs {
			if !cmp.Equal(want, kv.HAEntries()) {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "elections did not converge to %v", want)
}

// TestKV_HAElectionsConverge checks that an election written on one member
// reaches the others by gossip; that one whose gossip was lost (merged
// locally without a broadcast) reaches them by push/pull, as it reaches a
// member that joins late; and that a late, stale update changes nothing.
func TestKV_HAElectionsConverge(t *testing.T) {
	a := startHAKV(t, "a", "", time.Second)
	b := startHAKV(t, "b", a.Addr(), time.Second)
	c := startHAKV(t, "c", a.Addr(), time.Second)
	kvs := []*KV{a, b, c}

	e1 := HAElection{"r1", 1000, 1000}
	cur, changed := a.UpdateHAElection("t", "c1", HAElection{}, e1)
	require.True(t, changed)
	require.Equal(t, e1, cur)
	requireHAConverged(t, kvs, []HAEntry{{"t", "c1", e1}})

	// b fails over to r2 while c, not having heard of it, refreshes r1
	// later: every member ends with r2's term.
	e2 := HAElection{"r2", 2000, 2000}
	_, changed = b.UpdateHAElection("t", "c1", e1, e2)
	require.True(t, changed)
	c.mergeHAEntries([]HAEntry{{"t", "c1", HAElection{"r1", 1000, 2500}}})
	requireHAConverged(t, kvs, []HAEntry{{"t", "c1", e2}})

	// A lost broadcast: merged on c without gossip; push/pull repairs it.
	e3 := HAElection{"r1", 1000, 1000}
	c.ha.merge([]HAEntry{{"t", "c2", e3}})
	requireHAConverged(t, kvs, []HAEntry{{"t", "c1", e2}, {"t", "c2", e3}})

	// A late copy of the first election changes nothing anywhere.
	a.mergeRemote(encodeHAEntries(nil, []HAEntry{{"t", "c1", e1}}))
	require.NoError(t, a.sync(context.Background()))
	requireHAConverged(t, kvs, []HAEntry{{"t", "c1", e2}, {"t", "c2", e3}})

	// A member joining now gets every election from the full state.
	d := startHAKV(t, "d", b.Addr(), time.Second)
	requireHAConverged(t, append(kvs, d), []HAEntry{{"t", "c1", e2}, {"t", "c2", e3}})
}

// FuzzDecodeFullState checks that any full state or HA update either
// decodes to what it encodes back to, or fails with ErrCorruptDesc.
func FuzzDecodeFullState(f *testing.F) {
	d := NewDesc()
	d.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateActive, Tokens: []uint32{1, 5}, HeartbeatUnixMillis: 7}
	entries := []HAEntry{{"t", "c1", HAElection{"r1", 1, 2}}, {"t", "c2", HAElection{"r2", 3, 4}}}
	f.Add(encodeFullState(nil, d, entries))
	f.Add(encodeFullState(nil, d, nil))
	f.Add(encodeHAEntries(nil, entries))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			t.Skip()
		}
		if len(b) > 0 && b[0] == haVersion {
			got, err := decodeHAEntries(b)
			if err != nil {
				require.ErrorIs(t, err, ErrCorruptDesc)
				return
			}
			again, err := decodeHAEntries(encodeHAEntries(nil, got))
			require.NoError(t, err)
			require.Equal(t, got, again)
			return
		}
		gd, ge, err := decodeFullState(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptDesc)
			return
		}
		ad, ae, err := decodeFullState(encodeFullState(nil, gd, ge))
		require.NoError(t, err)
		require.True(t, gd.Equal(ad))
		require.Equal(t, len(ge), len(ae))
		if len(ge) > 0 {
			require.Equal(t, ge, ae)
		}
	})
}

// TestHAElections_UpdateIsCompareAndSwap checks that an update applies only
// over the election it was decided on.
func TestHAElections_UpdateIsCompareAndSwap(t *testing.T) {
	h := NewHAElections()
	r1 := HAElection{"r1", 1000, 1000}
	got, changed := h.UpdateHAElection("t", "c", HAElection{}, r1)
	require.True(t, changed)
	require.Equal(t, r1, got)
	// r2 decided on "none held" too, but lost the race: r1 stays.
	got, changed = h.UpdateHAElection("t", "c", HAElection{}, HAElection{"r2", 1000, 1000})
	require.False(t, changed)
	require.Equal(t, r1, got)
	r1b := HAElection{"r1", 1000, 2000}
	got, changed = h.UpdateHAElection("t", "c", r1, r1b)
	require.True(t, changed)
	require.Equal(t, r1b, got)
}

// TestKV_HAUpdatesUnderGossipLimit checks that an election update with a
// tenant ID of the longest allowed (150 bytes) and cluster and replica
// names of 256 bytes each is one gossip message under maxBroadcastSize, and
// that one too large for a packet is dropped from gossip and counted (it
// still travels in the full state).
func TestKV_HAUpdatesUnderGossipLimit(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	kv, err := NewKV(testMemberlistConfig(), Options{ReplicationFactor: 1}, Deps{Registerer: reg})
	require.NoError(t, err)
	tenant, name := strings.Repeat("t", 150), strings.Repeat("n", 256)
	e := HAElection{Replica: name, ElectedAtMillis: time.Now().UnixMilli(), ReceivedAtMillis: time.Now().UnixMilli()}
	msg := encodeHAEntries(nil, []HAEntry{{tenant, name, e}})
	require.Less(t, len(msg), maxBroadcastSize, "%d bytes", len(msg))
	_, changed := kv.UpdateHAElection(tenant, name, HAElection{}, e)
	require.True(t, changed)
	require.Equal(t, 1, kv.queue.NumQueued())

	huge := HAElection{Replica: strings.Repeat("r", 2048), ElectedAtMillis: 1, ReceivedAtMillis: 1}
	_, changed = kv.UpdateHAElection("t", "c", HAElection{}, huge)
	require.True(t, changed)
	require.Equal(t, 1, kv.queue.NumQueued(), "not queued")
	require.Equal(t, 1.0, testutil.ToFloat64(kv.metrics.gossipDropped.WithLabelValues(dropTooLarge)))
	_, entries, err := decodeFullState(kv.localState())
	require.NoError(t, err)
	require.Len(t, entries, 2, "both in the full state")
}
