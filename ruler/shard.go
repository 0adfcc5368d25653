package ruler

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/argus-tsdb/argus/ring"
)

// tokensPerRuler is how many ring tokens each ruler has: with 128 each
// ruler's share of the groups varies by about ±9 %, as a scraper's.
const tokensPerRuler = 128

// Membership is the gossip cluster as the ruler reads it; *ring.KV
// satisfies it. Nil means this ruler is alone and evaluates every group.
type Membership interface {
	// AliveMembers returns the names of the alive members running role, sorted.
	AliveMembers(role string) []string
	// LocalMember returns this process's member name.
	LocalMember() string
}

// memberRing is the ring of the alive rulers: each member's tokens are a
// pure function of its name, so every ruler that sees the same members
// builds the same ring and agrees on every group's owner, with nothing
// gossiped but membership (the scrapers' scheme, scraper/shard.go). It is
// immutable.
type memberRing struct {
	members []string // sorted
	r       *ring.Ring
}

func newMemberRing(members []string) *memberRing {
	d := ring.NewDesc()
	for _, m := range members {
		d.Instances[m] = ring.InstanceDesc{Addr: m, State: ring.StateActive, Tokens: rulerTokens(m)}
	}
	// Heartbeats never expire: liveness is the gossip's failure detector.
	return &memberRing{members: members, r: ring.NewRing(d, ring.Options{ReplicationFactor: 1})}
}

// rulerTokens returns the tokens of the ruler named name, sorted: xxhash of
// the name and the token's index.
func rulerTokens(name string) []uint32 {
	out := make([]uint32, 0, tokensPerRuler)
	seen := make(map[uint32]bool, tokensPerRuler)
	for i := 0; len(out) < tokensPerRuler; i++ {
		h := xxhash.Sum64String("ruler\xff" + name + "\xff" + strconv.Itoa(i))
		t := uint32(h) ^ uint32(h>>32)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// owner returns the ruler that evaluates the tenant's group, "" on an
// empty ring.
func (m *memberRing) owner(tenantID, ns, group string) string {
	switch len(m.members) {
	case 0:
		return ""
	case 1:
		return m.members[0]
	}
	var buf [1]ring.Instance
	got, err := m.r.Get(groupToken(tenantID, ns, group), buf[:0])
	if err != nil || len(got) == 0 {
		return ""
	}
	return got[0].ID
}

// groupToken is the token of a group: xxhash of tenant, namespace and name,
// folded to 32 bits.
func groupToken(tenantID, ns, group string) uint32 {
	h := xxhash.Sum64String(tenantID + "\xff" + ns + "\xff" + group)
	return uint32(h) ^ uint32(h>>32)
}
