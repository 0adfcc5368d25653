package ring

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// ringSize is the number of points on the 32-bit ring.
const ringSize = 1 << 32

// RandomTokens returns n random tokens, sorted, that are not in taken (sorted)
// and not repeated. It is the classic scheme: simple, but with 128 tokens an
// instance's share varies by about ±9 % (one standard deviation); see
// BalancedTokens.
func RandomTokens(rng *rand.Rand, n int, taken []uint32) []uint32 {
	seen := make(map[uint32]struct{}, n+len(taken))
	for _, t := range taken {
		seen[t] = struct{}{}
	}
	out := make([]uint32, 0, n)
	for len(out) < n {
		t := rng.Uint32()
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// BalancedTokens returns n tokens for an instance joining the ring d, sorted,
// none of them taken in d. They are chosen so that the new instance owns about
// 1/(members+1) of the ring, taken from each existing member in proportion to
// how much it owns above that share:
//
//   - on an empty ring they are RandomTokens: instances that start together
//     all see an empty ring, and random tokens (about ±9 % each) balance them
//     far better than evenly spaced tokens from random offsets would;
//   - otherwise each token splits the largest range of the member that
//     currently owns the most, taking just what the new instance still needs
//     per remaining token (with ±10 % jitter, so two instances joining at the
//     same time do not pick the same tokens).
//
// Only the new instance's ranges change owner, so about 1/(members+1) of the
// series move when it joins. Concurrent joiners may take from the same
// ranges; the ring stays correct, only less balanced. rng supplies the offset
// and the jitter.
func BalancedTokens(rng *rand.Rand, n int, d *Desc) []uint32 {
	if n <= 0 {
		return nil
	}
	tab := buildTokenTable(d, nil)
	if len(tab.tokens) == 0 {
		return RandomTokens(rng, n, nil)
	}
	b := newBalancer(tab)
	need := float64(ringSize) / float64(len(b.owned)+1)
	out := make([]uint32, 0, n)
	for k := range n {
		per := need / float64(n-k) * (0.9 + 0.2*rng.Float64())
		t, took, ok := b.split(per)
		if !ok {
			break
		}
		need -= float64(took)
		out = append(out, t)
	}
	if len(out) < n { // The ring is too crowded to split; fall back to random.
		taken := slices.Concat(tab.tokens, out)
		slices.Sort(taken)
		out = append(out, RandomTokens(rng, n-len(out), taken)...)
	}
	slices.Sort(out)
	return out
}

// balancer tracks, for each member, its ranges (start exclusive, end token
// inclusive) so BalancedTokens can split the largest range of the largest owner.
type balancer struct {
	owned  []uint64  // per owner index: points owned
	ranges [][]rng32 // per owner index: its ranges
}

type rng32 struct{ start, end uint32 } // (start, end], wrapping

func (r rng32) size() uint64 { return uint64(r.end-r.start-1) + 1 }

func newBalancer(tab tokenTable) *balancer {
	b := &balancer{owned: make([]uint64, len(tab.instances)), ranges: make([][]rng32, len(tab.instances))}
	for i, t := range tab.tokens {
		prev := tab.tokens[(i+len(tab.tokens)-1)%len(tab.tokens)]
		r := rng32{start: prev, end: t}
		if len(tab.tokens) == 1 {
			r = rng32{start: t, end: t} // one token owns the whole ring
		}
		o := tab.owners[i]
		b.owned[o] += r.size()
		b.ranges[o] = append(b.ranges[o], r)
	}
	return b
}

// split takes about want points from the start of the largest range of the
// largest owner and returns the new token and how many points it took.
func (b *balancer) split(want float64) (token uint32, took uint64, ok bool) {
	owner := -1
	for o, v := range b.owned {
		if owner < 0 || v > b.owned[owner] {
			owner = o
		}
	}
	rs := b.ranges[owner]
	best := -1
	for i, r := range rs {
		if best < 0 || r.size() > rs[best].size() {
			best = i
		}
	}
	r := rs[best]
	if r.size() < 2 {
		return 0, 0, false
	}
	took = uint64(want)
	took = max(1, min(took, r.size()-1))
	token = r.start + uint32(took)
	rs[best] = rng32{start: token, end: r.end}
	b.owned[owner] -= took
	return token, took, true
}

// tokenFile is the on-disk form of an instance's tokens.
type tokenFile struct {
	Tokens []uint32 `json:"tokens"`
}

// TokensFileName is the name of the tokens file in an instance's data dir.
const TokensFileName = "tokens.json"

// LoadTokens reads the tokens saved by SaveTokens at path. A missing file
// returns no tokens and no error. The tokens are returned sorted, distinct.
func LoadTokens(path string) ([]uint32, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	var f tokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load tokens from %s: %w", path, err)
	}
	slices.Sort(f.Tokens)
	return slices.Compact(f.Tokens), nil
}

// SaveTokens writes tokens to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced. A crash
// leaves either the old file or the new one.
func SaveTokens(path string, tokens []uint32) error {
	b, err := json.Marshal(tokenFile{Tokens: tokens})
	if err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save tokens: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	df, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	defer df.Close()
	if err := df.Sync(); err != nil {
		return fmt.Errorf("save tokens: sync dir: %w", err)
	}
	return nil
}

// tokenTable is the sorted token → owner table of a ring state, after token
// conflicts are resolved: when several instances (not LEFT) claim one token,
// the one with the lowest ID owns it and the others ignore it.
type tokenTable struct {
	tokens    []uint32 // sorted, distinct
	owners    []int32  // owners[i] indexes instances
	instances []string // instance IDs, sorted
}

// buildTokenTable builds the table of d's instances for which keep returns
// true (nil keeps every instance that is not LEFT).
func buildTokenTable(d *Desc, keep func(InstanceDesc) bool) tokenTable {
	var tab tokenTable
	for id, in := range d.Instances {
		if in.State == StateLeft || (keep != nil && !keep(in)) || len(in.Tokens) == 0 {
			continue
		}
		tab.instances = append(tab.instances, id)
	}
	sort.Strings(tab.instances)
	type pair struct {
		token uint32
		owner int32
	}
	var ps []pair
	for i, id := range tab.instances {
		for _, t := range d.Instances[id].Tokens {
			ps = append(ps, pair{t, int32(i)})
		}
	}
	// Sort by token, then owner: the first of each token is the lowest ID.
	slices.SortFunc(ps, func(a, b pair) int {
		if a.token != b.token {
			if a.token < b.token {
				return -1
			}
			return 1
		}
		return int(a.owner - b.owner)
	})
	tab.tokens = make([]uint32, 0, len(ps))
	tab.owners = make([]int32, 0, len(ps))
	for i, p := range ps {
		if i > 0 && ps[i-1].token == p.token {
			continue
		}
		tab.tokens = append(tab.tokens, p.token)
		tab.owners = append(tab.owners, p.owner)
	}
	return tab
}
