package distributor

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// The HA tracker deduplicates Prometheus HA pairs, after Mimir's: two (or
// more) Prometheus servers scrape the same targets and send the same series,
// told apart by their external labels: the same cluster label, distinct
// replica labels. Per (tenant, cluster) one replica is elected; its pushes
// are stored without the replica label, so that the series are the same
// whichever replica sent them, and the others' pushes are answered 202 and
// dropped. When the elected replica has sent nothing for the failover
// timeout, the next replica to push is elected.
//
// Elections live in the gossip ring's KV (ring.HAElections, merged
// last-writer-wins per term, see ring/DESIGN.md), so every distributor
// reads the same one. A distributor writes an election only when it
// changes (a new cluster, a failover) and refreshes the elected replica's
// last push at most every update timeout (plus this process's jitter), so
// the gossip carries about one message per cluster and update timeout.
// The failover timeout must exceed the update timeout and its jitter, or a
// live replica would look silent between two refreshes.

// HATrackerConfig is the process configuration of the HA tracker; which
// tenants are deduplicated, and on which labels, are per-tenant limits
// (accept_ha_samples, ha_cluster_label, ha_replica_label, ha_max_clusters).
type HATrackerConfig struct {
	// EnableHATracker turns the HA tracker on for the tenants whose
	// accept_ha_samples is true.
	EnableHATracker bool `yaml:"enable_ha_tracker"`
	// UpdateTimeout is how often, at most, the elected replica's last push
	// is written to the KV.
	UpdateTimeout time.Duration `yaml:"ha_tracker_update_timeout"`
	// UpdateTimeoutJitterMax is the most random time added to
	// UpdateTimeout, once per process, so that distributors do not all
	// refresh at once.
	UpdateTimeoutJitterMax time.Duration `yaml:"ha_tracker_update_timeout_jitter_max"`
	// FailoverTimeout is how long the elected replica may send nothing
	// before another replica's push elects that one.
	FailoverTimeout time.Duration `yaml:"ha_tracker_failover_timeout"`
}

// RegisterFlagsWithPrefix registers the flags of c, each name prefixed with
// prefix, with their defaults (Mimir's) on f.
func (c *HATrackerConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.BoolVar(&c.EnableHATracker, prefix+"distributor.ha-tracker.enable", false,
		"Deduplicate Prometheus HA pairs for the tenants whose accept_ha_samples is true (-distributor.ha-tracker.enable-for-all-users): store the samples of one elected replica per cluster, elected through the memberlist ring.")
	f.DurationVar(&c.UpdateTimeout, prefix+"distributor.ha-tracker.update-timeout", 15*time.Second,
		"How often, at most, a distributor records in the ring that the elected replica of a cluster is still sending.")
	f.DurationVar(&c.UpdateTimeoutJitterMax, prefix+"distributor.ha-tracker.update-timeout-jitter-max", 5*time.Second,
		"Most random time added, once per process, to -distributor.ha-tracker.update-timeout, so that distributors do not refresh the elections together.")
	f.DurationVar(&c.FailoverTimeout, prefix+"distributor.ha-tracker.failover-timeout", 30*time.Second,
		"How long the elected replica of a cluster may send nothing before a push from another replica elects that one. It must be at least 1s more than the update timeout plus its jitter.")
}

// validate reports the invalid settings of c, joined.
func (c *HATrackerConfig) validate() error {
	if !c.EnableHATracker {
		return nil
	}
	var errs []error
	if c.UpdateTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-distributor.ha-tracker.update-timeout must be positive, got %s", c.UpdateTimeout))
	}
	if c.UpdateTimeoutJitterMax < 0 {
		errs = append(errs, fmt.Errorf("-distributor.ha-tracker.update-timeout-jitter-max must not be negative, got %s", c.UpdateTimeoutJitterMax))
	}
	if min := c.UpdateTimeout + c.UpdateTimeoutJitterMax + time.Second; c.FailoverTimeout < min {
		errs = append(errs, fmt.Errorf("-distributor.ha-tracker.failover-timeout (%s) must be at least 1s more than the update timeout plus its jitter max (%s)",
			c.FailoverTimeout, min-time.Second))
	}
	return errors.Join(errs...)
}

// haStore holds the elections; *ring.KV (gossiped) and *ring.HAElections
// (this process alone) satisfy it. It must be safe for concurrent use, and
// copy the strings it keeps.
type haStore interface {
	HAElection(tenant, cluster string) (ring.HAElection, bool)
	UpdateHAElection(tenant, cluster string, prev, next ring.HAElection) (ring.HAElection, bool)
	HAClusters(tenant string, since time.Time) int
}

// discardTooManyHAClusters is the reason label of argus_discarded_samples_total
// for the samples of a push refused with TooManyHAClusters.
const discardTooManyHAClusters = "too_many_ha_clusters"

// haTracker decides, for each push of an HA pair, whether its replica is
// the elected one. Safe for concurrent use.
type haTracker struct {
	store           haStore
	updateTimeout   time.Duration // with this process's jitter
	failoverTimeout time.Duration
	deduped         *prometheus.CounterVec
	changes         *prometheus.CounterVec
}

func newHATracker(cfg HATrackerConfig, store haStore, reg prometheus.Registerer) *haTracker {
	if store == nil {
		store = ring.NewHAElections()
	}
	jitter := time.Duration(0)
	if cfg.UpdateTimeoutJitterMax > 0 {
		jitter = time.Duration(rand.Int64N(int64(cfg.UpdateTimeoutJitterMax) + 1))
	}
	f := promauto.With(reg)
	return &haTracker{
		store:           store,
		updateTimeout:   cfg.UpdateTimeout + jitter,
		failoverTimeout: cfg.FailoverTimeout,
		deduped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_distributor_deduped_samples_total",
			Help: "Samples of pushes from a replica of a Prometheus HA pair that was not the elected replica of its cluster, answered 202 and dropped.",
		}, []string{"tenant", "cluster"}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_ha_tracker_elected_replica_changes_total",
			Help: "Failovers this distributor wrote: another replica of the cluster elected after the elected one sent nothing for -distributor.ha-tracker.failover-timeout.",
		}, []string{"tenant", "cluster"}),
	}
}

// forgetHATenant deletes the HA metric series of a tenant the sweep
// forgets (the elections themselves expire in the ring).
func (d *Distributor) forgetHATenant(tenantID string) {
	if d.ha == nil {
		return
	}
	d.ha.deduped.DeletePartialMatch(prometheus.Labels{"tenant": tenantID})
	d.ha.changes.DeletePartialMatch(prometheus.Labels{"tenant": tenantID})
	d.metrics.discardedSamples.DeleteLabelValues(discardTooManyHAClusters, tenantID)
}

// haDecide is the tracker's decision for a push of replica at now, given the
// election held (found false if none): whether to accept it, and the
// election to write first (write false if none). The push is accepted only
// if the election held after the write still names replica.
func haDecide(cur ring.HAElection, found bool, replica string, now time.Time, updateTimeout, failoverTimeout time.Duration) (next ring.HAElection, write, accept bool) {
	nowMs := now.UnixMilli()
	switch {
	case !found:
		return ring.HAElection{Replica: replica, ElectedAtMillis: nowMs, ReceivedAtMillis: nowMs}, true, true
	case cur.Replica == replica:
		if nowMs-cur.ReceivedAtMillis < updateTimeout.Milliseconds() {
			return cur, false, true
		}
		next = cur
		next.ReceivedAtMillis = nowMs
		return next, true, true
	case nowMs-cur.ReceivedAtMillis > failoverTimeout.Milliseconds():
		// A new term, after the one it ends even if this clock is behind.
		elected := max(nowMs, cur.ElectedAtMillis+1)
		return ring.HAElection{Replica: replica, ElectedAtMillis: elected, ReceivedAtMillis: elected}, true, true
	default:
		return cur, false, false
	}
}

// check returns nil if the push of replica is to be stored, an error of ID
// HAReplicaNotElected if it is to be dropped, or one of TooManyHAClusters.
// cluster and replica may alias the request's buffer.
func (t *haTracker) check(tenantID, cluster, replica string, lim *limits.Limits, now time.Time) error {
	cur, found := t.store.HAElection(tenantID, cluster)
	if lim.HAMaxClusters > 0 && (!found || cur.ReceivedAt().Before(now.Add(-ring.HAElectionTTL))) {
		if n := t.store.HAClusters(tenantID, now.Add(-ring.HAElectionTTL)); n >= lim.HAMaxClusters {
			return apierror.Errorf(apierror.TooManyHAClusters, "cluster %q would be HA cluster %d of the tenant, over its limit (%s)",
				cluster, n+1, apierror.LimitText("distributor.ha-tracker.max-clusters", lim.HAMaxClusters))
		}
	}
	next, write, accept := haDecide(cur, found, replica, now, t.updateTimeout, t.failoverTimeout)
	if write {
		held, _ := t.store.UpdateHAElection(tenantID, cluster, cur, next)
		if held.Replica != replica {
			accept, cur = false, held // Another push elected another replica first.
		} else if found && cur.Replica != replica && held == next {
			t.changes.WithLabelValues(tenantID, strings.Clone(cluster)).Inc()
		}
	}
	if !accept {
		return apierror.Errorf(apierror.HAReplicaNotElected, "samples of replica %q of cluster %q dropped: replica %q is elected, its last push recorded at %s",
			replica, cluster, cur.Replica, cur.ReceivedAt().UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// dedupeHA is the HA step of a push, before validation: if its first
// series carries both the tenant's cluster and replica labels, the push is
// checked against the cluster's election (see haTracker.check). An accepted
// push has the replica label removed from every series; a refused one is
// counted and its error returned. A push without the labels is stored as
// sent.
func (d *Distributor) dedupeHA(wc *writeCtx, tenantID string, lim *limits.Limits) error {
	if len(wc.series) == 0 {
		return nil
	}
	cluster, replica := wc.labelValues(0, lim.HAClusterLabel, lim.HAReplicaLabel)
	if cluster == "" || replica == "" {
		return nil
	}
	if err := d.ha.check(tenantID, cluster, replica, lim, d.now()); err != nil {
		samples := float64(wc.countSamples())
		if id, _ := apierror.IDOf(err); id == apierror.HAReplicaNotElected {
			d.ha.deduped.WithLabelValues(tenantID, strings.Clone(cluster)).Add(samples)
		} else {
			d.metrics.discardedSamples.WithLabelValues(discardTooManyHAClusters, tenantID).Add(samples)
		}
		return err
	}
	return wc.dropLabel(lim.HAReplicaLabel)
}

// labelValues returns the values of labels a and b of series i, "" when
// absent. They alias the request's buffer.
func (wc *writeCtx) labelValues(i int, a, b string) (va, vb string) {
	s := &wc.series[i]
	if s.ts != nil {
		for _, l := range s.ts.Labels {
			switch l.Name {
			case a:
				va = l.Value
			case b:
				vb = l.Value
			}
		}
		return va, vb
	}
	for _, l := range wc.labels[s.lo:s.hi] {
		switch string(wc.decoded[l.nameOff:l.nameEnd]) {
		case a:
			va = string(wc.decoded[l.valueOff:l.valueEnd])
		case b:
			vb = string(wc.decoded[l.valueOff:l.valueEnd])
		}
	}
	return va, vb
}

// countSamples returns the samples (float and histogram) of the push.
func (wc *writeCtx) countSamples() int {
	n := 0
	for i := range wc.series {
		if ts := wc.series[i].ts; ts != nil {
			n += len(ts.Samples) + len(ts.Histograms)
		} else {
			n += int(wc.series[i].samples)
		}
	}
	return n
}

// dropLabel removes label name from every series that has it. A series
// the fast path read has the label field cut out of its bytes in place
// (cutLabel), so that it stays on the fast path and is still forwarded raw;
// a decoded series has it removed from its labels and is marshalled again.
func (wc *writeCtx) dropLabel(name string) error {
	for i := range wc.series {
		s := &wc.series[i]
		if s.ts == nil && wc.cutLabel(s, name) {
			continue
		}
		if s.ts == nil {
			ts, err := wc.decodeSeries(s.raw)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrDecodeProtobuf, err) // The fast path took a series the generated code refuses: a bug.
			}
			s.ts = ts
		}
		if k := slices.IndexFunc(s.ts.Labels, func(l *arguspb.Label) bool { return l.Name == name }); k >= 0 {
			s.ts.Labels = slices.Delete(s.ts.Labels, k, k+1)
			s.raw = nil
		}
	}
	return nil
}

// cutLabel removes label name, if present, from the fast-path series s:
// its field is cut out of s.raw by moving the bytes after it forward (the
// series' bytes alias wc.decoded, and no one else reads this range), and
// the label offsets after it move with them. The shorter bytes are a valid
// encoding of the series without the label, as the generated marshaller
// would write it from the same input (TestCutLabel_LikeGenerated). It
// reports false, changing nothing, if it cannot locate the series' bytes
// in wc.decoded (not reached: the caller then decodes the series).
func (wc *writeCtx) cutLabel(s *seriesRef, name string) bool {
	labels := wc.labels[s.lo:s.hi]
	j := slices.IndexFunc(labels, func(l labelRef) bool { return string(wc.decoded[l.nameOff:l.nameEnd]) == name })
	if j < 0 {
		return true
	}
	// The series' offset in wc.decoded: s.raw is a slice of it that runs
	// to the end of its array.
	base := cap(wc.decoded) - cap(s.raw)
	if len(s.raw) == 0 || base < 0 || base >= len(wc.decoded) || &wc.decoded[base] != &s.raw[0] {
		return false
	}
	start, end, ok := findLabelField(s.raw, labels[j].nameOff-uint32(base))
	if !ok {
		return false
	}
	n := uint32(end - start)
	copy(s.raw[start:], s.raw[end:])
	s.raw = s.raw[:len(s.raw)-int(n)]
	s.labelsEnd -= int32(n)
	for k := j + 1; k < len(labels); k++ {
		l := &labels[k]
		l.nameOff, l.nameEnd, l.valueOff, l.valueEnd = l.nameOff-n, l.nameEnd-n, l.valueOff-n, l.valueEnd-n
	}
	copy(labels[j:], labels[j+1:])
	s.hi--
	return true
}

// findLabelField returns where, in the series encoding b, the label field
// whose name starts at offset nameOff begins and ends (tag included).
func findLabelField(b []byte, nameOff uint32) (start, end int, ok bool) {
	for i := 0; i < len(b); {
		fs, fe, ok := fieldAt(b, i+1)
		if !ok {
			return 0, 0, false
		}
		if b[i] == tagLabels && uint32(fs) < nameOff && nameOff < uint32(fe) {
			return i, fe, true
		}
		i = fe
	}
	return 0, 0, false
}
