package ring

import (
	"fmt"
	"slices"
	"strings"
)

// fresh reports whether m's heartbeat is within the timeout at now.
func (r *Ring) fresh(m *member, now int64) bool {
	return r.opts.HeartbeatTimeout <= 0 || now-m.heartbeat <= r.opts.HeartbeatTimeout.Milliseconds()
}

// Get returns the replicas of token, appended to buf (which the caller owns):
// walking clockwise from the first ring token ≥ token, the first
// ReplicationFactor distinct instances that are ACTIVE with a fresh heartbeat
// and not down by the gossip's failure detector (and, with zone awareness,
// in zones not yet used). Instances that are not
// healthy are skipped and the walk extends to the next one, so a series keeps
// RF replicas while an instance is down. If fewer than a quorum
// (ReplicationFactor/2+1) are found, Get returns an error wrapping
// ErrTooFewHealthy, and buf unchanged. The quorum a write needs is computed
// from ReplicationFactor, not from the number of replicas returned.
func (r *Ring) Get(token uint32, buf []Instance) ([]Instance, error) {
	return r.get(token, r.opts.Now().UnixMilli(), buf)
}

// Picker is a ring fixed at one instant, for placing every series of a
// push: Get as (*Ring).Get, with heartbeats judged fresh or not at the time
// Picker was called, so that the clock is read once per push rather than
// once per series.
type Picker struct {
	r   *Ring
	now int64 // Unix milliseconds
}

// Picker returns r fixed at the current time.
func (r *Ring) Picker() Picker { return Picker{r: r, now: r.opts.Now().UnixMilli()} }

// Get returns the replicas of token; see (*Ring).Get.
func (p Picker) Get(token uint32, buf []Instance) ([]Instance, error) {
	return p.r.get(token, p.now, buf)
}

func (r *Ring) get(token uint32, now int64, buf []Instance) ([]Instance, error) {
	n := len(r.tab.tokens)
	if n == 0 {
		return buf, fmt.Errorf("get token %d: %w", token, ErrEmptyRing)
	}
	rf := r.opts.ReplicationFactor
	start, _ := slices.BinarySearch(r.tab.tokens, token) // the first token ≥ token (tokens are distinct)
	base := len(buf)
	var visitedSmall [16]int32
	visited := visitedSmall[:0]
	for i := 0; i < n && len(buf)-base < rf && len(visited) < len(r.instances); i++ {
		o := r.tab.owners[(start+i)%n]
		if slices.Contains(visited, o) {
			continue
		}
		visited = append(visited, o)
		m := &r.instances[o]
		if m.state != StateActive || m.down || !r.fresh(m, now) {
			continue
		}
		if r.opts.ZoneAwareness && zoneUsed(buf[base:], m.Zone) {
			continue
		}
		buf = append(buf, m.Instance)
	}
	if found, quorum := len(buf)-base, rf/2+1; found < quorum {
		return buf[:base], fmt.Errorf("get token %d: %w", token, tooFewHealthyError{op: "write", found: found, needed: quorum})
	}
	return buf, nil
}

func zoneUsed(picked []Instance, zone string) bool {
	for _, p := range picked {
		if p.Zone == zone {
			return true
		}
	}
	return false
}

// ReadSet returns every instance that may hold data and can serve a read
// (ACTIVE or LEAVING, with a fresh heartbeat), and maxFailures: how many of
// the returned instances a read may lose and still see every sample that a
// write quorum acknowledged.
//
// Without zone awareness maxFailures counts instances: ReplicationFactor/2
// minus the instances (not LEFT) that are already unhealthy or JOINING, since
// each of those may be one of a series' replicas. With zone awareness it
// counts zones: the read may lose every instance of up to maxFailures zones
// (group the failures by Instance.Zone), ReplicationFactor/2 minus the zones
// that already have an unhealthy instance.
//
// If the unhealthy instances (or zones) already exceed ReplicationFactor/2,
// ReadSet returns an error wrapping ErrTooFewHealthy that names them, with
// the instances that can serve (for a read that accepts a partial answer)
// and maxFailures 0.
func (r *Ring) ReadSet() (instances []Instance, maxFailures int, err error) {
	if len(r.instances) == 0 {
		return nil, 0, fmt.Errorf("read set: %w", ErrEmptyRing)
	}
	now := r.opts.Now().UnixMilli()
	tolerated := r.opts.ReplicationFactor / 2
	unhealthy := 0
	var badZones, badAddrs []string
	for i := range r.instances {
		m := &r.instances[i]
		if (m.state == StateActive || m.state == StateLeaving) && r.fresh(m, now) {
			instances = append(instances, m.Instance)
			continue
		}
		unhealthy++
		badAddrs = append(badAddrs, m.Addr)
		if !slices.Contains(badZones, m.Zone) {
			badZones = append(badZones, m.Zone)
		}
	}
	lost := unhealthy
	if r.opts.ZoneAwareness {
		lost = len(badZones)
	}
	if lost > tolerated {
		return instances, 0, fmt.Errorf("read set: %d unavailable (%s), tolerate %d: %w", lost, strings.Join(badAddrs, ", "), tolerated,
			tooFewHealthyError{op: "read", found: len(instances), needed: len(r.instances) - tolerated})
	}
	return instances, tolerated - lost, nil
}
