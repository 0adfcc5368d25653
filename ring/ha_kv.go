package ring

import (
	"time"
)

// The HA elections of a KV: a second state beside the ring description,
// merged and gossiped the same way (see ha.go and DESIGN.md).

// HAElectionTTL is how long an election outlives the last push recorded of
// its replica before each KV removes it (RemoveStale): the cluster stopped
// sending, and forgetting it frees its place under the tenant's
// ha_max_clusters.
const HAElectionTTL = 30 * time.Minute

// haBroadcastPrefix starts the broadcast names of HA elections; no instance
// ID holds a NUL byte, so they never replace an instance's update.
const haBroadcastPrefix = "\x00ha\x00"

// HAElection returns the election of (tenant, cluster) this member holds.
func (k *KV) HAElection(tenant, cluster string) (HAElection, bool) {
	return k.ha.HAElection(tenant, cluster)
}

// HAClusters returns how many clusters of tenant have an election whose
// replica was received at or after since.
func (k *KV) HAClusters(tenant string, since time.Time) int { return k.ha.HAClusters(tenant, since) }

// HAEntries returns every election this member holds, sorted by tenant
// then cluster.
func (k *KV) HAEntries() []HAEntry { return k.ha.HAEntries() }

// UpdateHAElection merges next as the election of (tenant, cluster) if the
// one held is still prev (see HAElections.UpdateHAElection), gossips it if
// it changed the state, and returns the election now held. The strings are
// copied.
func (k *KV) UpdateHAElection(tenant, cluster string, prev, next HAElection) (HAElection, bool) {
	cur, changed := k.ha.UpdateHAElection(tenant, cluster, prev, next)
	if changed {
		k.queueHABroadcasts([]HAEntry{{Tenant: tenant, Cluster: cluster, HAElection: cur}})
	}
	return cur, changed
}

// mergeHA merges a gossiped HA elections update and re-gossips what it
// changed.
func (k *KV) mergeHA(b []byte) {
	entries, err := decodeHAEntries(b)
	if err != nil {
		k.metrics.gossipDropped.WithLabelValues(dropCorrupt).Inc()
		k.logger.Debug("dropping corrupt HA elections gossip", "err", err)
		return
	}
	k.metrics.gossipMerged.Inc()
	k.mergeHAEntries(entries)
}

// mergeHAEntries merges entries (of an update or a full state) and
// re-gossips those that changed the state.
func (k *KV) mergeHAEntries(entries []HAEntry) {
	if len(entries) == 0 {
		return
	}
	k.queueHABroadcasts(k.ha.merge(entries))
}

// queueHABroadcasts queues one update per entry. An update too large for
// UDP is dropped and counted; it reaches the others by push/pull.
func (k *KV) queueHABroadcasts(entries []HAEntry) {
	k.metrics.changes.Add(float64(len(entries)))
	for _, e := range entries {
		msg := encodeHAEntries(nil, []HAEntry{e})
		if len(msg) > maxBroadcastSize {
			k.metrics.gossipDropped.WithLabelValues(dropTooLarge).Inc()
			k.logger.Warn("HA election too large to gossip, dropped: it reaches the others by push/pull only",
				"tenant", e.Tenant, "bytes", len(msg), "limit", maxBroadcastSize, "see_metric", "argus_ring_gossip_dropped_total")
			continue
		}
		name := haBroadcastPrefix + e.Tenant + "\x00" + e.Cluster
		k.queue.QueueBroadcast(broadcast{name: name, id: name, msg: msg})
	}
}
