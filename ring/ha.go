package ring

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// HA elections: for each (tenant, cluster) of Prometheus HA pairs, the
// replica whose samples the distributors accept (see distributor's
// hatracker.go). They are gossiped with the ring, as a second state of the
// KV beside the instances, so that every distributor reads the same
// election without Consul or etcd. See DESIGN.md, "HA elections".

// HAElection is the replica elected for one (tenant, cluster). Times are
// Unix milliseconds of the clock of the distributor that wrote them.
type HAElection struct {
	// Replica is the value of the elected replica's replica label.
	Replica string `json:"replica"`
	// ElectedAtMillis is when Replica was elected: the start of its term.
	// A new term always starts after the one it replaces.
	ElectedAtMillis int64 `json:"elected_at_unix_millis"`
	// ReceivedAtMillis is when a distributor last recorded a push of
	// Replica (at most every -distributor.ha-tracker.update-timeout).
	ReceivedAtMillis int64 `json:"received_at_unix_millis"`
}

// ReceivedAt returns ReceivedAtMillis as a time.
func (e HAElection) ReceivedAt() time.Time { return time.UnixMilli(e.ReceivedAtMillis) }

// compareHAElection is the total order that merging keeps the maximum of:
// the later term (ElectedAtMillis) first, so that a failover beats every
// refresh of the term it ended, even one written later by a distributor
// that had not heard of it yet; then the later ReceivedAtMillis (a refresh
// beats the state it refreshes); then the replica name, so that two
// distributors electing two replicas in the same millisecond agree on one.
// Two elections compare equal only when they are identical.
func compareHAElection(a, b HAElection) int {
	if c := cmp.Compare(a.ElectedAtMillis, b.ElectedAtMillis); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ReceivedAtMillis, b.ReceivedAtMillis); c != 0 {
		return c
	}
	return strings.Compare(a.Replica, b.Replica)
}

// HAEntry is the election of one (tenant, cluster), as gossiped.
type HAEntry struct {
	Tenant, Cluster string
	HAElection
}

// HAElections is a CRDT map (tenant, cluster) → HAElection: merging keeps,
// per key, the greatest election in compareHAElection's order, so it is
// idempotent, commutative and associative, and every member that has seen
// the same updates holds the same elections, whatever their order. Used
// alone (a process without gossip) or inside KV, which gossips it. All
// methods are safe for concurrent use; the lookups take a read lock only.
type HAElections struct {
	mu       sync.RWMutex
	byTenant map[string]map[string]HAElection // tenant → cluster → election; guarded by mu
}

// NewHAElections returns an empty election map.
func NewHAElections() *HAElections {
	return &HAElections{byTenant: map[string]map[string]HAElection{}}
}

// HAElection returns the election of (tenant, cluster), if there is one.
func (h *HAElections) HAElection(tenant, cluster string) (HAElection, bool) {
	h.mu.RLock()
	e, ok := h.byTenant[tenant][cluster]
	h.mu.RUnlock()
	return e, ok
}

// HAClusters returns how many clusters of tenant have an election whose
// replica was received at or after since.
func (h *HAElections) HAClusters(tenant string, since time.Time) int {
	cutoff := since.UnixMilli()
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, e := range h.byTenant[tenant] {
		if e.ReceivedAtMillis >= cutoff {
			n++
		}
	}
	return n
}

// UpdateHAElection merges next as the election of (tenant, cluster) if the
// election held is still prev (the zero HAElection: none), as a
// compare-and-swap: two pushes of one process that race to elect or fail
// over see one winner, the other reads it back. It returns the election now
// held and whether next changed the state. The strings are copied: the
// caller may pass strings that alias a buffer it reuses.
//
// Skipping a merge never breaks convergence (the CRDT only requires that
// what is merged is merged by max); what is merged is gossiped.
func (h *HAElections) UpdateHAElection(tenant, cluster string, prev, next HAElection) (HAElection, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if held := h.byTenant[tenant][cluster]; held != prev {
		return held, false
	}
	changed := h.mergeLocked([]HAEntry{{Tenant: tenant, Cluster: cluster, HAElection: next}})
	return h.byTenant[tenant][cluster], len(changed) > 0
}

// merge merges entries and returns those that changed the state, as they
// are now held. entries are not retained.
func (h *HAElections) merge(entries []HAEntry) []HAEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mergeLocked(entries)
}

// mergeLocked is merge with h.mu held.
func (h *HAElections) mergeLocked(entries []HAEntry) []HAEntry {
	var changed []HAEntry
	for _, in := range entries {
		clusters := h.byTenant[in.Tenant]
		ours, ok := clusters[in.Cluster]
		if ok && compareHAElection(in.HAElection, ours) <= 0 {
			continue
		}
		if clusters == nil {
			clusters = map[string]HAElection{}
			h.byTenant[strings.Clone(in.Tenant)] = clusters
		}
		in.HAElection.Replica = strings.Clone(in.Replica)
		if !ok {
			in.Cluster = strings.Clone(in.Cluster)
		}
		clusters[in.Cluster] = in.HAElection
		changed = append(changed, in)
	}
	return changed
}

// HAEntries returns every election, sorted by tenant then cluster.
func (h *HAElections) HAEntries() []HAEntry {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []HAEntry
	for _, tenant := range slices.Sorted(maps.Keys(h.byTenant)) {
		clusters := h.byTenant[tenant]
		for _, cluster := range slices.Sorted(maps.Keys(clusters)) {
			out = append(out, HAEntry{Tenant: tenant, Cluster: cluster, HAElection: clusters[cluster]})
		}
	}
	return out
}

// RemoveStale deletes the elections whose replica was last received before
// cutoff and returns how many it removed. Like RemoveTombstones it is a
// local operation outside the CRDT: a member that has not removed an entry
// yet may gossip it back, and it is removed again at the next pass. That is
// harmless: a stale election allows an immediate failover, and
// HAClusters does not count it.
func (h *HAElections) RemoveStale(cutoff time.Time) int {
	c := cutoff.UnixMilli()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for tenant, clusters := range h.byTenant {
		for cluster, e := range clusters {
			if e.ReceivedAtMillis < c {
				delete(clusters, cluster)
				n++
			}
		}
		if len(clusters) == 0 {
			delete(h.byTenant, tenant)
		}
	}
	return n
}

// Binary encoding of HA elections (version haVersion), as gossiped in an
// update or appended to a full state:
//
//	byte    version (haVersion)
//	uvarint number of entries
//	per entry: string Tenant, string Cluster, string Replica (uvarint
//	length + bytes), varint ElectedAtMillis, varint ReceivedAtMillis
//
// An update carries one entry: with a tenant ID (at most 150 bytes) and
// cluster and replica values of ordinary length it is well under
// maxBroadcastSize; a larger one reaches the others by push/pull only.
const haVersion = 3

// encodeHAEntries appends the encoding of entries to buf.
func encodeHAEntries(buf []byte, entries []HAEntry) []byte {
	buf = append(buf, haVersion)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for _, e := range entries {
		buf = appendString(buf, e.Tenant)
		buf = appendString(buf, e.Cluster)
		buf = appendString(buf, e.Replica)
		buf = binary.AppendVarint(buf, e.ElectedAtMillis)
		buf = binary.AppendVarint(buf, e.ReceivedAtMillis)
	}
	return buf
}

// decodeHAEntries decodes what encodeHAEntries wrote. It rejects malformed
// input, empty names and duplicate keys with an error wrapping
// ErrCorruptDesc. The result does not reference b.
func decodeHAEntries(b []byte) ([]HAEntry, error) {
	r := decoder{b: b}
	if v := r.byte(); v != haVersion {
		return nil, corruptf("unknown HA elections version %d", v)
	}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, corruptf("%d HA elections in %d bytes", n, len(b))
	}
	out := make([]HAEntry, 0, n)
	seen := make(map[[2]string]struct{}, n)
	for range n {
		e := HAEntry{Tenant: r.string(), Cluster: r.string()}
		e.Replica = r.string()
		e.ElectedAtMillis = r.varint()
		e.ReceivedAtMillis = r.varint()
		if r.err != nil {
			return nil, r.err
		}
		if e.Tenant == "" || e.Cluster == "" || e.Replica == "" {
			return nil, corruptf("HA election with an empty tenant, cluster or replica")
		}
		k := [2]string{e.Tenant, e.Cluster}
		if _, dup := seen[k]; dup {
			return nil, corruptf("duplicate HA election of tenant %q cluster %q", e.Tenant, e.Cluster)
		}
		seen[k] = struct{}{}
		out = append(out, e)
	}
	if len(r.b) != 0 {
		return nil, corruptf("%d trailing bytes after HA elections", len(r.b))
	}
	return out, nil
}

// The full state of a KV (push/pull) is the ring description alone while
// no HA election is known, exactly as before HA elections existed, and
// otherwise:
//
//	byte    version (fullStateVersion)
//	uvarint length of the ring description, then its encoding (Encode)
//	the HA elections (encodeHAEntries)
//
// So a cluster that does not use HA tracking gossips what older members
// read; members older than HA elections drop (and count as corrupt) the
// full states that carry elections: upgrade every member before enabling
// HA tracking.
const fullStateVersion = 4

// encodeFullState appends the full state of ring description d and
// elections entries to buf.
func encodeFullState(buf []byte, d *Desc, entries []HAEntry) []byte {
	if len(entries) == 0 {
		return d.Encode(buf)
	}
	ring := d.Encode(nil)
	buf = append(buf, fullStateVersion)
	buf = binary.AppendUvarint(buf, uint64(len(ring)))
	buf = append(buf, ring...)
	return encodeHAEntries(buf, entries)
}

// decodeFullState decodes what encodeFullState wrote.
func decodeFullState(b []byte) (*Desc, []HAEntry, error) {
	if len(b) == 0 || b[0] != fullStateVersion {
		d, err := DecodeDesc(b)
		return d, nil, err
	}
	r := decoder{b: b[1:]}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return nil, nil, corruptf("full state: ring description of %d bytes in %d", n, len(r.b))
	}
	d, err := DecodeDesc(r.b[:n])
	if err != nil {
		return nil, nil, err
	}
	entries, err := decodeHAEntries(r.b[n:])
	if err != nil {
		return nil, nil, err
	}
	return d, entries, nil
}
