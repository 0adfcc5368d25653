// Package ring owns membership, token ownership, replica selection and the one
// sharding function of Argus, ShardToken.
//
// Today the ring is static (a ring of one, for the all-in-one process); the
// gossiped ring of issue #3 replaces Static behind the same Get method.
// The ring does not import distributor, ingester, querier or storage.
package ring
