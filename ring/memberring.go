package ring

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// MemberTokensPerMember is how many tokens each member of a MemberRing has:
// with 128 a member's share of the keys varies by about ±9 % (see
// RandomTokens), like an ingester's.
const MemberTokensPerMember = 128

// MemberRing is the ring of the alive members of a role whose only shared
// state is membership (scrapers, rulers): each member's tokens are a pure
// function of its name (MemberTokens), so every member that sees the same
// members builds the same ring and agrees on every key's owner, with
// nothing gossiped but the member names. It is immutable.
type MemberRing struct {
	members []string // sorted
	r       *Ring
}

// NewMemberRing returns the ring of members (sorted, distinct). seed is
// hashed before every member name; roles keep theirs fixed, since two
// versions with different seeds would disagree on owners during a rollout.
func NewMemberRing(seed string, members []string) *MemberRing {
	d := NewDesc()
	for _, m := range members {
		d.Instances[m] = InstanceDesc{Addr: m, State: StateActive, Tokens: MemberTokens(seed, m)}
	}
	// Heartbeats never expire: liveness is the gossip's failure detector.
	return &MemberRing{members: members, r: NewRing(d, Options{ReplicationFactor: 1})}
}

// MemberTokens returns the tokens of the member named name, sorted: xxhash
// of seed, the name and the token's index. Two members may draw the same
// token; the ring gives it to the lower name, deterministically.
func MemberTokens(seed, name string) []uint32 {
	out := make([]uint32, 0, MemberTokensPerMember)
	seen := make(map[uint32]bool, MemberTokensPerMember)
	for i := 0; len(out) < MemberTokensPerMember; i++ {
		t := fold(xxhash.Sum64String(seed + name + "\xff" + strconv.Itoa(i)))
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Owner returns the member that owns token, "" on an empty or nil ring.
func (m *MemberRing) Owner(token uint32) string {
	if m == nil || len(m.members) == 0 {
		return ""
	}
	if len(m.members) == 1 {
		return m.members[0]
	}
	var buf [1]Instance
	got, err := m.r.Get(token, buf[:0])
	if err != nil || len(got) == 0 {
		return ""
	}
	return got[0].ID
}

// FoldHash folds a 64-bit hash to a ring token, as the ring's own tokens are.
func FoldHash(h uint64) uint32 { return fold(h) }

// Members returns the ring's members, sorted. The slice is the ring's own:
// callers must not modify it.
func (m *MemberRing) Members() []string {
	if m == nil {
		return nil
	}
	return m.members
}
