package ring

import (
	"net"
	"slices"
	"strings"

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

// grpcMetaPrefix marks the gRPC address among the comma-separated roles of
// a member's metadata (Deps.GRPCAddr).
const grpcMetaPrefix = "grpc="

// MemberAddrs returns the gRPC address (host:port) of each alive gossip
// member, this process included, that runs role, by member name. A member
// that gossips no address (an older version, or no Deps.GRPCAddr) maps to
// "". A gossiped address whose host is empty or a wildcard gets the host of
// the member's gossip address, which the others reach already. Before
// Starting it returns this process alone if it runs role.
func (k *KV) MemberAddrs(role string) map[string]string {
	out := map[string]string{}
	ml := k.ml.Load()
	if ml == nil {
		if hasRole(k.meta, role) {
			out[k.cfg.NodeName] = metaGRPCAddr(k.meta, k.cfg.BindAddr)
		}
		return out
	}
	for _, m := range ml.Members() {
		if m.State == memberlist.StateAlive && hasRole(m.Meta, role) {
			out[m.Name] = metaGRPCAddr(m.Meta, m.Addr.String())
		}
	}
	return out
}

// metaGRPCAddr returns the gRPC address a member's metadata names, its
// empty or wildcard host replaced by gossipHost; "" if it names none.
func metaGRPCAddr(meta []byte, gossipHost string) string {
	for f := range strings.SplitSeq(string(meta), ",") {
		addr, ok := strings.CutPrefix(f, grpcMetaPrefix)
		if !ok {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return ""
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = gossipHost
		}
		return net.JoinHostPort(host, port)
	}
	return ""
}
