package ring

import (
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Liveness from the gossip's failure detector. memberlist probes every
// member every second or so and declares one dead within seconds of its
// crash; the ring's heartbeat timeout (a minute by default) is far slower.
// An ingester process gossips its ring instance ID in its memberlist
// metadata (Deps.InstanceID), so that a member that memberlist declares dead
// (or that left) marks its instance down: Get skips it at once, and writes
// extend to the next healthy instance, instead of failing for a whole
// heartbeat timeout. The instance is up again as soon as a member carrying
// its ID is alive (a restart, or a false suspicion cleared).
//
// Reads (ReadSet) still go by heartbeat: a read that asks a dead instance
// fails fast on its connection and is tolerated within maxFailures.

// instanceMetaPrefix marks the instance ID among the comma-separated roles of
// a member's metadata.
const instanceMetaPrefix = "@"

// metaInstanceID returns the ring instance ID a member's metadata names, or "".
func metaInstanceID(meta []byte) string {
	for r := range strings.SplitSeq(string(meta), ",") {
		if id, ok := strings.CutPrefix(r, instanceMetaPrefix); ok {
			return id
		}
	}
	return ""
}

// liveness tracks, per gossip member that names a ring instance, whether
// memberlist holds it alive. Safe for concurrent use.
type liveness struct {
	mu    sync.Mutex
	nodes map[string]nodeLiveness // by memberlist node name; guarded by mu
}

type nodeLiveness struct {
	instance string
	alive    bool
}

// set records that node (naming instance) is alive or not, and reports
// whether the set of down instances may have changed. A node coming alive
// removes the dead nodes of the same instance: they are its past.
func (l *liveness) set(node, instance string, alive bool) bool {
	if instance == "" {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nodes == nil {
		l.nodes = map[string]nodeLiveness{}
	}
	prev, had := l.nodes[node]
	l.nodes[node] = nodeLiveness{instance: instance, alive: alive}
	if alive {
		for n, nl := range l.nodes {
			if nl.instance == instance && !nl.alive {
				delete(l.nodes, n)
			}
		}
	}
	return !had || prev.alive != alive
}

// down returns the instances some of whose nodes are dead and none alive;
// nil if none.
func (l *liveness) down() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var down map[string]bool
	alive := map[string]bool{}
	for _, nl := range l.nodes {
		if nl.alive {
			alive[nl.instance] = true
		}
	}
	for _, nl := range l.nodes {
		if !nl.alive && !alive[nl.instance] {
			if down == nil {
				down = map[string]bool{}
			}
			down[nl.instance] = true
		}
	}
	return down
}

// forget drops the nodes of instances keep does not report.
func (l *liveness) forget(keep func(instance string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n, nl := range l.nodes {
		if !keep(nl.instance) {
			delete(l.nodes, n)
		}
	}
}

// events is KV's memberlist.EventDelegate. memberlist calls it from its own
// goroutines, never concurrently with itself.
type events struct{ k *KV }

func (e events) NotifyJoin(n *memberlist.Node) { e.k.setLiveness(n, true) }
func (e events) NotifyUpdate(n *memberlist.Node) {
	e.k.setLiveness(n, n.State == memberlist.StateAlive)
}
func (e events) NotifyLeave(n *memberlist.Node) { e.k.setLiveness(n, false) }

// setLiveness records n's liveness and, if it changed which instances are
// down, drops the cached ring view so that the next Get sees it.
func (k *KV) setLiveness(n *memberlist.Node, alive bool) {
	id := metaInstanceID(n.Meta)
	if !k.live.set(n.Name, id, alive) {
		return
	}
	if !alive {
		k.logger.Warn("gossip failure detector: member dead or left, its ring instance takes no writes until it is back",
			"member", n.Name, "instance", id)
	} else {
		k.logger.Info("gossip member alive", "member", n.Name, "instance", id)
	}
	k.mu.Lock()
	k.view.Store(nil)
	k.mu.Unlock()
}
