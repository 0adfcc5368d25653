package ingester

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// maxRejectedSeries caps the RejectedSeries of a PushResponse.
const maxRejectedSeries = 10

// rejectKind is why a sample was not appended.
type rejectKind uint8

const (
	rejectOutOfOrder rejectKind = iota
	rejectDuplicate
	rejectTooOld
	rejectInvalidLabels
	rejectHistogram
	rejectPerUserLimit
	rejectPerMetricLimit
	numRejectKinds
)

func (k rejectKind) reason() arguspb.RejectReason {
	switch k {
	case rejectOutOfOrder:
		return arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER
	case rejectDuplicate:
		return arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP
	case rejectTooOld:
		return arguspb.RejectReason_REJECT_REASON_TOO_OLD
	case rejectInvalidLabels:
		return arguspb.RejectReason_REJECT_REASON_INVALID_LABELS
	case rejectPerUserLimit:
		return arguspb.RejectReason_REJECT_REASON_PER_USER_SERIES_LIMIT
	case rejectPerMetricLimit:
		return arguspb.RejectReason_REJECT_REASON_PER_METRIC_SERIES_LIMIT
	}
	return arguspb.RejectReason_REJECT_REASON_UNSPECIFIED // Invalid histograms: the distributor refuses them first.
}

// label is the reason label of argus_ingester_samples_rejected_total.
func (k rejectKind) label() string {
	switch k {
	case rejectOutOfOrder:
		return "out_of_order"
	case rejectDuplicate:
		return "duplicate_timestamp"
	case rejectTooOld:
		return "too_old"
	case rejectInvalidLabels:
		return "invalid_labels"
	case rejectPerUserLimit:
		return "per_user_series_limit"
	case rejectPerMetricLimit:
		return "per_metric_series_limit"
	}
	return "invalid_native_histogram"
}

// Push appends the samples of req to the head of the tenant of ctx (opening
// the tenant on its first push) and returns once they are in the WAL.
// Rejected samples are listed in the response; a gRPC error means nothing
// may be assumed appended. It blocks on the tenant's WAL write (and fsync
// when -ingester.wal-sync-period is 0).
//
// Push releases req (grpccodec.ReleaseWriteRequest) when it returns: the
// caller must not read req afterwards. Push keeps nothing that aliases req
// (see "Request memory" in doc.go), and its response and errors are built
// from copies, as gRPC marshals them after Push returns.
func (i *Ingester) Push(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	return i.push(ctx, req, nil)
}

// push is Push with the stream hints of req's series sent by ref (nil, or
// one per series, nil for a series sent whole; refseries.go).
func (i *Ingester) push(ctx context.Context, req *arguspb.WriteRequest, hints []*refHint) (*arguspb.PushResponse, error) {
	defer grpccodec.ReleaseWriteRequest(req)
	i.stateMu.RLock()
	defer i.stateMu.RUnlock()
	if i.state != stateRunning {
		return nil, grpcError(ErrNotReady)
	}
	id, err := tenantOf(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	if err := i.inflight.acquire(); err != nil {
		i.metrics.instanceLimitRefusals.WithLabelValues("max_inflight_push_requests").Inc()
		return nil, grpcError(err)
	}
	defer i.inflight.release()
	// A head closed as idle between its lookup and the append is opened
	// again; twice is plenty, as closing needs the tenant idle.
	for attempt := 0; ; attempt++ {
		h, err := i.getOrOpenTenant(ctx, id)
		if err != nil {
			return nil, grpcError(fmt.Errorf("open tenant %s: %w", id, err))
		}
		h.touch()
		if err := h.failure(); err != nil {
			i.metrics.tenantRefusals.Inc()
			return nil, grpcError(err)
		}
		resp, err := h.push(req, hints)
		if errors.Is(err, errHeadClosed) && attempt < 2 {
			continue
		}
		if errors.Is(err, ErrInstanceLimit) {
			i.metrics.instanceLimitRefusals.WithLabelValues("max_series").Inc()
		}
		return resp, grpcError(err)
	}
}

// push runs the write pipeline of one request: resolve (validate labels,
// find or create series), then appendBatch (order checks, WAL, memory).
func (h *tenantHead) push(req *arguspb.WriteRequest, hints []*refHint) (*arguspb.PushResponse, error) {
	if err := h.appendMetadata(req.GetMetadata()); err != nil {
		return nil, err
	}
	b := getPushBatch()
	defer putPushBatch(b)
	if err := h.resolve(req, hints, b); err != nil {
		return nil, err
	}
	h.resolveExemplars(req, b)
	if err := h.appendBatch(b); err != nil {
		return nil, err
	}
	h.checkPersisted(b) // retry.go
	for k, n := range b.rej.byKind {
		if n > 0 {
			h.metrics.rejected[k].Add(float64(n))
		}
	}
	return &arguspb.PushResponse{RejectedSamples: b.rej.total, Rejected: b.rej.list, DroppedExemplars: b.ex.dropList()}, nil
}

// pushEntry is one series of a push on its way to the head.
type pushEntry struct {
	ts   *arguspb.TimeSeries
	hash uint64
	s    *memSeries
	// first and end delimit the entry's accepted samples in pushBatch.samples.
	first, end int
	// hFirst and hEnd delimit the entry's histograms in pushBatch.hdec;
	// hAccepted is how many of them were accepted (hist_push.go).
	hFirst, hEnd, hAccepted int
	// The series' ordering state before this entry, restored if the WAL
	// write fails.
	prevT                    int64
	prevAccepted, prevLogged bool
	// ooo: some accepted samples are older than the series' newest (ooo.go).
	ooo bool
}

// pushBatch is the scratch state of one push, pooled.
type pushBatch struct {
	entries []pushEntry
	samples []record.RefSample
	series  []record.RefSeries
	walBuf  []byte
	recs    [][]byte
	sb      labels.ScratchBuilder
	lset    labels.Labels // overwritten by sb for each new series (setLabels)
	hasher  labelHasher
	rej     rejections
	// limits are the tenant's series limits for this push, computed by
	// pushLimits when it first creates a series (limitsSet).
	limits    seriesLimits
	limitsSet bool
	ex        exemplarBatch // exemplars.go
	// hdec are the decoded histograms of the push, hAccepted how many of
	// them were accepted; hRank and hOrdered order its WAL records
	// (hist_push.go).
	hdec      []histSample
	hAccepted int
	hRank     map[*memSeries]uint8
	hOrdered  bool
	// pending indexes the accepted samples once tracking is set (ooo.go).
	pending  map[pendingKey]uint64
	tracking bool
	oooBuf   []oooSample
	// dbChecks are the refused samples that may be persisted, deferred the
	// series whose refusals wait for them (retry.go).
	dbChecks []dbCheck
	deferred []deferredSeries
}

var pushBatchPool = sync.Pool{New: func() any { return &pushBatch{sb: labels.NewScratchBuilder(16)} }}

// setLabels overwrites b.lset with the labels of ts.
func (b *pushBatch) setLabels(ts *arguspb.TimeSeries) {
	b.sb.Reset()
	for _, l := range ts.GetLabels() {
		b.sb.Add(l.GetName(), l.GetValue())
	}
	b.sb.Overwrite(&b.lset)
}

// getPushBatch returns an empty pushBatch.
func getPushBatch() *pushBatch {
	return pushBatchPool.Get().(*pushBatch)
}

// putPushBatch resets b and returns it to the pool; b is unusable after.
func putPushBatch(b *pushBatch) {
	clear(b.entries) // Drop the references to the request and the series.
	clear(b.series)
	b.entries, b.samples, b.series = b.entries[:0], b.samples[:0], b.series[:0]
	b.walBuf, b.recs = b.walBuf[:0], b.recs[:0]
	b.rej = rejections{}
	b.limits, b.limitsSet = seriesLimits{}, false
	b.ex.reset()
	b.resetHistograms()
	clear(b.pending)
	b.tracking, b.oooBuf = false, b.oooBuf[:0]
	clear(b.dbChecks)
	clear(b.deferred)
	b.dbChecks, b.deferred = b.dbChecks[:0], b.deferred[:0]
	pushBatchPool.Put(b)
}

// resolve validates every series of req and finds or creates its memSeries.
// Invalid series, and new series over a series limit, are rejected whole;
// an error (reading the chunk store) fails the push. A series sent by ref
// on a stream whose hint is current skips the lookup (refseries.go).
func (h *tenantHead) resolve(req *arguspb.WriteRequest, hints []*refHint, b *pushBatch) error {
	var mv minValidOnce // Looked up for the first new series only.
	for k, ts := range req.GetTimeseries() {
		hFirst := len(b.hdec)
		if len(ts.GetHistograms()) > 0 {
			b.decodeHistograms(ts) // hist_push.go
		}
		nHist := int64(len(b.hdec) - hFirst)
		nSamples := int64(len(ts.GetSamples())) + nHist
		if nSamples == 0 {
			continue
		}
		var hint *refHint
		if hints != nil {
			hint = hints[k]
		}
		if hint != nil {
			if s, hash := hint.series(h); s != nil {
				b.entries = append(b.entries, pushEntry{ts: ts, hash: hash, s: s, hFirst: hFirst, hEnd: len(b.hdec)})
				continue
			}
		}
		gen := h.gen.Load() // Before the lookup: a GC pass after it leaves the hint stale.
		b.hasher.reset()
		for _, l := range ts.GetLabels() {
			b.hasher.add(l.GetName(), l.GetValue())
		}
		hash := b.hasher.sum()
		// A label set equal to one in the head is valid: validate only new
		// ones, and build a label set only for them.
		s := h.series.getByProto(hash, ts.GetLabels())
		if s == nil {
			var err error
			if s, err = h.resolveNew(ts, hash, hFirst, b, &mv); s == nil {
				if err != nil {
					return err
				}
				continue
			}
		}
		if hint != nil {
			hint.remember(gen, s, hash)
		}
		b.entries = append(b.entries, pushEntry{ts: ts, hash: hash, s: s, hFirst: hFirst, hEnd: len(b.hdec)})
	}
	return nil
}

// minValidOnce is the head's minValid, looked up once per push.
type minValidOnce struct {
	v   int64
	set bool
}

func (m *minValidOnce) get(h *tenantHead) int64 {
	if !m.set {
		m.v, m.set = h.minValid(h.nowMs()), true
	}
	return m.v
}

// resolveNew validates the series ts, which is not in the head, and creates
// it. It returns nil and records the rejection if the series is refused,
// or nil and an error if the push fails.
func (h *tenantHead) resolveNew(ts *arguspb.TimeSeries, hash uint64, hFirst int, b *pushBatch, mv *minValidOnce) (*memSeries, error) {
	nHist := int64(len(b.hdec) - hFirst)
	nSamples := int64(len(ts.GetSamples())) + nHist
	b.setLabels(ts)
	if err := validateLabels(ts.GetLabels()); err != nil {
		b.rej.addSeries(ts, rejectInvalidLabels, nSamples, nHist, err)
		return nil, nil
	}
	// A series is created only for a sample it can take: a refused one must
	// not hold a slot of the series limits until GC.
	minValid := mv.get(h)
	newest := max(newestSample(ts), b.newestHistogram(hFirst))
	if newest < minValid {
		if newest <= h.removedMaxT.Load() { // A retry of a removed series' persisted samples? (retry.go)
			b.deferSeries(ts, hFirst, rejectTooOld, minValid)
		} else {
			b.rej.addSeries(ts, rejectTooOld, nSamples, nHist,
				sampleError{reason: rejectTooOld.reason(), t: newest, ref: minValid})
		}
		return nil, nil
	}
	s, err := h.getOrCreate(hash, b.lset, h.pushLimits(b), newest)
	if err == nil {
		return s, nil
	}
	if le, ok := errors.AsType[seriesLimitError](err); ok {
		b.rej.addSeries(ts, le.kind, nSamples, nHist, le) // Formats le before b.lset is reused.
		return nil, nil
	}
	if se, ok := errors.AsType[sampleError](err); ok {
		b.deferSeries(ts, hFirst, rejectOutOfOrder, se.ref) // Retried samples may be persisted (retry.go).
		return nil, nil
	}
	return nil, err
}

// newestSample returns the newest timestamp of the float samples of ts, or
// MinInt64.
func newestSample(ts *arguspb.TimeSeries) int64 {
	newest := int64(math.MinInt64)
	for _, smp := range ts.GetSamples() {
		newest = max(newest, smp.GetTimestampMs())
	}
	return newest
}

// pushLimits returns the tenant's series limits for the push of b, looking
// them up on its first call only: a push that creates no series never looks
// them up. It returns nil when the ingester has no limits.
func (h *tenantHead) pushLimits(b *pushBatch) *seriesLimits {
	if !h.limiter.enabled() {
		return nil
	}
	if !b.limitsSet {
		b.limits, b.limitsSet = h.limiter.local(h.id), true
	}
	return &b.limits
}

// validateLabels re-checks what the distributor validated: a non-empty label
// set, sorted by name without duplicates, with non-empty valid UTF-8 names
// and values (an empty value would mean "no such label" to matchers).
func validateLabels(ls []*arguspb.Label) error {
	if len(ls) == 0 {
		return fmt.Errorf("%w: no labels", ErrInvalidLabels)
	}
	// Sorted: the reserved label, if present, sorts among the first.
	for _, l := range ls {
		if l.GetName() == tenantLabel {
			return fmt.Errorf("%w: label name %q is reserved", ErrInvalidLabels, tenantLabel)
		}
		if l.GetName() > tenantLabel {
			break
		}
	}
	prev := ""
	for n, l := range ls {
		name, value := l.GetName(), l.GetValue()
		switch {
		case name == "":
			return fmt.Errorf("%w: empty label name", ErrInvalidLabels)
		case value == "":
			return fmt.Errorf("%w: empty value for label %q", ErrInvalidLabels, name)
		case n > 0 && name <= prev:
			return fmt.Errorf("%w: label %q not sorted or duplicated after %q", ErrInvalidLabels, name, prev)
		case !utf8.ValidString(name) || !utf8.ValidString(value):
			return fmt.Errorf("%w: label %q is not valid UTF-8", ErrInvalidLabels, name)
		}
		prev = name
	}
	return nil
}

// appendBatch checks every sample of b against its series, writes the
// accepted ones to the WAL with one Log call (the series records of new
// series first), and then appends them to the series' chunks; with
// -ingester.wal-sync-period=0 it returns once an fsync covers them.
//
// # Why one appendMu per tenant
//
// Replay appends a WAL sample only if it is newer than what its series
// already holds, so the WAL must hold each series' samples in the order the
// head accepted them. Holding appendMu from the ordering check through the
// WAL write to the in-memory append makes the three one step: two pushes to
// the same series cannot check in one order and log in the other, and a
// sample rejected as out of order in memory is never in the WAL. The fsync
// is not part of that step: it runs after appendMu is released, so that the
// pushes of one tenant share fsyncs (the WAL's own mu serializes the calls
// on tsdb/wlog, which WL.Sync needs).
func (h *tenantHead) appendBatch(b *pushBatch) error {
	seq, err := h.appendBatchLocked(b)
	if err != nil || seq == 0 || h.cfg.WALSyncPeriod != 0 {
		return err
	}
	// Outside appendMu and cutMu: the tenant's next push appends while this
	// one waits, and one fsync acknowledges both (sharedWAL.syncTo). The
	// samples are visible to queries before they are durable, as in
	// Prometheus; they are acknowledged only after.
	return h.wal.syncTo(seq)
}

// appendBatchLocked is appendBatch up to the in-memory append, under
// appendMu; it returns the sequence number of the WAL write to fsync, or 0
// when nothing was written.
func (h *tenantHead) appendBatchLocked(b *pushBatch) (seq uint64, err error) {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if h.closed.Load() {
		return 0, errHeadClosed
	}
	if err := h.wal.failed(); err != nil {
		return 0, err
	}
	lim := h.bounds(h.nowMs())
	for n := range b.entries {
		e := &b.entries[n]
		if e.s.deleted {
			// Removed by GC since resolve: recreate it, whatever the limits
			// (it was within them at resolve, and is again in the head),
			// from the request (its symbols may be another series' now).
			b.setLabels(e.ts)
			s, err := h.getOrCreate(e.hash, b.lset, nil, math.MaxInt64)
			if err != nil {
				h.rollbackLocked(b, n)
				return 0, err
			}
			e.s = s
		}
		h.checkEntryLocked(e, &lim, b)
	}
	h.checkExemplarsLocked(b)
	if len(b.samples) == 0 && len(b.ex.refs) == 0 && b.hAccepted == 0 {
		return 0, nil
	}
	// From the WAL write to the in-memory append: a truncation cuts the
	// segment only between pushes (see sharedWAL).
	h.wal.cutMu.RLock()
	defer h.wal.cutMu.RUnlock()
	return h.logLocked(b)
}

// checkEntryLocked checks the samples of e in order, moving the series'
// ordering state past each accepted one and adding it to b.samples. A
// sample not newer than the series' newest is checkOlderLocked's.
func (h *tenantHead) checkEntryLocked(e *pushEntry, lim *pushBounds, b *pushBatch) {
	s := e.s
	e.prevT, e.prevAccepted, e.prevLogged = s.lastT, s.lastAccepted, s.logged
	e.first = len(b.samples)
	var sr seriesRejects
	checksFrom := len(b.dbChecks)
	for _, smp := range e.ts.GetSamples() {
		t, v := smp.GetTimestampMs(), smp.GetValue()
		switch {
		case t <= s.lastT:
			h.checkOlderLocked(e, t, v, lim, b, &sr)
		case t < lim.minValid:
			// A series recreated after GC may have it persisted (retry.go).
			b.refuse(&sr, t <= lim.removedMaxT && s.mayBePersisted(t, lim), anyMergeSample{t: t, v: v}, rejectTooOld,
				sampleError{reason: rejectTooOld.reason(), t: t, ref: lim.minValid})
		default:
			s.lastT, s.lastAccepted = t, true
			b.accept(s.ref, t, v)
		}
	}
	e.end = len(b.samples)
	e.hAccepted = h.checkHistogramsLocked(e, lim, b, &sr)
	if (e.end > e.first || e.hAccepted > 0) && !s.logged {
		// Not deleted, under appendMu: its symbols are its own.
		b.series = append(b.series, record.RefSeries{Ref: s.ref, Labels: h.series.syms.decode(s.syms)})
		s.logged = true
	}
	b.flushRejects(&sr, e.ts, checksFrom)
}

// rollbackLocked restores the ordering state of the series of the first n
// entries of b, in reverse order, so that a series that appears twice in a
// push ends as it was before.
func (h *tenantHead) rollbackLocked(b *pushBatch, n int) {
	for k := n - 1; k >= 0; k-- {
		e := &b.entries[k]
		e.s.lastT, e.s.lastAccepted, e.s.logged = e.prevT, e.prevAccepted, e.prevLogged
	}
}

// logLocked writes the series and samples records of b to the WAL with one
// Log call, which hands them to the kernel before it returns, then appends
// them in memory, and returns the WAL write's sequence number for the fsync
// (appendBatch). On a write failure nothing is appended, and every later
// push is refused (see sharedWAL.failLocked). The caller holds appendMu and
// the WAL's cutMu for reading.
func (h *tenantHead) logLocked(b *pushBatch) (uint64, error) {
	var enc record.Encoder
	b.recs = b.recs[:0]
	buf := b.walBuf[:0]
	if len(b.series) > 0 {
		for k := range b.series {
			b.series[k].Labels = withTenant(b.series[k].Labels, h.id)
		}
		buf = enc.Series(b.series, buf)
		b.recs = append(b.recs, buf)
	}
	if len(b.samples) > 0 && !b.hOrdered { // hOrdered: appendHistogramRecords writes them.
		start := len(buf)
		buf = enc.Samples(b.samples, buf)
		b.recs = append(b.recs, buf[start:])
	}
	buf = appendExemplarRecord(&enc, b, buf)
	b.walBuf = buf
	b.appendHistogramRecords()
	seq, err := h.wal.log(b.recs)
	if err != nil {
		h.rollbackLocked(b, len(b.entries))
		return 0, err
	}
	h.applyLocked(b)
	return seq, nil
}

// applyLocked appends the accepted samples of b to their series' chunks and
// queues the series whose chunk was cut for persistence.
func (h *tenantHead) applyLocked(b *pushBatch) {
	nowMs := h.nowMs()
	oldest := b.oldestAccepted()
	h.walks.noteAppends(oldest) // Before and after: see noteAppends.
	defer h.walks.noteAppends(oldest)
	var cutSeries []*memSeries
	for n := range b.entries {
		e := &b.entries[n]
		if e.end == e.first && e.hAccepted == 0 {
			continue
		}
		s := e.s
		cut := false
		s.mu.Lock()
		switch {
		case e.ooo && s.hist != nil:
			cut = h.applyMergedLocked(b, e, nowMs) // hist_ooo.go
		case e.ooo:
			cut = s.appendMixedLocked(b.samples[e.first:e.end], nowMs, &b.oooBuf)
		default:
			for _, smp := range b.samples[e.first:e.end] {
				if s.appendLocked(smp.T, smp.V, nowMs) {
					cut = true
				}
			}
		}
		if e.hAccepted > 0 && !(e.ooo && s.hist != nil) && h.applyHistogramsLocked(b, e, nowMs) {
			cut = true
		}
		if cut && !s.queuedLocked() {
			s.setQueuedLocked(true)
			cutSeries = append(cutSeries, s)
		}
		s.mu.Unlock()
	}
	h.enqueue(cutSeries...)
	h.applyExemplarsLocked(b)
	maxT := h.maxT.Load()
	for _, smp := range b.samples {
		maxT = max(maxT, smp.T)
	}
	h.maxT.Store(maxT)
	h.appended.Add(uint64(len(b.samples) + b.hAccepted))
	h.rate.add(nowMs, int64(len(b.samples)+b.hAccepted))
}

// oldestAccepted returns the oldest time of the samples and histograms b
// accepted, noTime if none.
func (b *pushBatch) oldestAccepted() int64 {
	t := noTime
	for _, smp := range b.samples {
		t = min(t, smp.T)
	}
	for k := range b.hdec {
		if b.hdec[k].ok {
			t = min(t, b.hdec[k].t)
		}
	}
	return t
}

// seriesRejects counts the rejected samples of one series by kind, and the
// native histograms among them, keeping the first error of each kind for the
// response message.
type seriesRejects struct {
	count [numRejectKinds]int64
	hist  [numRejectKinds]int64
	first [numRejectKinds]sampleError // by value: no allocation per rejected sample
}

func (sr *seriesRejects) add(k rejectKind, err sampleError) {
	if sr.count[k] == 0 {
		sr.first[k] = err
	}
	sr.count[k]++
}

// addHist is add for a native histogram sample.
func (sr *seriesRejects) addHist(k rejectKind, err sampleError) {
	sr.add(k, err)
	sr.hist[k]++
}

func (sr *seriesRejects) flush(r *rejections, ts *arguspb.TimeSeries) {
	for k, n := range sr.count {
		if n > 0 {
			r.addSeries(ts, rejectKind(k), n, sr.hist[k], sr.first[k])
		}
	}
}

// rejections are the rejected samples of one push.
type rejections struct {
	total  int64
	byKind [numRejectKinds]int64
	list   []*arguspb.RejectedSeries // at most maxRejectedSeries
}

// addSeries records n samples of ts, nHist of them native histograms,
// rejected for kind k because of err. The listed labels are copied: the
// request's memory may be reused.
func (r *rejections) addSeries(ts *arguspb.TimeSeries, k rejectKind, n, nHist int64, err error) {
	r.total += n
	r.byKind[k] += n
	if len(r.list) >= maxRejectedSeries {
		return
	}
	ls := make([]*arguspb.Label, 0, len(ts.GetLabels()))
	for _, l := range ts.GetLabels() {
		ls = append(ls, &arguspb.Label{Name: strings.Clone(l.GetName()), Value: strings.Clone(l.GetValue())})
	}
	r.list = append(r.list, &arguspb.RejectedSeries{
		Labels:             ls,
		Reason:             k.reason(),
		Message:            err.Error(),
		RejectedSamples:    n,
		RejectedHistograms: nHist,
	})
}
