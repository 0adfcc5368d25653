package distributor

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/ring"
)

// validate checks every series of wc.req (see seriesValidator.validate),
// records the rejected ones and compacts wc.req.Timeseries to the series to
// push. It returns the number of samples to push. Exemplars and metadata are
// counted and dropped: Argus does not store them yet.
func (d *Distributor) validate(wc *writeCtx, tm *tenantMetrics) (toPush int) {
	v := newSeriesValidator(d.now(), d.cfg.CreationGracePeriod)
	received, exemplars := 0, 0
	all, kept := wc.req.Timeseries, 0
	for i, ts := range all {
		received += len(ts.Samples) + len(ts.Histograms)
		exemplars += len(ts.Exemplars)
		ts.Exemplars = nil
		if serr := v.validate(ts); serr != nil {
			tm.discarded[serr.reason].Add(float64(serr.samples))
			wc.rej.add(ts.Labels, serr.reason.text(), serr.detail, int64(serr.samples))
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

// shard places every series of wc.req on its ingesters, with the one
// sharding function ring.ShardTokenProto, and groups them into one batch per
// ingester. A series goes to every instance the ring returns for it.
func (d *Distributor) shard(wc *writeCtx, tenantID string) error {
	for _, ts := range wc.req.Timeseries {
		token := ring.ShardTokenProto(tenantID, ts.Labels)
		replicas, err := d.ring.Get(token, wc.replicas[:0])
		wc.replicas = replicas[:0]
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoIngester, err)
		}
		if len(replicas) == 0 {
			return fmt.Errorf("%w: the ring returned no instance for token %d", ErrNoIngester, token)
		}
		for _, inst := range replicas {
			b := wc.batchFor(inst.Addr)
			b.req.Timeseries = append(b.req.Timeseries, ts)
		}
	}
	return nil
}

// pushBatches pushes every batch of wc to its ingester in parallel, each
// bounded by -distributor.remote-timeout, and waits for all of them. It
// returns the failures of all ingesters, joined, or nil.
//
// Every batch must succeed: there is no replication quorum yet, and a
// sender must never be told 2xx unless every sample it sent and Argus
// accepted is in an ingester's WAL.
func (d *Distributor) pushBatches(ctx context.Context, tenantID string, wc *writeCtx) error {
	ctx = tenant.OutgoingContext(ctx, tenantID)
	if len(wc.batches) == 1 {
		return d.pushOne(ctx, &wc.batches[0]) // Most pushes: no goroutine.
	}
	var g errgroup.Group
	for i := range wc.batches {
		b := &wc.batches[i]
		g.Go(func() error { return d.pushOne(ctx, b) })
	}
	if g.Wait() == nil {
		return nil
	}
	var errs []error
	for i := range wc.batches {
		if err := wc.batches[i].err; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pushOne pushes b to its ingester and records the answer in b.
func (d *Distributor) pushOne(ctx context.Context, b *batch) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RemoteTimeout)
	defer cancel()
	c, err := d.clients.Get(b.addr)
	if err == nil {
		b.resp, err = c.Push(ctx, b.req)
	}
	if err != nil {
		d.metrics.ingesterPushFailures.WithLabelValues(b.addr).Inc()
		b.err = &ingesterError{addr: b.addr, err: err}
		return b.err
	}
	return nil
}

// collect counts and records the series the ingesters rejected and returns
// the number of samples they rejected. Rejected samples beyond the series an
// ingester lists (it caps the list) are counted under reason unknown.
func (d *Distributor) collect(wc *writeCtx, tm *tenantMetrics) (rejectedSamples int64) {
	for i := range wc.batches {
		resp := wc.batches[i].resp
		if resp == nil {
			continue
		}
		var listed int64
		for _, rs := range resp.Rejected {
			r := reasonFromProto(rs.Reason)
			tm.discarded[r].Add(float64(rs.RejectedSamples))
			detail := rs.Message
			if detail == "" {
				detail = fmt.Sprintf("%d samples rejected", rs.RejectedSamples)
			}
			wc.rej.add(rs.Labels, r.text(), detail, rs.RejectedSamples)
			listed += rs.RejectedSamples
		}
		if rest := resp.RejectedSamples - listed; rest > 0 {
			tm.discarded[reasonUnknown].Add(float64(rest))
			wc.rej.samples += rest
		}
		rejectedSamples += max(resp.RejectedSamples, listed)
	}
	return rejectedSamples
}
