package distributor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/ring"
)

// validate checks every series of wc.req (see seriesValidator.validate),
// records the rejected ones (counted by countInvalid once the answer is
// final) and compacts wc.req.Timeseries to the series to push. It returns the number of samples to push. Exemplars and metadata are
// counted and dropped: Argus does not store them yet.
func (d *Distributor) validate(wc *writeCtx, tm *tenantMetrics, lim *limits.Limits) (toPush int) {
	v := newSeriesValidator(d.now(), lim)
	received, exemplars := 0, 0
	all, kept := wc.req.Timeseries, 0
	for i, ts := range all {
		received += len(ts.Samples) + len(ts.Histograms)
		exemplars += len(ts.Exemplars)
		ts.Exemplars = nil
		if serr := v.validate(ts); serr != nil {
			wc.invalid[serr.reason] += int64(serr.samples)
			wc.rej.add(ts.Labels, serr.reason, serr.detail, int64(serr.samples))
			if !serr.partial {
				continue
			}
		}
		if len(ts.Samples) == 0 {
			continue // Valid in remote-write 1.0, but nothing to store.
		}
		toPush += len(ts.Samples)
		// A swap, not a copy: every series object stays in the slice exactly
		// once, for resetDecoded to reuse.
		all[kept], all[i] = all[i], all[kept]
		kept++
	}
	wc.req.Timeseries = all[:kept]
	tm.receivedSamples.Add(float64(received))
	d.metrics.droppedExemplars.Add(float64(exemplars))
	d.metrics.droppedMetadata.Add(float64(len(wc.req.Metadata)))
	return toPush
}

// shard places every series of wc.req on its replicas, with the one sharding
// function ring.ShardTokenProto, and groups them into one batch per
// ingester. Every series needs at least a write quorum (ReplicationFactor/2+1)
// of replicas; if the ring has fewer healthy ones for any series, the whole
// push fails with ErrNoIngester (a 503: the sender retries) naming how many
// series could not be placed, and nothing is pushed.
func (d *Distributor) shard(wc *writeCtx, tenantID string) error {
	wc.rf = max(1, d.ring.ReplicationFactor())
	wc.quorum = wc.rf/2 + 1
	unplaced := 0
	var firstErr error
	var firstSeries string
	for i, ts := range wc.req.Timeseries {
		token := ring.ShardTokenProto(tenantID, ts.Labels)
		replicas, err := d.ring.Get(token, wc.replicas[:0])
		wc.replicas = replicas[:0]
		if err == nil && len(replicas) < wc.quorum {
			err = fmt.Errorf("get token %d: %d healthy replicas %s, need %d", token, len(replicas), instanceAddrs(replicas), wc.quorum)
		}
		if err != nil {
			unplaced++
			if firstErr == nil {
				firstErr, firstSeries = err, formatLabels(ts.Labels)
			}
			continue
		}
		if unplaced > 0 {
			continue // The push fails: only count the series that cannot be placed.
		}
		for _, inst := range replicas {
			b := wc.batchFor(inst.Addr)
			b.req.Timeseries = append(b.req.Timeseries, ts)
			b.series = append(b.series, int32(i))
		}
	}
	if unplaced > 0 {
		d.metrics.quorumFailures.Add(float64(unplaced))
		return fmt.Errorf("%w: %d of %d series have fewer healthy replicas than a write quorum (%d of replication factor %d), the first %s: %w",
			ErrNoIngester, unplaced, len(wc.req.Timeseries), wc.quorum, wc.rf, firstSeries, firstErr)
	}
	return nil
}

// instanceAddrs renders the addresses of replicas: [a:9095 b:9095].
func instanceAddrs(replicas []ring.Instance) string {
	addrs := make([]string, len(replicas))
	for i, r := range replicas {
		addrs[i] = r.Addr
	}
	return "[" + strings.Join(addrs, " ") + "]"
}

// pushBatches pushes every batch of wc to its ingester in parallel, each
// bounded by -distributor.remote-timeout, and records each answer or error
// in its batch. settle then decides, series by series, whether a quorum of
// replicas stored it.
//
// # Why it waits for every ingester
//
// pushBatches returns only once every push has returned, even when each
// series already has a quorum of acknowledgements: the batches alias the
// request's pooled, zero-copy buffers (see writeCtx), which are released
// when the handler returns, so no push may still be reading them then.
// Returning at quorum would need the buffers released by the last push to
// finish and a context that outlives the request, and it would answer before
// the slow replica's rejections are known, so that a series that replica
// rejects could not be counted once. The cost is that a push takes as long
// as its slowest replica, at most -distributor.remote-timeout; an ingester
// that hangs leaves the ring's healthy set after the heartbeat timeout.
func (d *Distributor) pushBatches(ctx context.Context, tenantID string, wc *writeCtx) {
	ctx = tenant.OutgoingContext(ctx, tenantID)
	if len(wc.batches) == 1 {
		d.pushOne(ctx, &wc.batches[0]) // Most pushes with replication factor 1: no goroutine.
		return
	}
	var wg sync.WaitGroup
	for i := range wc.batches {
		b := &wc.batches[i]
		wg.Go(func() { d.pushOne(ctx, b) })
	}
	wg.Wait()
}

// pushOne pushes b to its ingester and records the answer, or the error, in b.
func (d *Distributor) pushOne(ctx context.Context, b *batch) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RemoteTimeout)
	defer cancel()
	c, err := d.clients.Get(b.addr)
	if err == nil {
		b.resp, err = c.Push(ctx, b.req)
	}
	d.metrics.ingesterPushDuration.WithLabelValues(b.addr).Observe(time.Since(start).Seconds())
	if err != nil {
		d.metrics.ingesterPushFailures.WithLabelValues(b.addr).Inc()
		b.resp, b.err = nil, &ingesterError{addr: b.addr, err: err}
	}
}
