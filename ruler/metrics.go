package ruler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	pushedSamples prometheus.Counter
	pushFailures  prometheus.Counter
	ownedGroups   prometheus.Gauge
	allGroups     prometheus.Gauge
	tenants       prometheus.Gauge
	members       prometheus.Gauge
	syncs         prometheus.Counter
	syncFailures  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pushedSamples: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ruler_pushed_samples_total", Help: "Samples of recording rules and ALERTS series written through the distributor and stored.",
		}),
		pushFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ruler_push_failures_total", Help: "Writes of one rule evaluation's samples that failed or were partly refused; the rules manager logs each.",
		}),
		ownedGroups: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ruler_owned_rule_groups", Help: "Rule groups this ruler evaluates (owns on the ring of rulers).",
		}),
		allGroups: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ruler_rule_groups", Help: "Rule groups of every tenant in the store, which the ring shares out.",
		}),
		tenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ruler_tenants", Help: "Tenants with at least one rule group this ruler evaluates.",
		}),
		members: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ruler_ring_members", Help: "Alive rulers that share the rule groups.",
		}),
		syncs: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ruler_syncs_total", Help: "Times the ruler re-computed the groups it owns, after a change of the store or of the alive rulers.",
		}),
		syncFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_ruler_sync_failures_total", Help: "Syncs in which a tenant's rules manager refused its groups; the ruler logs each and retries at the next poll.",
		}),
	}
}
