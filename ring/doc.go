// Package ring owns membership, token ownership, replica selection and the one
// sharding function of Argus, ShardToken.
//
// The ring state (Desc) is a CRDT: a map of instance ID → InstanceDesc,
// merged per instance by last writer wins on the heartbeat (see DESIGN.md).
// KV keeps it in sync between processes with hashicorp/memberlist gossip and
// answers ring queries from the latest state; Lifecycler keeps one
// ingester's entry (tokens, JOINING → ACTIVE → LEAVING → LEFT, heartbeats);
// Ring is an immutable view of one state that picks the replicas of a token
// (Get) and the instances a read asks (ReadSet). Static is a fixed ring for
// the all-in-one process and tests; it answers the same methods.
// RingHandler and MembersHandler serve the operator pages /ring and
// /memberlist. KV also gossips a second state, the distributors' HA
// elections (HAElections, ha.go): per (tenant, cluster) the elected replica
// of a Prometheus HA pair, another CRDT (see DESIGN.md).
//
// The ring does not import distributor, ingester, querier or storage, and
// knows nothing of series beyond ShardToken; tenants, clusters and replicas
// are opaque strings of the HA elections.
package ring
