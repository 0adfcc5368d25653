package ring

import (
	"time"
)

// Instance is one member of the ring: an ingester, addressed by gRPC.
type Instance struct {
	ID   string
	Addr string // host:port of its gRPC server
	Zone string // availability zone; empty without zone awareness
}

// Options shape a Ring view of a ring state.
type Options struct {
	// ReplicationFactor is how many instances hold each series (≥ 1).
	ReplicationFactor int
	// ZoneAwareness places the replicas of a series in distinct zones.
	ZoneAwareness bool
	// HeartbeatTimeout is how old a heartbeat may be before the instance is
	// UNHEALTHY. Zero means heartbeats never expire.
	HeartbeatTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Ring is a read-only view of a ring state: the token table and the
// instances, built once by NewRing. All methods are safe for concurrent use.
// Health is evaluated at call time, from Options.Now.
type Ring struct {
	opts      Options
	tab       tokenTable
	instances []member // indexed like tab.instances
	desc      *Desc    // not modified after NewRing
}

type member struct {
	Instance
	state     State
	heartbeat int64 // Unix milliseconds
	// down: the gossip's failure detector declared its process dead (see
	// liveness.go); it takes no writes whatever its heartbeat.
	down bool
}

// NewRing returns a view of d with opts. d is copied: the caller may keep
// modifying it. LEFT instances and instances without tokens are not part of
// the view.
func NewRing(d *Desc, opts Options) *Ring {
	opts.ReplicationFactor = max(1, opts.ReplicationFactor)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Ring{opts: opts, desc: d.Clone()}
	r.tab = buildTokenTable(r.desc, nil)
	r.instances = make([]member, len(r.tab.instances))
	for i, id := range r.tab.instances {
		in := r.desc.Instances[id]
		r.instances[i] = member{
			Instance:  Instance{ID: id, Addr: in.Addr, Zone: in.Zone},
			state:     in.State,
			heartbeat: in.HeartbeatUnixMillis,
		}
	}
	if !opts.ZoneAwareness {
		for i := range r.instances {
			r.instances[i].Zone = ""
		}
	}
	return r
}

// markDown marks the instances of down as down for writes. Only the
// builder of the view calls it, before sharing the view.
func (r *Ring) markDown(down map[string]bool) {
	for i := range r.instances {
		r.instances[i].down = down[r.instances[i].ID]
	}
}

// ReplicationFactor returns how many instances hold each series.
func (r *Ring) ReplicationFactor() int { return r.opts.ReplicationFactor }

// Desc returns a copy of the ring state the view was built from.
func (r *Ring) Desc() *Desc { return r.desc.Clone() }

// Instances returns the instances of the view (not LEFT, with tokens), by ID.
// The slice is a copy.
func (r *Ring) Instances() []Instance {
	out := make([]Instance, len(r.instances))
	for i, m := range r.instances {
		out[i] = m.Instance
	}
	return out
}

// Ownership returns the fraction of the ring (0 to 1) each instance of the
// view owns as the primary (first) owner of its token ranges, after token
// conflicts are resolved.
func (r *Ring) Ownership() map[string]float64 {
	out := make(map[string]float64, len(r.instances))
	n := len(r.tab.tokens)
	for i, t := range r.tab.tokens {
		prev := r.tab.tokens[(i+n-1)%n]
		size := rng32{start: prev, end: t}.size()
		out[r.tab.instances[r.tab.owners[i]]] += float64(size) / ringSize
	}
	return out
}

// HealthyInstancesCount returns how many instances are ACTIVE with a fresh
// heartbeat: the ingesters that share a tenant's global series limit.
func (r *Ring) HealthyInstancesCount() int {
	now := r.opts.Now().UnixMilli()
	n := 0
	for i := range r.instances {
		if m := &r.instances[i]; m.state == StateActive && r.fresh(m, now) {
			n++
		}
	}
	return n
}
