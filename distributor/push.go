package distributor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// validate checks every series of wc.series, records the rejected ones
// (counted by countInvalid once the answer is final) and compacts wc.series
// to the series to push. It returns the number of samples to push.
// Invalid exemplars and metadata entries are dropped and reported, the
// valid ones kept (see exmeta.go).
//
// A series the fast path read (see scan.go) and seriesValidator.valid passes
// is pushed as it came, its shard token computed in the same pass over its
// labels (the tenant's: tenantID must be shard's). Any other is decoded (if
// the fast path did not) and checked, and fixed where it can be, by
// seriesValidator.validate.
//
// When the pushes go over streams with series refs, a fast-path series the
// refs' dictionary knows, checked under the same label limits, skips
// valid's label checks and takes its token from there; only its samples
// are checked (see streamrefs.go, "Known series skip label validation").
func (d *Distributor) validate(wc *writeCtx, tenantID string, tm *tenantMetrics, lim *limits.Limits) (toPush int, err error) {
	v := newSeriesValidator(d.now(), lim)
	v.symbolsASCII = wc.rw2.ascii
	dict, lk := d.dictFor(lim)
	if dict != nil {
		dict.knownSeries(wc, tenantID, lk)
	}
	received := 0
	all, kept := wc.series, 0
	wc.key = append(append(wc.key[:0], tenantID...), 0xff)
	prefix := len(wc.key)
	for i := range all {
		s := &all[i]
		if s.ts == nil {
			var ok bool
			if s.ref != 0 && s.maxT <= v.maxT {
				// Known: labels checked and token computed before (s.token).
			} else if wc.key, ok = v.valid(wc.lbuf, wc.labels, s, wc.key[:prefix]); ok {
				s.token = shardToken(wc.key)
			} else if s.ref = 0; s.symbolised { // Refused (a known series with a late sample too): no ref.
				if err = wc.unsymbolise(s); err != nil {
					return 0, fmt.Errorf("%w: %w", ErrDecodeProtobuf, err) // The translation is ours: a bug.
				}
			} else if s.ts, err = wc.decodeSeries(s.raw); err != nil {
				return 0, fmt.Errorf("%w: %w", ErrDecodeProtobuf, err) // The fast path took a series the generated code refuses: a bug.
			}
		}
		if ts := s.ts; ts != nil {
			received += len(ts.Samples) + len(ts.Histograms)
			wc.exemplars += len(ts.Exemplars)
			if !wc.validateDecoded(v, s) {
				continue
			}
		} else {
			received += int(s.samples)
		}
		if s.samples == 0 && (s.ts == nil || len(s.ts.Exemplars) == 0) {
			continue // Valid in remote-write 1.0, but nothing to store.
		}
		toPush += int(s.samples)
		all[kept] = all[i]
		kept++
	}
	clear(all[kept:])
	wc.series = all[:kept]
	if dict != nil {
		dict.rememberSeries(wc, tenantID, lk)
	}
	tm.receivedSamples.Add(float64(received))
	wc.validateMetadata(tenantID)
	d.countExemplars(wc)
	return toPush, nil
}

// dictFor returns the stream refs' dictionary validate looks series up in,
// and lim's label limits, or nil when the pushes go by ref to no ingester
// (no dictionary: the all-in-one's in-process pushes; or no stream took
// refs yet): those pushes validate every series, as a lookup would be
// spent for nothing.
func (d *Distributor) dictFor(lim *limits.Limits) (*seriesDict, labelLimits) {
	if d.dict == nil || !d.dict.used.Load() {
		return nil, labelLimits{}
	}
	lk, ok := labelLimitsOf(lim)
	if !ok {
		return nil, labelLimits{}
	}
	return d.dict, lk
}

// validateDecoded validates the decoded series s.ts, fixing it in place (see
// seriesValidator.validate), and records its rejection. It drops s.raw if
// the series changed, so that it is marshalled again, and reports whether
// any of it is left to push.
func (wc *writeCtx) validateDecoded(v seriesValidator, s *seriesRef) bool {
	ts := s.ts
	nl, ns, nh := len(ts.Labels), len(ts.Samples), len(ts.Histograms)
	if !labelsSorted(ts.Labels) {
		s.raw = nil // Sent with its labels sorted: re-encoded.
	}
	serr := v.validate(ts)
	if len(ts.Labels) != nl || len(ts.Samples) != ns || len(ts.Histograms) != nh {
		s.raw = nil // Empty labels, future samples or invalid histograms removed: re-encoded.
	}
	s.samples = int32(len(ts.Samples) + len(ts.Histograms))
	if len(ts.Exemplars) > 0 {
		if serr != nil && !serr.partial {
			wc.exInvalid[exReasonSeriesRejected] += int64(len(ts.Exemplars)) // Reported with the series.
			ts.Exemplars = nil
		} else if wc.validateExemplars(ts) {
			s.raw = nil // Invalid exemplars removed: re-encoded.
		}
	}
	if serr != nil {
		wc.invalid[serr.reason] += int64(serr.samples)
		wc.rej.add(ts.Labels, serr.reason, serr.detail, int64(serr.samples))
		return serr.partial
	}
	return true
}

// shard places every series of wc.series on its replicas, with the one
// sharding function ring.ShardToken (computed by shardToken over the series'
// labels in place), and groups them into one batch per
// ingester. Every series needs at least a write quorum (ReplicationFactor/2+1)
// of replicas; if the ring has fewer healthy ones for any series, the whole
// push fails with ErrNoIngester (a 503: the sender retries) naming how many
// series could not be placed, and nothing is pushed.
func (d *Distributor) shard(wc *writeCtx, tenantID string) error {
	wc.rf = max(1, d.ring.ReplicationFactor())
	wc.quorum = wc.rf/2 + 1
	unplaced := 0
	n := len(wc.series) + len(wc.meta)
	if cap(wc.votes) < n {
		wc.votes = make([]seriesVotes, n)
	}
	wc.votes, wc.undecided = wc.votes[:n], n
	var firstErr error
	var firstSeries string
	var picker tokenPicker = d.ring
	if ps, ok := d.ring.(pickerSource); ok {
		picker = ps.Picker() // One view of the ring and one clock read for the push.
	}
	wc.key = append(append(wc.key[:0], tenantID...), 0xff)
	prefix := len(wc.key)
	for i := range wc.series {
		token := wc.series[i].token // computed by validate for the fast path's series
		if wc.series[i].ts != nil {
			wc.key = wc.appendLabels(wc.key[:prefix], i)
			token = shardToken(wc.key)
		}
		replicas, err := picker.Get(token, wc.replicas[:0])
		wc.replicas = replicas[:0]
		if err == nil && len(replicas) < wc.quorum {
			err = fmt.Errorf("get token %d: %d healthy replicas %s, need %d", token, len(replicas), instanceAddrs(replicas), wc.quorum)
		}
		if err != nil {
			unplaced++
			if firstErr == nil {
				firstErr, firstSeries = err, formatLabels(wc.labelsOf(i))
			}
			continue
		}
		if unplaced > 0 {
			continue // The push fails: only count the series that cannot be placed.
		}
		wc.startVote(i, len(replicas))
		symbolised := wc.series[i].symbolised
		for _, inst := range replicas {
			b := wc.batchFor(inst.Addr)
			b.series = append(b.series, int32(i))
			b.symbolised = b.symbolised || symbolised
		}
	}
	if unplaced == 0 {
		var metaErr error
		if unplaced, metaErr = wc.placeMetadata(picker); firstErr == nil && metaErr != nil {
			firstErr, firstSeries = metaErr, "metadata entry"
		}
	}
	if unplaced > 0 {
		d.metrics.quorumFailures.Add(float64(unplaced))
		return fmt.Errorf("%w: %d of %d series have fewer healthy replicas than a write quorum (%d of replication factor %d), the first %s: %w",
			ErrNoIngester, unplaced, len(wc.series)+len(wc.meta), wc.quorum, wc.rf, firstSeries, firstErr)
	}
	wc.shareEncodings()
	return nil
}

// pickerSource is a replicaPicker that can fix the ring for a whole push
// (ring.KV): its Picker places series as Get does, at one instant.
type pickerSource interface {
	Picker() ring.Picker
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
// bounded by -distributor.remote-timeout, and returns as soon as every
// series is decided (see seriesVotes.decide): stored by a quorum, or sure
// to be rejected, or one of them sure to miss its quorum because of failed
// pushes (the answer is then a 5xx whatever the rest say). settle turns the
// votes into the answer.
//
// # Stragglers
//
// The pushes still running when it returns (stragglers) go on, each until
// its answer or its deadline: their context is the request's without its
// cancellation, so that the sender hanging up does not cut a replica's
// write short. They read the request's pooled, zero-copy buffers, so the
// writeCtx is reference-counted: each push and the handler hold a reference,
// and the last one released (see release) counts the stragglers' answers in
// argus_distributor_straggler_pushes_total and recycles the buffers. A
// straggler's rejections are not reported: the series it rejected were
// stored by a quorum, or settled without it.
func (d *Distributor) pushBatches(ctx context.Context, tenantID string, wc *writeCtx) {
	ctx = tenant.OutgoingContext(context.WithoutCancel(ctx), tenantID)
	wc.tenant = tenantID // For PushStream, which carries it in each request.
	if len(wc.batches) == 1 {
		d.pushOne(ctx, wc, &wc.batches[0]) // Most pushes with replication factor 1: no goroutine.
		wc.record(0)
		return
	}
	if cap(wc.answers) < len(wc.batches) {
		wc.answers = make(chan int32, len(wc.batches))
	}
	wc.refs.Add(int32(len(wc.batches)))
	d.pushes.Add(len(wc.batches))
	for i := range wc.batches {
		go func() {
			defer d.pushes.Done()
			d.pushOne(ctx, wc, &wc.batches[i])
			wc.answers <- int32(i) // Never blocks: one slot per batch.
			d.release(wc)
		}()
	}
	for wc.undecided > 0 && wc.lost == 0 {
		wc.record(<-wc.answers)
	}
}

// release drops one reference to wc; the last one counts the stragglers and
// recycles wc. The handler releases its reference once the answer is built.
func (d *Distributor) release(wc *writeCtx) {
	if wc.refs.Add(-1) > 0 {
		return
	}
	for drained := false; !drained; {
		select {
		case i := <-wc.answers:
			d.metrics.countStraggler(&wc.batches[i])
		default:
			drained = true
		}
	}
	putWriteCtx(wc)
}

// pushOne pushes b to its ingester and records the answer, or the error, in
// b. A client that can send pre-encoded requests (rawPusher) is sent the raw
// bytes of the series validation left unchanged (see rawbatch.go).
func (d *Distributor) pushOne(ctx context.Context, wc *writeCtx, b *batch) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RemoteTimeout)
	defer cancel()
	c, err := d.clients.Get(b.addr)
	if rp, ok := c.(rawPusher); ok && err == nil {
		b.resp, err = rp.PushRaw(ctx, &rawBatch{wc: wc, b: b})
	} else if err == nil {
		var req *arguspb.WriteRequest
		if req, err = (rawBatch{wc: wc, b: b}).request(); err == nil {
			b.resp, err = c.Push(ctx, req)
		}
	}
	d.metrics.forIngester(b.addr)
	d.metrics.ingesterPushDuration.WithLabelValues(b.addr).Observe(time.Since(start).Seconds())
	if err != nil {
		d.metrics.ingesterPushFailures.WithLabelValues(b.addr).Inc()
		b.resp, b.err = nil, &ingesterError{addr: b.addr, err: err}
	}
}
