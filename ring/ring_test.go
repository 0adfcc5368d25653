package ring

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

var testNow = time.UnixMilli(1_000_000_000)

func testOpts(rf int) Options {
	return Options{ReplicationFactor: rf, HeartbeatTimeout: time.Minute, Now: func() time.Time { return testNow }}
}

// joinBalanced adds n ACTIVE instances one by one, each with BalancedTokens.
func joinBalanced(rng *rand.Rand, d *Desc, n, tokens int, zones ...string) {
	for range n {
		id := fmt.Sprintf("ing-%d", len(d.Instances))
		in := InstanceDesc{Addr: id + ":9095", State: StateActive, HeartbeatUnixMillis: testNow.UnixMilli()}
		if len(zones) > 0 {
			in.Zone = zones[len(d.Instances)%len(zones)]
		}
		in.Tokens = BalancedTokens(rng, tokens, d)
		d.Instances[id] = in
	}
}

func TestRing_OwnershipIsEven(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	for _, n := range []int{3, 6, 10} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
			d := NewDesc()
			joinBalanced(rng, d, n, 128)
			own := NewRing(d, testOpts(3)).Ownership()
			require.Len(t, own, n)
			for id, o := range own {
				require.InDelta(t, 1/float64(n), o, 0.1/float64(n), "instance %s owns %.4f", id, o)
				require.Len(t, d.Instances[id].Tokens, 128)
			}
		})
	}
}

func TestRing_JoinMovesAboutOneInNPlusOne(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	series := make([]uint32, 20000)
	for i := range series {
		series[i] = ShardToken("tenant", labels.FromStrings("__name__", "m", "i", fmt.Sprint(i), "r", fmt.Sprint(rng.Int())))
	}
	for _, n := range []int{3, 6, 10} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			d := NewDesc()
			joinBalanced(rng, d, n, 128)
			before := NewRing(d, testOpts(1))
			joinBalanced(rng, d, 1, 128)
			after := NewRing(d, testOpts(1))
			moved := 0
			var b1, b2 []Instance
			for _, tok := range series {
				var err error
				b1, err = before.Get(tok, b1[:0])
				require.NoError(t, err)
				b2, err = after.Get(tok, b2[:0])
				require.NoError(t, err)
				if b1[0].ID != b2[0].ID {
					moved++
					require.Equal(t, fmt.Sprintf("ing-%d", n), b2[0].ID, "a series moved between old instances")
				}
			}
			frac := float64(moved) / float64(len(series))
			t.Logf("moved %.4f, 1/(N+1) = %.4f", frac, 1/float64(n+1))
			require.LessOrEqual(t, frac, 1/float64(n+1)*1.1+0.01)
		})
	}
}

func TestRing_ZoneAwareReplicasInDistinctZones(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	d := NewDesc()
	joinBalanced(rng, d, 9, 128, "a", "b", "c")
	opts := testOpts(3)
	opts.ZoneAwareness = true
	r := NewRing(d, opts)
	var buf []Instance
	for range 5000 {
		var err error
		buf, err = r.Get(rng.Uint32(), buf[:0])
		require.NoError(t, err)
		require.Len(t, buf, 3)
		zones := map[string]bool{}
		for _, in := range buf {
			zones[in.Zone] = true
		}
		require.Len(t, zones, 3, "replicas %v", buf)
	}
	// With a zone down, the replicas stay in distinct zones: two are found.
	for id, in := range d.Instances {
		if in.Zone == "c" {
			in.HeartbeatUnixMillis -= 2 * time.Minute.Milliseconds()
			d.Instances[id] = in
		}
	}
	r = NewRing(d, opts)
	for range 1000 {
		var err error
		buf, err = r.Get(rng.Uint32(), buf[:0])
		require.NoError(t, err)
		require.Len(t, buf, 2)
		require.NotEqual(t, buf[0].Zone, buf[1].Zone)
	}
	ins, maxFail, err := r.ReadSet()
	require.NoError(t, err)
	require.Len(t, ins, 6)
	require.Equal(t, 0, maxFail, "one zone is already down")
}

func manualDesc(insts map[string][]uint32) *Desc {
	d := NewDesc()
	for id, toks := range insts {
		d.Instances[id] = InstanceDesc{Addr: id, State: StateActive, Tokens: toks, HeartbeatUnixMillis: testNow.UnixMilli()}
	}
	return d
}

func ids(ins []Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

func TestRing_Get(t *testing.T) {
	d := manualDesc(map[string][]uint32{"a": {100, 400}, "b": {200}, "c": {300}, "d": {350}})
	stale := testNow.Add(-2 * time.Minute).UnixMilli()
	cases := map[string]struct {
		mutate  func(d *Desc)
		token   uint32
		want    []string
		wantErr error
	}{
		"walks clockwise":      {token: 150, want: []string{"b", "c", "d"}},
		"wraps around":         {token: 401, want: []string{"a", "b", "c"}},
		"exact token":          {token: 200, want: []string{"b", "c", "d"}},
		"skips duplicate":      {token: 360, want: []string{"a", "b", "c"}},
		"extends past joining": {token: 150, mutate: setState("c", StateJoining), want: []string{"b", "d", "a"}},
		"extends past leaving": {token: 150, mutate: setState("c", StateLeaving), want: []string{"b", "d", "a"}},
		"extends past stale": {token: 150, mutate: func(d *Desc) {
			in := d.Instances["b"]
			in.HeartbeatUnixMillis = stale
			d.Instances["b"] = in
		}, want: []string{"c", "d", "a"}},
		"left is not in the ring": {token: 150, mutate: setState("b", StateLeft), want: []string{"c", "d", "a"}},
		"quorum still met":        {token: 150, mutate: both(setState("a", StateLeft), setState("b", StateLeft)), want: []string{"c", "d"}},
		"too few healthy":         {token: 150, mutate: both(setState("a", StateLeft), setState("b", StateLeft), setState("c", StateJoining)), wantErr: ErrTooFewHealthy},
		"token conflict, lower id wins": {token: 250, mutate: func(d *Desc) {
			in := d.Instances["d"]
			in.Tokens = []uint32{300, 350}
			d.Instances["d"] = in
		}, want: []string{"c", "d", "a"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dd := d.Clone()
			if c.mutate != nil {
				c.mutate(dd)
			}
			r := NewRing(dd, testOpts(3))
			got, err := r.Get(c.token, []Instance{{ID: "kept"}})
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				require.Len(t, got, 1)
				return
			}
			require.NoError(t, err)
			require.Equal(t, append([]string{"kept"}, c.want...), ids(got))
		})
	}
	_, err := NewRing(NewDesc(), testOpts(3)).Get(1, nil)
	require.ErrorIs(t, err, ErrEmptyRing)
}

func setState(id string, s State) func(*Desc) {
	return func(d *Desc) {
		in := d.Instances[id]
		in.State = s
		d.Instances[id] = in
	}
}

func both(fs ...func(*Desc)) func(*Desc) {
	return func(d *Desc) {
		for _, f := range fs {
			f(d)
		}
	}
}

func TestRing_ReadSet(t *testing.T) {
	d := manualDesc(map[string][]uint32{"a": {1}, "b": {2}, "c": {3}, "d": {4}, "e": {5}})
	ins, maxFail, err := NewRing(d, testOpts(3)).ReadSet()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, ids(ins))
	require.Equal(t, 1, maxFail)

	setState("e", StateLeaving)(d)
	setState("d", StateJoining)(d)
	ins, maxFail, err = NewRing(d, testOpts(3)).ReadSet()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c", "e"}, ids(ins), "LEAVING serves reads, JOINING does not")
	require.Equal(t, 0, maxFail)

	setState("c", StateJoining)(d)
	_, _, err = NewRing(d, testOpts(3)).ReadSet()
	require.ErrorIs(t, err, ErrTooFewHealthy)

	ins, maxFail, err = NewRing(d, testOpts(5)).ReadSet()
	require.NoError(t, err)
	require.Len(t, ins, 3)
	require.Equal(t, 0, maxFail)
}

func TestStatic(t *testing.T) {
	a, b, c := Instance{ID: "a"}, Instance{ID: "b"}, Instance{ID: "c"}
	s, err := NewStatic(a, b)
	require.NoError(t, err)
	require.Equal(t, 1, s.ReplicationFactor())
	got, err := s.Get(3, nil)
	require.NoError(t, err)
	require.Equal(t, []Instance{b}, got)

	s, err = NewStaticWithOptions([]StaticOption{WithStaticReplicationFactor(3)}, a, b, c)
	require.NoError(t, err)
	got, err = s.Get(2, nil)
	require.NoError(t, err)
	require.Equal(t, []Instance{c, a, b}, got)
	ins, maxFail, err := s.ReadSet()
	require.NoError(t, err)
	require.Len(t, ins, 3)
	require.Equal(t, 1, maxFail)

	_, err = NewStatic()
	require.ErrorIs(t, err, ErrEmptyRing)
}

func TestTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	taken := []uint32{1, 2, 3}
	toks := RandomTokens(rng, 128, taken)
	require.Len(t, toks, 128)
	require.IsIncreasing(t, toks)
	for _, tk := range toks {
		require.NotContains(t, taken, tk)
	}

	d := NewDesc()
	joinBalanced(rng, d, 5, 128)
	for _, in := range d.Instances {
		require.IsIncreasing(t, in.Tokens)
	}
	require.Len(t, d.TakenTokens(), 5*128, "balanced tokens never collide")

	path := filepath.Join(t.TempDir(), TokensFileName)
	got, err := LoadTokens(path)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, SaveTokens(path, toks))
	got, err = LoadTokens(path)
	require.NoError(t, err)
	require.Equal(t, toks, got)
	require.NoError(t, SaveTokens(path, toks[:3]))
	got, err = LoadTokens(path)
	require.NoError(t, err)
	require.Equal(t, toks[:3], got)
}
