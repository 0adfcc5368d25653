package ingester

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Exemplars: every tenant has one bounded store, Prometheus's
// CircularExemplarStorage (one ring buffer in ingestion order, with an
// index of each series' oldest and newest exemplar), as Mimir keeps one per
// tenant TSDB. It is allocated on the tenant's first exemplar, grows as it
// fills up to this ingester's share of the tenant's
// max_global_exemplars_per_user (the global limit × replication factor /
// healthy ingesters, as for the series limits), and shrinks when that share
// does; a share of 0 disables the tenant's exemplars. A full store overwrites its oldest exemplar, whatever its
// series.
//
// Exemplars are WAL-logged (record.Exemplars, with the ref of their series)
// in the same Log call as the push's samples, after the ordering checks, and
// replayed into the store in WAL order, so that the store after a restart
// holds what it held before (up to the WAL truncation, which keeps only the
// exemplars not older than the oldest in-memory sample, as Prometheus's
// checkpoint does).

// exemplarReject is why an ingester dropped an exemplar: the reason label
// of argus_ingester_exemplars_rejected_total.
type exemplarReject uint8

const (
	exemplarUnknownSeries exemplarReject = iota
	exemplarOutOfOrder
	exemplarInvalid
	exemplarDisabled
	numExemplarRejects
)

var exemplarRejectLabels = [numExemplarRejects]string{
	exemplarUnknownSeries: "unknown_series",
	exemplarOutOfOrder:    "out_of_order",
	exemplarInvalid:       "invalid",
	exemplarDisabled:      "disabled",
}

// discardedExemplarMetrics are the metrics Prometheus's store keeps, per
// store and never registered: with one store per tenant its gauges would
// overwrite each other. argus_ingester_exemplars_* count instead.
var discardedExemplarMetrics = tsdb.NewExemplarMetrics(nil)

// addExemplarMetrics creates the exemplar metrics, every reason at zero.
func (m *metrics) addExemplarMetrics(f promauto.Factory) {
	m.exemplarsAppended = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_exemplars_appended_total",
		Help: "Exemplars added to the tenants' exemplar stores by pushes and WAL replay.",
	})
	rejected := f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_exemplars_rejected_total",
		Help: "Exemplars not stored, by reason: unknown_series (no sample of the series is in the head), out_of_order, invalid, disabled (max_global_exemplars_per_user is 0).",
	}, []string{"reason"})
	for r := range numExemplarRejects {
		m.exemplarsRejected[r] = rejected.WithLabelValues(exemplarRejectLabels[r])
	}
}

// initialExemplarCapacity is the ring a tenant's store starts with: the
// ring is allocated whole (64 bytes a slot, plus each exemplar's labels),
// so it grows, by doubling, up to the tenant's share only as the tenant
// fills it, and a tenant that sends few exemplars costs little however
// large its limit.
const initialExemplarCapacity = 1024

// exemplarStore is the exemplar store of one tenant. Safe for concurrent
// use; adds are serialized by the head's appendMu (or replay).
type exemplarStore struct {
	mu       sync.Mutex // guards the fields; st has its own lock for its contents
	st       *tsdb.CircularExemplarStorage
	limit    int64 // this ingester's share of the tenant's limit
	capacity int64 // the ring's size, at most limit
	held     int64 // exemplars in the ring, at most capacity
	windowMs int64 // the out-of-order window st was last given
}

// sized returns the store with a limit of size exemplars, allocating it or
// shrinking it to the limit (a shrink drops the oldest exemplars), and with
// the tenant's out-of-order window of windowMs; nil while the tenant has
// never had exemplars enabled.
//
// The window is Prometheus's: with one, the store takes an exemplar older
// than its series' newest if it is less than the window older, as
// Prometheus's head gives its exemplar store the TSDB's
// out_of_order_time_window; without one, such an exemplar is dropped.
func (es *exemplarStore) sized(size, windowMs int64) *tsdb.CircularExemplarStorage {
	es.mu.Lock()
	defer es.mu.Unlock()
	switch {
	case es.st == nil && size <= 0:
		return nil
	case es.st == nil:
		es.capacity = min(size, initialExemplarCapacity)
		st, err := tsdb.NewCircularExemplarStorage(es.capacity, discardedExemplarMetrics, windowMs)
		if err != nil {
			return nil // Never: it fails for no size.
		}
		es.st, es.windowMs = st.(*tsdb.CircularExemplarStorage), windowMs
	case es.capacity > size:
		es.st.Resize(size)
		es.capacity = size
		es.held = min(es.held, size)
	}
	if es.windowMs != windowMs {
		es.st.SetOutOfOrderTimeWindow(windowMs)
		es.windowMs = windowMs
	}
	es.limit = size
	return es.st
}

// reserve doubles a full ring, up to the limit, before an add, so that the
// add overwrites nothing while the tenant is under its limit.
func (es *exemplarStore) reserve() {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.held >= es.capacity && es.capacity < es.limit {
		es.capacity = min(2*es.capacity, es.limit)
		es.st.Resize(es.capacity)
	}
}

// added counts an exemplar the ring took.
func (es *exemplarStore) added() {
	es.mu.Lock()
	defer es.mu.Unlock()
	es.held = min(es.held+1, es.capacity)
}

// current returns the store, nil if none was ever allocated.
func (es *exemplarStore) current() *tsdb.CircularExemplarStorage {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.st
}

// localExemplars returns this ingester's share of the tenant's
// max_global_exemplars_per_user: 0 (exemplars disabled) without limits.
func (l *seriesLimiter) localExemplars(tenant string) int64 {
	if l.limits == nil {
		return 0
	}
	lim := l.limits.For(tenant)
	if lim == nil {
		return 0
	}
	rf, healthy := 1, 1
	if l.ring != nil {
		rf, healthy = l.ring.ReplicationFactor(), l.ring.HealthyInstancesCount()
	}
	return int64(newLocalShare(lim.MaxGlobalExemplarsPerUser, rf, healthy).local)
}

// exemplarEntry is a series of a push that carries exemplars.
type exemplarEntry struct {
	ts  *arguspb.TimeSeries
	s   *memSeries
	idx int32 // of ts in the request
}

// exemplarBatch is the exemplar part of a pushBatch.
type exemplarBatch struct {
	entries []exemplarEntry
	// refs are the exemplars to log and add, series the labels of the
	// series of each (as the store indexes them), idx the index of each
	// one's series in the request.
	refs   []record.RefExemplar
	series []labels.Labels
	idx    []int32
	// drops count the exemplars not stored, by series, in the order they
	// were dropped (a series may appear more than once).
	drops []*arguspb.ExemplarDrops
}

func (eb *exemplarBatch) reset() {
	clear(eb.entries)
	clear(eb.refs)
	clear(eb.series)
	eb.entries, eb.refs, eb.series, eb.idx = eb.entries[:0], eb.refs[:0], eb.series[:0], eb.idx[:0]
	eb.drops = nil // Owned by the response once returned.
}

// drop counts n exemplars of series idx of the request as not stored.
func (eb *exemplarBatch) drop(idx int32, n int) {
	if k := len(eb.drops) - 1; k >= 0 && eb.drops[k].SeriesIndex == idx {
		eb.drops[k].Dropped += int64(n)
		return
	}
	eb.drops = append(eb.drops, &arguspb.ExemplarDrops{SeriesIndex: idx, Dropped: int64(n)})
}

// dropList returns the drops of the push, one entry per series, by index
// (PushResponse.dropped_exemplars).
func (eb *exemplarBatch) dropList() []*arguspb.ExemplarDrops {
	if len(eb.drops) < 2 {
		return eb.drops
	}
	slices.SortStableFunc(eb.drops, func(a, b *arguspb.ExemplarDrops) int { return cmp.Compare(a.SeriesIndex, b.SeriesIndex) })
	out := eb.drops[:1]
	for _, d := range eb.drops[1:] {
		if last := out[len(out)-1]; last.SeriesIndex == d.SeriesIndex {
			last.Dropped += d.Dropped
			continue
		}
		out = append(out, d)
	}
	return out
}

// resolveExemplars finds the series of every series of req that carries
// exemplars: a series the head does not hold (no sample of it was ever
// accepted) has its exemplars dropped and counted, as Prometheus and Mimir
// do. It runs after resolve, which creates the series of the push's
// samples.
func (h *tenantHead) resolveExemplars(req *arguspb.WriteRequest, b *pushBatch) {
	for k, ts := range req.GetTimeseries() {
		if len(ts.GetExemplars()) == 0 {
			continue
		}
		b.hasher.reset()
		for _, l := range ts.GetLabels() {
			b.hasher.add(l.GetName(), l.GetValue())
		}
		s := h.series.getByProto(b.hasher.sum(), ts.GetLabels())
		if s == nil {
			h.metrics.exemplarsRejected[exemplarUnknownSeries].Add(float64(len(ts.GetExemplars())))
			b.ex.drop(int32(k), len(ts.GetExemplars()))
			continue
		}
		b.ex.entries = append(b.ex.entries, exemplarEntry{ts: ts, s: s, idx: int32(k)})
	}
}

// checkExemplarsLocked decodes the exemplars of b and keeps in b.ex.refs
// those the store would take: a duplicate of the series' newest exemplar is
// dropped silently (a retried push), an out-of-order or invalid one is
// counted. It runs under appendMu after the samples' checks, so that a
// series with samples in this push is already marked logged.
func (h *tenantHead) checkExemplarsLocked(b *pushBatch) {
	if len(b.ex.entries) == 0 {
		return
	}
	st := h.exemplars.sized(h.limiter.localExemplars(h.id), h.oooWindowMs())
	for _, e := range b.ex.entries {
		n := len(e.ts.GetExemplars())
		switch {
		case st == nil:
			h.metrics.exemplarsRejected[exemplarDisabled].Add(float64(n))
			b.ex.drop(e.idx, n)
			continue
		case e.s.deleted || !e.s.logged:
			// Its series record is not in the WAL: nothing could replay it.
			h.metrics.exemplarsRejected[exemplarUnknownSeries].Add(float64(n))
			b.ex.drop(e.idx, n)
			continue
		}
		lset := h.series.syms.decode(e.s.syms) // Not deleted, under appendMu: its symbols are its own.
		for _, raw := range e.ts.GetExemplars() {
			ex, err := decodeExemplar(raw)
			if err == nil {
				err = st.ValidateExemplar(lset, ex)
			}
			switch {
			case err == nil:
				b.ex.refs = append(b.ex.refs, record.RefExemplar{Ref: e.s.ref, T: ex.Ts, V: ex.Value, Labels: ex.Labels})
				b.ex.series = append(b.ex.series, lset)
				b.ex.idx = append(b.ex.idx, e.idx)
			case errors.Is(err, promstorage.ErrDuplicateExemplar):
				// Stored already (a retry): written, as Prometheus counts it.
			case errors.Is(err, promstorage.ErrOutOfOrderExemplar):
				h.metrics.exemplarsRejected[exemplarOutOfOrder].Inc()
				b.ex.drop(e.idx, 1)
			case errors.Is(err, promstorage.ErrExemplarsDisabled):
				h.metrics.exemplarsRejected[exemplarDisabled].Inc()
				b.ex.drop(e.idx, 1)
			default:
				h.metrics.exemplarsRejected[exemplarInvalid].Inc()
				b.ex.drop(e.idx, 1)
			}
		}
	}
}

// decodeExemplar decodes one marshalled prompb.Exemplar; its strings are
// copies, never aliases of the request.
func decodeExemplar(raw []byte) (exemplar.Exemplar, error) {
	var pe prompb.Exemplar
	if err := pe.Unmarshal(raw); err != nil {
		return exemplar.Exemplar{}, fmt.Errorf("decode exemplar: %w", err)
	}
	sb := labels.NewScratchBuilder(len(pe.Labels))
	for _, l := range pe.Labels {
		sb.Add(l.Name, l.Value)
	}
	sb.Sort()
	return exemplar.Exemplar{Labels: sb.Labels(), Value: pe.Value, Ts: pe.Timestamp, HasTs: true}, nil
}

// appendExemplarRecord appends the record of b's exemplars to buf and b.recs.
func appendExemplarRecord(enc *record.Encoder, b *pushBatch, buf []byte) []byte {
	if len(b.ex.refs) == 0 {
		return buf
	}
	start := len(buf)
	buf = enc.Exemplars(b.ex.refs, buf)
	b.recs = append(b.recs, buf[start:])
	return buf
}

// applyExemplarsLocked adds the logged exemplars of b to the store. The
// store checks each again: two exemplars of one series in a push may be
// out of order with each other; replay drops the same ones.
func (h *tenantHead) applyExemplarsLocked(b *pushBatch) {
	if len(b.ex.refs) == 0 {
		return
	}
	st := h.exemplars.current()
	for k, re := range b.ex.refs {
		if !h.addExemplar(st, b.ex.series[k], re) {
			b.ex.drop(b.ex.idx[k], 1)
		}
	}
}

// addExemplar adds re, of the series lset, to st, counts the outcome and
// reports whether the store holds it (a duplicate included).
func (h *tenantHead) addExemplar(st *tsdb.CircularExemplarStorage, lset labels.Labels, re record.RefExemplar) bool {
	if st == nil {
		h.metrics.exemplarsRejected[exemplarDisabled].Inc()
		return false
	}
	h.exemplars.reserve()
	err := st.AddExemplar(lset, exemplar.Exemplar{Labels: re.Labels, Value: re.V, Ts: re.T, HasTs: true})
	switch {
	case err == nil:
		h.exemplars.added()
		h.metrics.exemplarsAppended.Inc()
		return true
	case errors.Is(err, promstorage.ErrDuplicateExemplar):
		return true
	case errors.Is(err, promstorage.ErrOutOfOrderExemplar):
		h.metrics.exemplarsRejected[exemplarOutOfOrder].Inc()
	case errors.Is(err, promstorage.ErrExemplarsDisabled):
		h.metrics.exemplarsRejected[exemplarDisabled].Inc()
	default:
		h.metrics.exemplarsRejected[exemplarInvalid].Inc()
	}
	return false
}

// QueryExemplars returns the exemplars of the tenant of ctx in
// [min_time_ms, max_time_ms] of the series that match every matcher of any
// of the request's sets, sorted by series labels, each series' exemplars by
// time. Only the in-memory store answers: exemplars are not persisted.
func (i *Ingester) QueryExemplars(ctx context.Context, req *arguspb.ExemplarsRequest) (*arguspb.ExemplarsResponse, error) {
	h, err := i.queryHead(ctx, queryTypeExemplars)
	if err != nil || h == nil {
		return &arguspb.ExemplarsResponse{}, grpcError(err)
	}
	sets := make([][]*labels.Matcher, 0, len(req.GetMatcherSets()))
	for _, set := range req.GetMatcherSets() {
		ms, err := toMatchers(set.GetMatchers())
		if err != nil {
			return nil, grpcError(err)
		}
		sets = append(sets, ms)
	}
	st := h.exemplars.current()
	if st == nil || len(sets) == 0 {
		return &arguspb.ExemplarsResponse{}, nil
	}
	res, err := st.Select(req.GetMinTimeMs(), req.GetMaxTimeMs(), sets...)
	if err != nil {
		return nil, grpcError(fmt.Errorf("select exemplars: %w", err))
	}
	out := &arguspb.ExemplarsResponse{Series: make([]*arguspb.SeriesExemplars, 0, len(res))}
	for _, r := range res {
		se := &arguspb.SeriesExemplars{Labels: protoLabels(r.SeriesLabels), Exemplars: make([]*arguspb.Exemplar, 0, len(r.Exemplars))}
		for _, e := range r.Exemplars {
			se.Exemplars = append(se.Exemplars, &arguspb.Exemplar{Labels: protoLabels(e.Labels), Value: e.Value, TimestampMs: e.Ts})
		}
		out.Series = append(out.Series, se)
	}
	return out, nil
}

// protoLabels copies lset into proto labels: the answer is marshalled after
// the call returns.
func protoLabels(lset labels.Labels) []*arguspb.Label {
	out := make([]*arguspb.Label, 0, lset.Len())
	lset.Range(func(l labels.Label) {
		out = append(out, &arguspb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)})
	})
	return out
}
