package ingester

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/slab"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// seriesPerMessage caps the series of one SeriesResponse.
const seriesPerMessage = 256

// bytesPerMessage is the size (approximately, before framing) past which a
// SeriesResponse is sent even if it holds fewer than seriesPerMessage series:
// it bounds the buffers of both ends, and the querier decodes a message while
// the next one is marshalled.
const bytesPerMessage = 256 << 10

// checkCtxEvery is how many series a read visits between context checks.
const checkCtxEvery = 1024

// queryHead returns the head of the tenant of ctx, or nil if the tenant has
// never pushed here.
func (i *Ingester) queryHead(ctx context.Context, queryType string) (*tenantHead, error) {
	i.metrics.queries.WithLabelValues(queryType).Inc()
	if !i.ready.Load() {
		return nil, ErrNotReady
	}
	id, err := tenantOf(ctx)
	if err != nil {
		return nil, err
	}
	if h := i.getTenant(id); h != nil {
		h.touch() // A queried tenant is not idle.
		return h, nil
	}
	return i.readOnlyHead(id), nil // Its persisted data, if any.
}

// Series streams the series of the tenant of ctx that match every matcher
// and have samples in [min_time_ms, max_time_ms], merged from the head and
// the chunk store, sorted by labels, in messages of at most seriesPerMessage
// series and about bytesPerMessage bytes.
func (i *Ingester) Series(req *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	var a protoAlloc
	b := responseBatcher{send: stream.Send}
	err := i.selectSeries(stream.Context(), req, func(lset labels.Labels, chks []storage.Chunk) error {
		return b.add(a.streamSeries(lset, chks))
	})
	if err != nil {
		return grpcError(err)
	}
	return grpcError(b.flush())
}

// SelectSeries is Series for a caller in the same process (the querier of
// an all-in-one): it calls visit with each series that Series would stream,
// in the same order and with the same chunks, instead of encoding them. lset
// and chks, chunk data included, are the caller's to keep: the labels are
// the head's own (immutable), finished chunks are shared (immutable), and
// the rest is copied into memory that the ingester never touches again.
// The ingester's own errors are gRPC statuses, as Series returns them; an
// error of visit ends the read and is returned as is.
//
// The head's chunks are read straight into the chunks.Metas handed out
// (mode withMetas), with no storage.Chunk in between, unless the tenant has
// tombstones: maskDeleted masks storage.Chunks.
func (i *Ingester) SelectSeries(ctx context.Context, req *arguspb.SeriesRequest, visit func(lset labels.Labels, chks []chunks.Meta) error) error {
	var (
		a        metaAlloc
		visitErr error
	)
	r, err := i.readSeries(ctx, req, &a)
	if err == nil {
		err = mergeLocal(r, &a, func(lset labels.Labels, chks []chunks.Meta) error {
			visitErr = visit(lset, chks)
			return visitErr
		})
	}
	if visitErr != nil {
		return visitErr
	}
	return grpcError(err)
}

// seriesRead is what a read of series takes from the head and the chunk
// store before merging them.
type seriesRead struct {
	head   []headSnapshot
	stored []storage.Series
	mode   seriesMode
}

// selectSeries calls visit with every series of the tenant of ctx that
// matches req, merged from the head and the chunk store, sorted by labels.
// chks is reused once visit returns; the data it points to is not.
func (i *Ingester) selectSeries(ctx context.Context, req *arguspb.SeriesRequest, visit func(lset labels.Labels, chks []storage.Chunk) error) error {
	r, err := i.readSeries(ctx, req, nil)
	if err != nil {
		return err
	}
	return mergeSeries(r.head, r.stored, r.mode, visit)
}

// readSeries reads the series of the tenant of ctx that match req from the
// head, then from the chunk store. The read has no series when the tenant
// has no data here.
//
// The head is read before the store. A chunk persisted between the two
// reads is then in both: it is taken from the head, and the store's copy is
// excluded because only store chunks older than the series' oldest chunk in
// memory at the head read are used.
//
// With local (a reader in this process that iterates samples), the head's
// chunks come as chunks.Metas carved from local (unless the tenant has
// tombstones), and the float chunks of compressed parts as they are stored
// (storage.EncTranscodedXOR, read through storage.NewChunk) rather than
// rebuilt as XOR: storage/transcoded.go.
func (i *Ingester) readSeries(ctx context.Context, req *arguspb.SeriesRequest, local *metaAlloc) (seriesRead, error) {
	h, err := i.queryHead(ctx, queryTypeSeries)
	if err != nil || h == nil {
		return seriesRead{}, err
	}
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return seriesRead{}, err
	}
	o := headRead{mint: req.GetMinTimeMs(), maxt: req.GetMaxTimeMs(), mode: withChunks}
	switch {
	case req.GetSkipChunks():
		o.mode = withoutChunks
	case local != nil && !h.hasTombstones():
		o.mode, o.metas = withMetas, local
	}
	head, err := h.headSeries(ctx, ms, o)
	if err != nil {
		return seriesRead{}, err
	}
	stored, err := h.store.Select(o.mint, o.maxt, storage.SelectOptions{SkipChunks: o.mode == withoutChunks, KeepTranscoded: local != nil}, ms...)
	if err != nil {
		return seriesRead{}, fmt.Errorf("select from chunk store: %w", err)
	}
	return seriesRead{head: head, stored: stored, mode: o.mode}, nil
}

// hasTombstones reports whether the tenant has deletions to mask.
func (h *tenantHead) hasTombstones() bool {
	return h.store.db != nil && len(h.store.db.Tombstones(h.id)) > 0
}

// responseBatcher groups streamed series into SeriesResponse messages of at
// most seriesPerMessage series and about bytesPerMessage bytes.
type responseBatcher struct {
	send  func(*arguspb.SeriesResponse) error
	batch []*arguspb.StreamSeries
	bytes int // the encoded size of batch
}

func (b *responseBatcher) add(ss *arguspb.StreamSeries) error {
	b.batch = append(b.batch, ss)
	b.bytes += ss.SizeVT()
	if len(b.batch) < seriesPerMessage && b.bytes < bytesPerMessage {
		return nil
	}
	return b.flush()
}

// flush sends the batch, if any. A sent batch is never modified again, as
// gRPC requires.
func (b *responseBatcher) flush() error {
	if len(b.batch) == 0 {
		return nil
	}
	err := b.send(&arguspb.SeriesResponse{Series: b.batch})
	b.batch, b.bytes = make([]*arguspb.StreamSeries, 0, len(b.batch)), 0
	return err
}

// seriesMode says whether a Series read returns chunks (skip_chunks).
type seriesMode int

const (
	withChunks seriesMode = iota
	withoutChunks
	// withMetas: chunks as the chunks.Metas of SelectSeries (headSnapshot's
	// metas), for a reader in this process. No tombstones are masked.
	withMetas
)

// headRead says what headSeries reads: the range [mint, maxt], the mode,
// and for withMetas what the metas are carved from.
type headRead struct {
	mint, maxt int64
	mode       seriesMode
	metas      *metaAlloc
}

// headSnapshot is what a query read of one head series.
type headSnapshot struct {
	lset labels.Labels
	ref  uint64     // the series' ref, for sorting by rank (order.go)
	s    *memSeries // the series, until the snapshot is taken
	// minT is the min time of the series' oldest chunk in memory at the read,
	// or noTime: store chunks from minT on are in chunks.
	minT    int64
	chunks  []storage.Chunk // in memory, overlapping the range; the open one copied
	metas   []chunks.Meta   // likewise, in mode withMetas (chunks is then nil)
	inRange bool            // some in-memory sample may be in the range
}

// headSeries snapshots the head series matching ms, sorted by labels,
// their chunks as o.mode says. Series with no chunk in the range are kept:
// their minT still filters the store.
//
// The series are sorted before anything is read of them, by rank for the
// most part (integers: order.go), then each is read once, under one lock
// (snapshot): its labels decoded and its chunks taken. So the label sets
// and the copies of the open chunks lie in memory in the order the merge
// and the querier read them. A read of many series does both in parts, one
// per processor (parts.go).
func (h *tenantHead) headSeries(ctx context.Context, ms []*labels.Matcher, o headRead) ([]headSnapshot, error) {
	var sl labelSlab
	out, err := h.sortedSeries(ctx, ms, &sl)
	if err != nil {
		return nil, err
	}
	n, err := inParts(out, func(lo, hi int) (int, error) {
		metas := o.metas
		if lo > 0 {
			metas = new(metaAlloc) // Not safe for concurrent use: one per part.
		}
		return h.snapshot(ctx, out[lo:hi:hi], o, metas)
	})
	if err != nil {
		return nil, err
	}
	clear(out[n:]) // No pointer to a series is left behind.
	kept := out[:n]
	if o.mode == withMetas {
		return kept, nil // The caller found no tombstones.
	}
	// Order is kept: maskDeleted filters in place.
	return h.maskDeleted(kept, o.mint, o.maxt, o.mode)
}

// snapshot takes the snapshot of each series of part, which holds the
// series as sortedSeries found them, in place: it returns how many of part
// it kept, first (those removed since are dropped), each read once, under
// one lock: its labels decoded and its chunks taken. So the label sets and
// the copies of the open chunks lie in memory in the order the merge and
// the querier read them. metas carves the withMetas chunks.
func (h *tenantHead) snapshot(ctx context.Context, part []headSnapshot, o headRead, metas *metaAlloc) (int, error) {
	var (
		sl      labelSlab
		chks    []storage.Chunk // The chunks of all snapshots, which share it.
		opens   []byte          // Likewise, the copies of the open chunks.
		scratch []storage.Chunk // withMetas: one series' chunks, reused
	)
	if o.mode == withChunks {
		chks = make([]storage.Chunk, 0, len(part))
	}
	kept := part[:0]
	for k := range part {
		if k%checkCtxEvery == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		snap := part[k]
		s := snap.s
		snap.s = nil
		s.mu.Lock()
		if s.goneLocked() { // Removed since the lookup; its symbols may be another's.
			s.mu.Unlock()
			continue
		}
		if snap.lset.IsEmpty() {
			snap.lset = sl.decode(h.series.syms, s.syms)
		}
		snap.minT = s.firstInMemoryLocked()
		snap.inRange = s.overlapsLocked(o.mint, o.maxt)
		switch {
		case !snap.inRange:
		case o.mode == withChunks:
			start := len(chks)
			chks = s.appendChunksCarvedLocked(chks, &opens, o.mint, o.maxt)
			snap.chunks = chks[start:len(chks):len(chks)]
		case o.mode == withMetas:
			scratch = s.appendChunksCarvedLocked(scratch[:0], &opens, o.mint, o.maxt)
			snap.metas = metas.metas(scratch)
		}
		s.mu.Unlock()
		kept = append(kept, snap)
	}
	return len(kept), nil
}

// sortedSeries returns the head series matching ms as snapshots with ref
// and s set, sorted by labels; those that had to be sorted by labels have
// theirs, decoded from sl.
func (h *tenantHead) sortedSeries(ctx context.Context, ms []*labels.Matcher, sl *labelSlab) ([]headSnapshot, error) {
	p, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	buf, err := expandPostings(p) // Sizes what follows: cheaper than growing it.
	defer refBufs.Put(buf)
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	refs := *buf
	out := make([]headSnapshot, len(refs))
	// The usual read of many series: sorted by rank before any series is
	// read, then read in that order.
	order := h.series.rankOrder(refs)
	n, err := inParts(out, func(lo, hi int) (int, error) {
		k := lo
		for n := lo; n < hi; n++ {
			if (n-lo)%checkCtxEvery == 0 && ctx.Err() != nil {
				return 0, ctx.Err()
			}
			ref := refs[n]
			if order != nil {
				ref = refs[uint32(order[n])]
			}
			if s := h.series.getByRef(chunks.HeadSeriesRef(ref)); s != nil {
				out[k] = headSnapshot{ref: uint64(ref), s: s}
				k++
			} // else removed since the postings read; its data is in the store.
		}
		return k - lo, nil
	})
	if err != nil {
		return nil, err
	}
	clear(out[n:])
	out = out[:n]
	if order == nil {
		// Too few series, or some unranked: sorted by labels.
		out = h.series.decodeAll(out, sl)
		slices.SortFunc(out, compareEntries)
	}
	return out, nil
}

// refBufs recycles the refs that reads expand their postings into: those
// of a read of 1M series are 8 MB, and growing them by append, as
// index.ExpandPostings does, allocates five times that.
var refBufs refBufStack

// maxRefBufs is how many buffers refBufs keeps: as many reads of many
// series as run at once on a small machine. They hold no pointers, so the
// GC does not scan them; at 1M series they cost 8 MB each.
const maxRefBufs = 2

// refBufStack keeps the buffers of finished reads for the next ones. A
// sync.Pool would not do: it drops what it holds within two GC cycles, and
// a read of a million series runs several (docs/benchmarks.md: the buffer
// was grown again by most reads). Safe for concurrent use.
type refBufStack struct {
	mu   sync.Mutex
	bufs []*[]promstorage.SeriesRef // guarded by mu; at most maxRefBufs
}

// Get returns a buffer, empty, of the largest capacity kept, or a new one.
func (st *refBufStack) Get() *[]promstorage.SeriesRef {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.bufs); n > 0 {
		buf := st.bufs[n-1]
		st.bufs[n-1] = nil
		st.bufs = st.bufs[:n-1]
		*buf = (*buf)[:0]
		return buf
	}
	return new([]promstorage.SeriesRef)
}

// Put keeps buf for a later Get, unless maxRefBufs larger ones are kept.
// The buffers are kept sorted by capacity, the largest last.
func (st *refBufStack) Put(buf *[]promstorage.SeriesRef) {
	st.mu.Lock()
	defer st.mu.Unlock()
	k, _ := slices.BinarySearchFunc(st.bufs, cap(*buf), func(b *[]promstorage.SeriesRef, c int) int {
		return cmp.Compare(cap(*b), c)
	})
	if len(st.bufs) == maxRefBufs {
		if k == 0 {
			return // Smaller than every buffer kept.
		}
		copy(st.bufs, st.bufs[1:k]) // Drop the smallest.
		k--
		st.bufs[k] = buf
		return
	}
	st.bufs = slices.Insert(st.bufs, k, buf)
}

// expandPostings returns the refs of p in a buffer of refBufs, which the
// caller puts back once it no longer reads them (even on error).
func expandPostings(p index.Postings) (*[]promstorage.SeriesRef, error) {
	buf := refBufs.Get()
	refs := (*buf)[:0]
	for p.Next() {
		refs = append(refs, p.At())
	}
	*buf = refs
	return buf, p.Err()
}

// appendChunksLocked appends the in-memory chunks overlapping [mint, maxt]
// to dst: the finished ones shared (they are immutable), the open one
// copied. The caller holds mu.
func (s *memSeries) appendChunksLocked(dst []storage.Chunk, mint, maxt int64) []storage.Chunk {
	var opens []byte
	return s.appendChunksCarvedLocked(dst, &opens, mint, maxt)
}

// appendChunksCarvedLocked is appendChunksLocked with the copy of the open
// chunk carved from *opens (slab.Take), so that reading many series costs
// a few allocations. The caller holds mu.
func (s *memSeries) appendChunksCarvedLocked(dst []storage.Chunk, opens *[]byte, mint, maxt int64) []storage.Chunk {
	for c := s.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			dst = append(dst, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: chunkenc.EncXOR, Data: c.data})
		}
	}
	if s.hasOpenLocked() && s.openMinTLocked() <= maxt && s.openMaxTLocked() >= mint {
		b := s.openBytesLocked()
		data := slab.Take(opens, len(b), openChunkBlock)
		copy(data, b)
		dst = append(dst, storage.Chunk{MinTime: s.openMinTLocked(), MaxTime: s.openMaxTLocked(), Encoding: chunkenc.EncXOR, Data: data})
	}
	return s.hist.appendChunks(dst, opens, mint, maxt)
}

// mergeSeries merges the head snapshots and the store's series, both sorted
// by labels, calling visit for every series with data in the range (with no
// chunks when mode is withoutChunks). chks is reused once visit returns.
func mergeSeries(head []headSnapshot, stored []storage.Series, mode seriesMode, visit func(lset labels.Labels, chks []storage.Chunk) error) error {
	var chks []storage.Chunk
	m := merger{head: head, stored: stored}
	for m.next() {
		if mode == withoutChunks {
			if m.st == nil && !m.hs.inRange {
				continue
			}
			if err := visit(m.lset, nil); err != nil {
				return err
			}
			continue
		}
		chks = m.storedChunks(chks[:0])
		if m.hs != nil {
			chks = append(chks, m.hs.chunks...)
		}
		if len(chks) == 0 {
			continue
		}
		if err := visit(m.lset, chks); err != nil {
			return err
		}
	}
	return nil
}

// mergeLocal is mergeSeries for SelectSeries: the chunks as chunks.Metas
// carved from a, which are the caller's to keep. A read of mode withMetas
// hands out the head's metas as they are when the store has no chunk of the
// series to add.
func mergeLocal(r seriesRead, a *metaAlloc, visit func(lset labels.Labels, chks []chunks.Meta) error) error {
	if r.mode != withMetas {
		return mergeSeries(r.head, r.stored, r.mode, func(lset labels.Labels, chks []storage.Chunk) error {
			return visit(lset, a.metas(chks))
		})
	}
	var fromStore []storage.Chunk
	m := merger{head: r.head, stored: r.stored}
	for m.next() {
		var metas []chunks.Meta
		if m.hs != nil {
			metas = m.hs.metas
		}
		if fromStore = m.storedChunks(fromStore[:0]); len(fromStore) > 0 {
			metas = a.metasBefore(fromStore, metas)
		}
		if len(metas) == 0 {
			continue
		}
		if err := visit(m.lset, metas); err != nil {
			return err
		}
	}
	return nil
}

// merger steps through head snapshots and stored series, both sorted by
// labels, one series at a time.
type merger struct {
	head   []headSnapshot
	stored []storage.Series
	// The current series: its labels, and its snapshot and stored series
	// (nil where it has none).
	lset labels.Labels
	hs   *headSnapshot
	st   *storage.Series
}

// next moves to the next series, and reports whether there is one.
func (m *merger) next() bool {
	if len(m.head) == 0 && len(m.stored) == 0 {
		return false
	}
	m.hs, m.st = nil, nil
	c := -1 // head[0] comes first; 1: stored[0]; 0: the same series
	switch {
	case len(m.head) == 0:
		c = 1
	case len(m.stored) > 0:
		c = labels.Compare(m.head[0].lset, m.stored[0].Labels)
	}
	if c <= 0 {
		m.hs, m.lset, m.head = &m.head[0], m.head[0].lset, m.head[1:]
	}
	if c >= 0 {
		m.st, m.lset, m.stored = &m.stored[0], m.stored[0].Labels, m.stored[1:]
	}
	return true
}

// storedChunks appends to dst the current series' stored chunks that end
// before its oldest chunk in memory at the head read.
func (m *merger) storedChunks(dst []storage.Chunk) []storage.Chunk {
	if m.st == nil {
		return dst
	}
	headMinT := noTime
	if m.hs != nil {
		headMinT = m.hs.minT
	}
	for _, c := range m.st.Chunks {
		if c.MaxTime < headMinT {
			dst = append(dst, c)
		}
	}
	return dst
}

// protoAlloc carves the messages of a Series stream from blocks, so that a
// response costs a few allocations rather than one per series, label and
// chunk. A carved message is never handed out again, so it can be sent and
// left alone, as gRPC requires. It is not safe for concurrent use.
type protoAlloc struct {
	series    []arguspb.StreamSeries
	labels    []arguspb.Label
	labelPtrs []*arguspb.Label
	chunks    []arguspb.Chunk
	chunkPtrs []*arguspb.Chunk
	scratch   []labels.Label // the labels of the series being carved
}

// streamSeries returns a StreamSeries with the labels of lset and the
// chunks chks, sharing their strings and data.
func (a *protoAlloc) streamSeries(lset labels.Labels, chks []storage.Chunk) *arguspb.StreamSeries {
	ss := &slab.Take(&a.series, 1, carveBlock)[0]
	// One decoding of lset, into scratch: lset.Len would be a second.
	a.scratch = a.scratch[:0]
	lset.Range(func(l labels.Label) { a.scratch = append(a.scratch, l) })
	n := len(a.scratch)
	ls := slab.Take(&a.labels, n, carveBlock)
	ss.Labels = slab.Take(&a.labelPtrs, n, carveBlock)
	for i, l := range a.scratch {
		ls[i].Name, ls[i].Value = l.Name, l.Value
		ss.Labels[i] = &ls[i]
	}
	if len(chks) > 0 {
		ss.Chunks = slab.Take(&a.chunkPtrs, len(chks), carveBlock)
		pcs := slab.Take(&a.chunks, len(chks), carveBlock)
		for i, c := range chks {
			pc := &pcs[i]
			pc.MinTimeMs, pc.MaxTimeMs, pc.Data = c.MinTime, c.MaxTime, c.Data
			pc.Encoding = wireEncoding(c.Encoding)
			ss.Chunks[i] = pc
		}
	}
	return ss
}

// metaAlloc carves the chunks of SelectSeries from blocks, as protoAlloc
// carves messages. What it hands out is never handed out again. It is not
// safe for concurrent use.
type metaAlloc struct {
	metaBlock []chunks.Meta
	xorBlock  []chunkenc.XORChunk
}

// metas returns chks as chunks.Metas sharing their data.
func (a *metaAlloc) metas(chks []storage.Chunk) []chunks.Meta {
	if len(chks) == 0 {
		return nil
	}
	ms := slab.Take(&a.metaBlock, len(chks), carveBlock)
	a.fill(ms, chks)
	return ms
}

// fill sets ms[i] to chks[i] as a chunks.Meta sharing its data, the
// chunk itself carved from a.
func (a *metaAlloc) fill(ms []chunks.Meta, chks []storage.Chunk) {
	xors := slab.Take(&a.xorBlock, len(chks), carveBlock)
	for i, c := range chks {
		ms[i] = chunks.Meta{Chunk: &xors[i], MinTime: c.MinTime, MaxTime: c.MaxTime}
		if c.Encoding != chunkenc.EncXOR {
			// A native histogram chunk (hist.go) or a transcoded float
			// chunk of a compressed part; the querier refuses any
			// encoding its wire has not (a transcoded chunk says XOR).
			if chk, err := storage.NewChunk(c); err == nil {
				ms[i].Chunk = chk
				continue
			}
		}
		xors[i].Reset(c.Data)
	}
}

// metasBefore returns the chunks.Metas of stored followed by head, in one
// slice carved from a.
func (a *metaAlloc) metasBefore(stored []storage.Chunk, head []chunks.Meta) []chunks.Meta {
	if len(head) == 0 {
		return a.metas(stored)
	}
	n := len(stored)
	ms := slab.Take(&a.metaBlock, n+len(head), carveBlock)
	a.fill(ms[:n], stored)
	copy(ms[n:], head)
	return ms
}

// carveBlock is the first block size of slab.Take here, in elements.
const carveBlock = 16

// openChunkBlock is the first block size, in bytes, of the copies of open
// chunks: a few chunks' worth.
const openChunkBlock = 512

// LabelNames returns the sorted label names of the tenant's series that
// match every matcher, at most limit of them (0: no limit): from the chunk
// store, the series with samples in the range; from the head, if its span
// overlaps the range, every series of it (Prometheus's head semantics, see
// headNames), answered from its postings.
func (i *Ingester) LabelNames(ctx context.Context, req *arguspb.LabelNamesRequest) (*arguspb.LabelNamesResponse, error) {
	h, err := i.queryHead(ctx, queryTypeNames)
	if err != nil || h == nil {
		return &arguspb.LabelNamesResponse{}, grpcError(err)
	}
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return nil, grpcError(err)
	}
	mint, maxt := req.GetMinTimeMs(), req.GetMaxTimeMs()
	head, err := h.headNames(ctx, ms, mint, maxt)
	if err != nil {
		return nil, grpcError(err)
	}
	stored, err := h.store.LabelNames(mint, maxt, ms...)
	if err != nil {
		return nil, grpcError(fmt.Errorf("label names from chunk store: %w", err))
	}
	return &arguspb.LabelNamesResponse{Names: unionSorted(head, stored, req.GetLimit())}, nil
}

// LabelValues returns the sorted values of the label name over the tenant's
// series that match every matcher, at most limit of them (0: no limit), with
// the time semantics of LabelNames.
func (i *Ingester) LabelValues(ctx context.Context, req *arguspb.LabelValuesRequest) (*arguspb.LabelValuesResponse, error) {
	h, err := i.queryHead(ctx, queryTypeValues)
	if err != nil || h == nil {
		return &arguspb.LabelValuesResponse{}, grpcError(err)
	}
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return nil, grpcError(err)
	}
	name, mint, maxt := req.GetName(), req.GetMinTimeMs(), req.GetMaxTimeMs()
	head, err := h.headValues(ctx, name, ms, mint, maxt)
	if err != nil {
		return nil, grpcError(err)
	}
	stored, err := h.store.LabelValues(name, mint, maxt, ms...)
	if err != nil {
		return nil, grpcError(fmt.Errorf("label values from chunk store: %w", err))
	}
	return &arguspb.LabelValuesResponse{Values: unionSorted(head, stored, req.GetLimit())}, nil
}

// unionSorted merges two sorted unique lists into one, keeping the first
// limit strings (limit 0: all).
func unionSorted(a, b []string, limit int64) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
		if limit > 0 && int64(len(out)) >= limit {
			break
		}
	}
	return out
}
