package ring

import (
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
)

// minPullGap is the least time between two early state pulls of one member.
// Heartbeats of an instance whose tokens a member lacks arrive once per
// heartbeat period, from every member re-gossiping them; one pull answers
// them all, so more than one a second would only repeat it.
const minPullGap = time.Second

// pullStateFor asks for the full ring state now, instead of at the next
// periodic push/pull, because a heartbeat message named instance id with
// tokens this member does not hold: it missed every copy of the full update
// (a few retransmissions, over UDP, which a loaded machine drops). Until
// then the member would not see the instance, or see its old tokens, for up
// to -memberlist.pull-push-interval (15 s by default: a new
// ingester missing from one distributor's ring for that long).
//
// The pull is memberlist's own push/pull exchange (a Join of a member it
// already knows), made with the member that gossips instance id in its
// metadata, which holds its own tokens, or else with a random other member.
// It runs on its own goroutine, since it blocks on TCP; one starts at most
// every minPullGap.
func (k *KV) pullStateFor(id string) {
	ml := k.ml.Load()
	if ml == nil || k.stopped.Load() {
		return
	}
	now := time.Now().UnixNano()
	if last := k.lastPull.Load(); now-last < int64(minPullGap) || !k.lastPull.CompareAndSwap(last, now) {
		return
	}
	addr, ok := pullTarget(ml, id)
	if !ok {
		return
	}
	k.metrics.statePulls.Inc()
	go func() {
		if _, err := ml.Join([]string{addr}); err != nil {
			k.logger.Debug("pulling the ring state early failed; the periodic push/pull will bring it", "instance", id, "member", addr, "err", err)
		}
	}()
}

// pullTarget is the gossip address of the member whose metadata names
// instance id, or of a random member other than this one if none does.
func pullTarget(ml *memberlist.Memberlist, id string) (string, bool) {
	self := ml.LocalNode().Name
	var others []*memberlist.Node
	for _, n := range ml.Members() {
		if n.Name == self {
			continue
		}
		if metaInstanceID(n.Meta) == id {
			return n.FullAddress().Addr, true
		}
		others = append(others, n)
	}
	if len(others) == 0 {
		return "", false
	}
	return others[rand.IntN(len(others))].FullAddress().Addr, true
}
