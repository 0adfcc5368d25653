package ingester

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/limits"
)

// TenantLimits gives the limits in force for a tenant. *limits.Overrides
// implements it. For must be safe for concurrent use and must not block; the
// *limits.Limits it returns is shared and read-only, and may be replaced by a
// reload between two calls (so the ingester calls For again for every push
// that creates a series rather than keeping the result).
type TenantLimits interface {
	For(tenant string) *limits.Limits
}

// RingCounter tells how many ingesters share a tenant's global series
// limits. *ring.KV and *ring.Static implement it. Both methods must be safe
// for concurrent use and must not block.
type RingCounter interface {
	// HealthyInstancesCount is the number of healthy (ACTIVE) ingesters.
	HealthyInstancesCount() int
	// ReplicationFactor is how many ingesters hold each series.
	ReplicationFactor() int
}

// Flags of the series limits, as the messages name them.
const (
	flagMaxSeriesPerUser   = "ingester.max-global-series-per-user"
	flagMaxSeriesPerMetric = "ingester.max-global-series-per-metric"
)

// localShare is the share of one global limit that this ingester enforces.
type localShare struct {
	local  int // 0: unlimited
	global int // 0: unlimited
	// rf and healthy are the replication factor and the healthy ingesters
	// that local was computed with.
	rf, healthy int
}

// newLocalShare returns this ingester's share of global, as Mimir computes
// it: each series lands on rf of the healthy ingesters, so each holds about
// global × rf / healthy of them. The share is rounded up and never more than
// global; 0 (unlimited) stays 0. rf and healthy below 1 count as 1.
func newLocalShare(global, rf, healthy int) localShare {
	rf, healthy = max(rf, 1), max(healthy, 1)
	sh := localShare{global: global, rf: rf, healthy: healthy}
	switch {
	case global <= 0:
	case rf >= healthy:
		sh.local = global
	default:
		// ceil(global × rf / healthy) without overflowing global × rf.
		q, r := global/healthy, global%healthy
		sh.local = q*rf + (r*rf+healthy-1)/healthy
	}
	return sh
}

// explain says how the share of the limit of flag was computed, for a
// reject message.
func (sh localShare) explain(flag string) string {
	how := "rounded up"
	if sh.rf > sh.healthy {
		how = fmt.Sprintf("capped at %d", sh.global)
	}
	return fmt.Sprintf("its share of %s is %d (%d x replication factor %d / %d healthy ingesters, %s)",
		apierror.LimitText(flag, sh.global), sh.local, sh.global, sh.rf, sh.healthy, how)
}

// seriesLimits are the local series limits of one tenant, computed once per
// push that creates a series. The zero value limits nothing.
type seriesLimits struct {
	perUser, perMetric localShare
}

// seriesLimiter computes the local series limits of tenants from their
// global limits and the ring. Safe for concurrent use.
type seriesLimiter struct {
	limits TenantLimits // nil: no series limits
	ring   RingCounter  // nil: 1 ingester at replication factor 1
}

// enabled reports whether tenants may have series limits at all.
func (l *seriesLimiter) enabled() bool {
	return l.limits != nil
}

// local returns the local series limits of tenant now.
func (l *seriesLimiter) local(tenant string) seriesLimits {
	if l.limits == nil {
		return seriesLimits{}
	}
	lim := l.limits.For(tenant)
	if lim == nil {
		return seriesLimits{}
	}
	rf, healthy := 1, 1
	if l.ring != nil {
		rf, healthy = l.ring.ReplicationFactor(), l.ring.HealthyInstancesCount()
	}
	return seriesLimits{
		perUser:   newLocalShare(lim.MaxGlobalSeriesPerUser, rf, healthy),
		perMetric: newLocalShare(lim.MaxGlobalSeriesPerMetric, rf, healthy),
	}
}

// seriesCounts are the in-memory series of a head, in total and per metric
// name. Guarded by the head's createMu.
type seriesCounts struct {
	total    int
	byMetric map[string]int // by __name__; a name with no series is absent
}

// add counts a new series of metric name. name must be immutable and must
// not keep more than itself alive (the head passes its symbol's string): an
// assignment to an existing key of a Go map stores the new key's string.
func (c *seriesCounts) add(name string) {
	c.total++
	c.byMetric[name]++
}

// remove uncounts a series of metric name (as for add).
func (c *seriesCounts) remove(name string) {
	c.total--
	if n := c.byMetric[name]; n > 1 {
		c.byMetric[name] = n - 1
	} else {
		delete(c.byMetric, name)
	}
}

// check returns a seriesLimitError if a new series with labels lset would
// exceed lim, or nil.
func (c *seriesCounts) check(tenant string, lset labels.Labels, lim *seriesLimits) error {
	if l := lim.perUser.local; l > 0 && c.total >= l {
		return seriesLimitError{kind: rejectPerUserLimit, tenant: tenant, count: c.total, share: lim.perUser}
	}
	if l := lim.perMetric.local; l > 0 {
		name := lset.Get(labels.MetricName)
		if n := c.byMetric[name]; n >= l {
			return seriesLimitError{kind: rejectPerMetricLimit, tenant: tenant, metric: name, count: n, share: lim.perMetric}
		}
	}
	return nil
}

// seriesLimitError is a new series refused because its tenant, or its
// metric, has its share of a global series limit on this ingester. Its Error
// is the RejectedSeries message; it matches ErrMaxSeriesPerUser or
// ErrMaxSeriesPerMetric.
type seriesLimitError struct {
	kind   rejectKind // rejectPerUserLimit or rejectPerMetricLimit
	tenant string
	metric string // rejectPerMetricLimit only
	count  int    // in-memory series of the tenant, or of the metric
	share  localShare
}

func (e seriesLimitError) Error() string {
	if e.kind == rejectPerMetricLimit {
		return fmt.Sprintf("tenant %q has %d in-memory series of metric %q on this ingester, %s",
			e.tenant, e.count, e.metric, e.share.explain(flagMaxSeriesPerMetric))
	}
	return fmt.Sprintf("tenant %q has %d in-memory series on this ingester, %s",
		e.tenant, e.count, e.share.explain(flagMaxSeriesPerUser))
}

func (e seriesLimitError) Is(target error) bool {
	if e.kind == rejectPerMetricLimit {
		return target == ErrMaxSeriesPerMetric
	}
	return target == ErrMaxSeriesPerUser
}
