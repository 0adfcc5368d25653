package ingester

import (
	"bytes"
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
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
//
// The head is read before the store. A chunk persisted between the two
// reads is then in both: it is taken from the head, and the store's copy is
// excluded because only store chunks older than the series' oldest chunk in
// memory at the head read are used.
func (i *Ingester) Series(req *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	ctx := stream.Context()
	h, err := i.queryHead(ctx, queryTypeSeries)
	if err != nil || h == nil {
		return grpcError(err)
	}
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return grpcError(err)
	}
	mint, maxt := req.GetMinTimeMs(), req.GetMaxTimeMs()
	mode := withChunks
	if req.GetSkipChunks() {
		mode = withoutChunks
	}
	head, err := h.headSeries(ctx, ms, mint, maxt, mode)
	if err != nil {
		return grpcError(err)
	}
	stored, err := h.store.Select(mint, maxt, storage.SelectOptions{SkipChunks: mode == withoutChunks}, ms...)
	if err != nil {
		return grpcError(fmt.Errorf("select from chunk store: %w", err))
	}
	b := responseBatcher{send: stream.Send}
	if err := mergeSeries(head, stored, mode, b.add); err != nil {
		return grpcError(err)
	}
	return grpcError(b.flush())
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
)

// headSnapshot is what a query read of one head series.
type headSnapshot struct {
	lset labels.Labels
	// minT is the min time of the series' oldest chunk in memory at the read,
	// or noTime: store chunks from minT on are in chunks.
	minT    int64
	chunks  []storage.Chunk // in memory, overlapping the range; the open one copied
	inRange bool            // some in-memory sample may be in the range
}

// headSeries snapshots the head series matching ms, sorted by labels. Series
// with no chunk in the range are kept: their minT still filters the store.
func (h *tenantHead) headSeries(ctx context.Context, ms []*labels.Matcher, mint, maxt int64, mode seriesMode) ([]headSnapshot, error) {
	p, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	refs, err := index.ExpandPostings(p) // Sizes what follows: cheaper than growing it.
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	es := make([]seriesEntry, 0, len(refs))
	for n, ref := range refs {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if s := h.series.getByRef(chunks.HeadSeriesRef(ref)); s != nil {
			if lset, ok := h.series.labelsOf(s); ok {
				es = append(es, seriesEntry{lset: lset, ref: uint64(ref), s: s})
			}
		} // else removed since the postings read; its data is in the store.
	}
	// Sorted before the snapshots are taken, so that the snapshots and
	// their chunks lie in the order the merge reads them.
	h.series.sortEntries(es)
	out := make([]headSnapshot, len(es))
	var chks []storage.Chunk // The chunks of all snapshots, which share it.
	if mode == withChunks {
		chks = make([]storage.Chunk, 0, len(es))
	}
	for k, e := range es {
		snap := &out[k]
		snap.lset = e.lset
		e.s.mu.Lock()
		snap.minT = e.s.firstInMemoryLocked()
		snap.inRange = e.s.overlapsLocked(mint, maxt)
		if mode == withChunks && snap.inRange {
			start := len(chks)
			chks = e.s.appendChunksLocked(chks, mint, maxt)
			snap.chunks = chks[start:len(chks):len(chks)]
		}
		e.s.mu.Unlock()
	}
	// Order is kept: maskDeleted filters in place.
	out, err = h.maskDeleted(out, mint, maxt, mode)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendChunksLocked appends the in-memory chunks overlapping [mint, maxt]
// to dst: the finished ones shared (they are immutable), the open one
// copied. The caller holds mu.
func (s *memSeries) appendChunksLocked(dst []storage.Chunk, mint, maxt int64) []storage.Chunk {
	for c := s.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			dst = append(dst, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: chunkenc.EncXOR, Data: c.data})
		}
	}
	if s.hasOpenLocked() && s.openMinTLocked() <= maxt && s.openMaxTLocked() >= mint {
		dst = append(dst, storage.Chunk{MinTime: s.openMinTLocked(), MaxTime: s.openMaxTLocked(), Encoding: chunkenc.EncXOR, Data: bytes.Clone(s.openBytesLocked())})
	}
	return dst
}

// mergeSeries merges the head snapshots and the store's series, both sorted
// by labels, calling send for every series with data in the range. The
// messages it sends are never modified afterwards.
func mergeSeries(head []headSnapshot, stored []storage.Series, mode seriesMode, send func(*arguspb.StreamSeries) error) error {
	var a protoAlloc
	for len(head) > 0 || len(stored) > 0 {
		var (
			lset     labels.Labels
			hs       *headSnapshot
			st       *storage.Series
			headMinT = noTime
		)
		c := -1 // head[0] comes first; 1: stored[0]; 0: the same series
		switch {
		case len(head) == 0:
			c = 1
		case len(stored) > 0:
			c = labels.Compare(head[0].lset, stored[0].Labels)
		}
		if c <= 0 {
			hs, lset, head = &head[0], head[0].lset, head[1:]
			headMinT = hs.minT
		}
		if c >= 0 {
			st, lset, stored = &stored[0], stored[0].Labels, stored[1:]
		}
		if mode == withoutChunks {
			if st == nil && !hs.inRange {
				continue
			}
			if err := send(a.streamSeries(lset, 0)); err != nil {
				return err
			}
			continue
		}
		n := 0
		if st != nil {
			for _, c := range st.Chunks {
				if c.MaxTime < headMinT {
					n++
				}
			}
		}
		if hs != nil {
			n += len(hs.chunks)
		}
		if n == 0 {
			continue
		}
		ss := a.streamSeries(lset, n)
		if st != nil {
			for _, c := range st.Chunks {
				if c.MaxTime < headMinT {
					ss.Chunks = append(ss.Chunks, a.chunk(c))
				}
			}
		}
		if hs != nil {
			for _, c := range hs.chunks {
				ss.Chunks = append(ss.Chunks, a.chunk(c))
			}
		}
		if err := send(ss); err != nil {
			return err
		}
	}
	return nil
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

// streamSeries returns a StreamSeries with the labels of lset (sharing its
// strings) and room for nChunks chunks.
func (a *protoAlloc) streamSeries(lset labels.Labels, nChunks int) *arguspb.StreamSeries {
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
	if nChunks > 0 {
		ss.Chunks = slab.Take(&a.chunkPtrs, nChunks, carveBlock)[:0]
	}
	return ss
}

// chunk returns c as a message sharing its data.
func (a *protoAlloc) chunk(c storage.Chunk) *arguspb.Chunk {
	pc := &slab.Take(&a.chunks, 1, carveBlock)[0]
	pc.MinTimeMs, pc.MaxTimeMs, pc.Data = c.MinTime, c.MaxTime, c.Data
	if c.Encoding == chunkenc.EncXOR {
		pc.Encoding = arguspb.ChunkEncoding_CHUNK_ENCODING_XOR
	}
	return pc
}

// carveBlock is the first block size of slab.Take here, in elements.
const carveBlock = 16

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
