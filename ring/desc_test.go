package ring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

// randomDesc draws a small ring state from few IDs, heartbeats and tokens, so
// that ties and token conflicts are common.
func randomDesc(rng *rand.Rand) *Desc {
	d := NewDesc()
	for range rng.IntN(5) {
		id := fmt.Sprintf("ing-%d", rng.IntN(4))
		in := InstanceDesc{
			Addr:                fmt.Sprintf("10.0.0.%d:9095", rng.IntN(2)),
			Zone:                []string{"", "a", "b"}[rng.IntN(3)],
			State:               State(1 + rng.IntN(4)),
			HeartbeatUnixMillis: int64(rng.IntN(3)),
			RegisteredAt:        int64(rng.IntN(2)),
		}
		for range rng.IntN(4) {
			in.Tokens = append(in.Tokens, uint32(rng.IntN(8)))
		}
		slices.Sort(in.Tokens)
		in.Tokens = slices.Compact(in.Tokens)
		d.Instances[id] = in
	}
	return d
}

func merged(ds ...*Desc) *Desc {
	out := NewDesc()
	for _, d := range ds {
		out.Merge(d)
	}
	return out
}

var descCmp = cmpopts.EquateEmpty()

func TestDescMerge_Laws(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for i := range 5000 {
		a, b, c := randomDesc(rng), randomDesc(rng), randomDesc(rng)
		// Idempotent: a ⊔ a = a.
		require.Empty(t, cmp.Diff(a, merged(a, a), descCmp), "idempotence, iteration %d", i)
		// Commutative: a ⊔ b = b ⊔ a.
		require.Empty(t, cmp.Diff(merged(a, b), merged(b, a), descCmp), "commutativity, iteration %d", i)
		// Associative: (a ⊔ b) ⊔ c = a ⊔ (b ⊔ c).
		require.Empty(t, cmp.Diff(merged(merged(a, b), c), merged(a, merged(b, c)), descCmp), "associativity, iteration %d", i)
		// Merging what one already has changes nothing and reports nothing.
		ab := merged(a, b)
		require.Empty(t, ab.Clone().Merge(a))
	}
}

func TestDescMerge_TombstoneWinsOverOlderGossip(t *testing.T) {
	local := NewDesc()
	local.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateActive, Tokens: []uint32{1, 2}, HeartbeatUnixMillis: 100}
	left := NewDesc()
	left.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateLeft, HeartbeatUnixMillis: 200}
	require.Equal(t, []string{"ing-1"}, local.Merge(left))

	// An old message from before the leave cannot resurrect it.
	old := NewDesc()
	old.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateActive, Tokens: []uint32{1, 2}, HeartbeatUnixMillis: 150}
	require.Empty(t, local.Merge(old))
	require.Equal(t, StateLeft, local.Instances["ing-1"].State)

	// A later heartbeat (the instance restarted) does.
	newer := NewDesc()
	newer.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateJoining, Tokens: []uint32{1, 2}, HeartbeatUnixMillis: 300}
	require.Equal(t, []string{"ing-1"}, local.Merge(newer))

	// Tombstones are collected only after the cutoff.
	gone := NewDesc()
	gone.Instances["ing-2"] = InstanceDesc{State: StateLeft, HeartbeatUnixMillis: 1000}
	local.Merge(gone)
	require.Equal(t, 0, local.RemoveTombstones(time.UnixMilli(1000)))
	require.Equal(t, 1, local.RemoveTombstones(time.UnixMilli(1001)))
	require.Contains(t, local.Instances, "ing-1")
}

func TestDescMerge_SameHeartbeatLaterStateWins(t *testing.T) {
	a := NewDesc()
	a.Instances["x"] = InstanceDesc{State: StateActive, HeartbeatUnixMillis: 5}
	b := NewDesc()
	b.Instances["x"] = InstanceDesc{State: StateLeaving, HeartbeatUnixMillis: 5}
	require.Equal(t, StateLeaving, merged(a, b).Instances["x"].State)
	require.Equal(t, StateLeaving, merged(b, a).Instances["x"].State)
}

func TestDesc_EncodeRoundTrip(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	for range 1000 {
		d := randomDesc(rng)
		for id, in := range d.Instances {
			in.HeartbeatUnixMillis = rng.Int64() - 1<<62
			in.Tokens = append(in.Tokens, 1<<32-1)
			d.Instances[id] = in
		}
		enc := d.Encode(nil)
		got, err := DecodeDesc(enc)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(d, got, descCmp))
		require.Equal(t, enc, got.Encode(nil))
	}
	got, err := DecodeDesc(NewDesc().Encode(nil))
	require.NoError(t, err)
	require.Empty(t, got.Instances)
}

func TestDecodeDesc_Corrupt(t *testing.T) {
	d := NewDesc()
	d.Instances["ing-1"] = InstanceDesc{Addr: "a:1", State: StateActive, Tokens: []uint32{1, 5, 9}, HeartbeatUnixMillis: 7}
	enc := d.Encode(nil)
	for n := range len(enc) {
		_, err := DecodeDesc(enc[:n])
		require.ErrorIs(t, err, ErrCorruptDesc, "truncated to %d bytes", n)
	}
	_, err := DecodeDesc(append(slices.Clone(enc), 0))
	require.ErrorIs(t, err, ErrCorruptDesc)
	bad := slices.Clone(enc)
	bad[0] = 9
	_, err = DecodeDesc(bad)
	require.ErrorIs(t, err, ErrCorruptDesc)
}

func FuzzDecodeDesc(f *testing.F) {
	d := NewDesc()
	d.Instances["ing-1"] = InstanceDesc{Addr: "a:1", Zone: "z", State: StateActive, Tokens: []uint32{1, 5, 9}, HeartbeatUnixMillis: 7}
	f.Add(d.Encode(nil))
	f.Add(NewDesc().Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			t.Skip()
		}
		got, err := DecodeDesc(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptDesc)
			return
		}
		again, err := DecodeDesc(got.Encode(nil))
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(got, again, descCmp))
	})
}
