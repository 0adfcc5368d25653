package ring

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons a gossip message is dropped, created at startup so they exist at zero.
const (
	dropInboxFull = "inbox_full" // the merge worker fell behind
	dropCorrupt   = "corrupt"    // the message did not decode
	dropTooLarge  = "too_large"  // an update too large for UDP; push/pull carries it
	// dropUnknownTokens: a heartbeat message for tokens this member does
	// not hold (it missed the full update); an early push/pull brings them
	// (pull.go).
	dropUnknownTokens = "unknown_tokens"
)

// stateUnhealthy is the members{state} label of instances whose heartbeat expired.
const stateUnhealthy = "UNHEALTHY"

type kvMetrics struct {
	members       *prometheus.GaugeVec
	ownedRatio    *prometheus.GaugeVec
	gossipDropped *prometheus.CounterVec
	gossipMerged  prometheus.Counter
	changes       prometheus.Counter
	gossipBytes   prometheus.Counter
	statePulls    prometheus.Counter
	// forgetHeld counts the auto-forget passes that kept an expired
	// instance because forgetting it would leave fewer than a quorum.
	forgetHeld prometheus.Counter
}

func newKVMetrics(reg prometheus.Registerer, queueLen func() float64) *kvMetrics {
	f := promauto.With(reg)
	m := &kvMetrics{
		members: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "argus_ring_members", Help: "Ring members by state (UNHEALTHY: heartbeat expired), as this process sees them.",
		}, []string{"state"}),
		ownedRatio: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "argus_ring_owned_tokens_ratio", Help: "Fraction of the ring (0 to 1) each instance owns as primary.",
		}, []string{"instance"}),
		gossipDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_ring_gossip_dropped_total", Help: "Gossip messages dropped, by reason.",
		}, []string{"reason"}),
		gossipMerged: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ring_gossip_messages_merged_total", Help: "Gossip messages and full states merged into the local ring state.",
		}),
		forgetHeld: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ring_auto_forget_held_total",
			Help: "Auto-forget passes of this process's lifecycler that kept an unhealthy instance in the ring, because forgetting it would leave fewer members than a write quorum.",
		}),
		gossipBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ring_gossip_sent_bytes_total",
			Help: "Bytes of ring updates this process handed to memberlist to gossip (memberlist's own framing, probes and push/pull excluded).",
		}),
		statePulls: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ring_early_state_pulls_total",
			Help: "Full ring state exchanges started before the periodic push/pull, because a heartbeat named tokens this process did not hold.",
		}),
		changes: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ring_state_changes_total", Help: "Changes of the local ring state (instances updated by a merge or a local write).",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "argus_ring_gossip_queue_length", Help: "Ring updates waiting to be gossiped.",
	}, queueLen)
	for _, r := range []string{dropInboxFull, dropCorrupt, dropTooLarge, dropUnknownTokens} {
		m.gossipDropped.WithLabelValues(r)
	}
	for _, s := range []State{StateJoining, StateActive, StateLeaving, StateLeft} {
		m.members.WithLabelValues(s.String())
	}
	m.members.WithLabelValues(stateUnhealthy)
	return m
}
