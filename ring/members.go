package ring

import (
	"slices"

	"github.com/hashicorp/memberlist"
)

// AliveMembers returns the names of the alive gossip members, this process
// included, that run role (as their Deps.Roles said), sorted. Before
// Starting it returns this process's name alone if it runs role, else nil.
// Components that shard work by membership alone (the scrapers, which hold
// no state to hand over) read it instead of registering ring instances.
func (k *KV) AliveMembers(role string) []string {
	ml := k.ml.Load()
	if ml == nil {
		if hasRole(k.meta, role) {
			return []string{k.cfg.NodeName}
		}
		return nil
	}
	var out []string
	for _, m := range ml.Members() {
		if m.State == memberlist.StateAlive && hasRole(m.Meta, role) {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// LocalMember returns this process's name in the gossip cluster: its
// -memberlist.nodename, or the generated one once Starting ran.
func (k *KV) LocalMember() string {
	if ml := k.ml.Load(); ml != nil {
		return ml.LocalNode().Name
	}
	return k.cfg.NodeName
}
