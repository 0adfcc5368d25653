package distributor

import (
	"context"
	"time"

	"github.com/argus-tsdb/argus/ring"
)

// The lifecycle of the distributor's per-tenant and per-ingester state: what
// the pushes create (a tenant's counters and rate bucket; an ingester's
// latency and failure series and warning slot) is forgotten once the tenant
// has been idle for -distributor.idle-tenant-timeout, or once the ingester
// has left the ring, so that tenant churn and rolled ingesters do not grow
// the process. The distributor's Running loop sweeps every sweepInterval.

// instancesLister lists the instances of the ring, healthy or not (an
// instance that is only unhealthy may come back); *ring.KV and *ring.Static
// satisfy it. A ring without it keeps its ingesters' series.
type instancesLister interface {
	Instances() []ring.Instance
}

// sweepInterval is how often the idle state is swept: a quarter of the idle
// timeout, at most a minute.
func (d *Distributor) sweepInterval() time.Duration {
	return min(d.cfg.IdleTenantTimeout/4, time.Minute)
}

// Starting does nothing: the distributor has no state to load.
func (d *Distributor) Starting(context.Context) error { return nil }

// Running sweeps idle tenants and departed ingesters until ctx ends.
func (d *Distributor) Running(ctx context.Context) error {
	t := time.NewTicker(d.sweepInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.sweep()
		}
	}
}

// Stopping waits for the ingester pushes still running (stragglers
// included), at most until ctx ends, so that the client connections are not
// closed under them.
func (d *Distributor) Stopping(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.WaitPushes(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// sweep forgets the tenants idle for longer than the idle timeout and the
// ingesters no longer in the ring. It returns how many of each it forgot.
func (d *Distributor) sweep() (tenants, ingesters int) {
	now := d.now()
	cutoff := now.Add(-d.cfg.IdleTenantTimeout).UnixNano()
	d.metrics.tenants.Range(func(k, v any) bool {
		id, tm := k.(string), v.(*tenantMetrics)
		if tm.lastSeen.Load() >= cutoff || !d.rates.idle(id, now, d.limits.For(id)) {
			return true
		}
		d.metrics.tenants.Delete(id)
		d.metrics.deleteTenant(id)
		d.rates.buckets.Delete(id)
		d.forgetHATenant(id)
		tenants++
		return true
	})
	if l, ok := d.ring.(instancesLister); ok {
		live := map[string]bool{}
		for _, inst := range l.Instances() {
			live[inst.Addr] = true
		}
		for _, addr := range d.metrics.ingesters() {
			if !live[addr] {
				d.metrics.deleteIngester(addr)
				d.warns.forget(addr)
				ingesters++
			}
		}
	}
	return tenants, ingesters
}
