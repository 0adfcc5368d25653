package ruler

import (
	"github.com/cespare/xxhash/v2"

	"github.com/argus-tsdb/argus/ring"
)

// Membership is the gossip cluster as the ruler reads it; *ring.KV
// satisfies it. Nil means this ruler is alone and evaluates every group.
type Membership interface {
	// AliveMembers returns the names of the alive members running role, sorted.
	AliveMembers(role string) []string
	// LocalMember returns this process's member name.
	LocalMember() string
	// MemberAddrs returns the gRPC address of each alive member running
	// role, by name ("" for a member that gossips none).
	MemberAddrs(role string) map[string]string
}

// rulerSeed is hashed before a ruler's name into its tokens. Fixed: rulers
// of two versions with different seeds would disagree on owners.
const rulerSeed = "ruler\xff"

// newMemberRing returns the ring of the alive rulers (sorted, distinct): a
// group's owner is the owner of its groupToken.
func newMemberRing(members []string) *ring.MemberRing {
	return ring.NewMemberRing(rulerSeed, members)
}

// groupToken is the token of a group: xxhash of tenant, namespace and name,
// folded to 32 bits.
func groupToken(tenantID, ns, group string) uint32 {
	return ring.FoldHash(xxhash.Sum64String(tenantID + "\xff" + ns + "\xff" + group))
}
