package ingester

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// seriesPerMessage caps the series of one SeriesResponse.
const seriesPerMessage = 256

// checkCtxEvery is how many series a read visits between context checks.
const checkCtxEvery = 1024

// queryHead returns the head of the tenant of ctx, or nil if the tenant has
// never pushed here.
func (i *Ingester) queryHead(ctx context.Context, queryType string) (*tenantHead, error) {
	i.metrics.queries.WithLabelValues(queryType).Inc()
	if !i.ready.Load() {
		return nil, ErrNotReady
	}
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := tenant.Validate(id); err != nil {
		return nil, err
	}
	return i.getTenant(id), nil
}

// Series streams the series of the tenant of ctx that match every matcher
// and have samples in [min_time_ms, max_time_ms], merged from the head and
// the chunk store, sorted by labels, seriesPerMessage per message.
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
	batch := make([]*arguspb.StreamSeries, 0, seriesPerMessage)
	send := func(ss *arguspb.StreamSeries) error {
		batch = append(batch, ss)
		if len(batch) < seriesPerMessage {
			return nil
		}
		err := stream.Send(&arguspb.SeriesResponse{Series: batch})
		batch = make([]*arguspb.StreamSeries, 0, seriesPerMessage)
		return err
	}
	if err := mergeSeries(head, stored, mode, send); err != nil {
		return grpcError(err)
	}
	if len(batch) > 0 {
		return grpcError(stream.Send(&arguspb.SeriesResponse{Series: batch}))
	}
	return nil
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
	refs, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	out := make([]headSnapshot, 0, len(refs))
	for n, ref := range refs {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s := h.series.getByRef(chunks.HeadSeriesRef(ref))
		if s == nil {
			continue // Removed since the postings read; its data is in the store.
		}
		snap := headSnapshot{lset: s.lset}
		s.mu.Lock()
		snap.minT = s.firstInMemoryLocked()
		snap.inRange = s.overlapsLocked(mint, maxt)
		if mode == withChunks && snap.inRange {
			snap.chunks = s.chunksLocked(mint, maxt)
		}
		s.mu.Unlock()
		out = append(out, snap)
	}
	slices.SortFunc(out, func(a, b headSnapshot) int { return labels.Compare(a.lset, b.lset) })
	return out, nil
}

// chunksLocked returns the in-memory chunks overlapping [mint, maxt]: the
// finished ones shared (they are immutable), the open one copied. The caller
// holds mu.
func (s *memSeries) chunksLocked(mint, maxt int64) []storage.Chunk {
	var out []storage.Chunk
	for c := s.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			out = append(out, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: chunkenc.EncXOR, Data: c.data})
		}
	}
	if s.app != nil && s.openMinTLocked() <= maxt && s.openMaxT >= mint {
		out = append(out, storage.Chunk{MinTime: s.openMinTLocked(), MaxTime: s.openMaxT, Encoding: chunkenc.EncXOR, Data: bytes.Clone(s.open.Bytes())})
	}
	return out
}

// mergeSeries merges the head snapshots and the store's series, both sorted
// by labels, calling send for every series with data in the range.
func mergeSeries(head []headSnapshot, stored []storage.Series, mode seriesMode, send func(*arguspb.StreamSeries) error) error {
	for len(head) > 0 || len(stored) > 0 {
		var (
			lset     labels.Labels
			hs       *headSnapshot
			st       *storage.Series
			headMinT = noTime
		)
		switch {
		case len(stored) == 0 || (len(head) > 0 && labels.Compare(head[0].lset, stored[0].Labels) < 0):
			hs, lset, head = &head[0], head[0].lset, head[1:]
		case len(head) == 0 || labels.Compare(head[0].lset, stored[0].Labels) > 0:
			st, lset, stored = &stored[0], stored[0].Labels, stored[1:]
		default:
			hs, st, lset = &head[0], &stored[0], head[0].lset
			head, stored = head[1:], stored[1:]
		}
		if hs != nil {
			headMinT = hs.minT
		}
		if mode == withoutChunks {
			if st == nil && !hs.inRange {
				continue
			}
			if err := send(&arguspb.StreamSeries{Labels: toProtoLabels(lset)}); err != nil {
				return err
			}
			continue
		}
		var cs []*arguspb.Chunk
		if st != nil {
			for _, c := range st.Chunks {
				if c.MaxTime < headMinT {
					cs = append(cs, toProtoChunk(c))
				}
			}
		}
		if hs != nil {
			for _, c := range hs.chunks {
				cs = append(cs, toProtoChunk(c))
			}
		}
		if len(cs) == 0 {
			continue
		}
		if err := send(&arguspb.StreamSeries{Labels: toProtoLabels(lset), Chunks: cs}); err != nil {
			return err
		}
	}
	return nil
}

func toProtoLabels(lset labels.Labels) []*arguspb.Label {
	out := make([]*arguspb.Label, 0, lset.Len())
	lset.Range(func(l labels.Label) {
		out = append(out, &arguspb.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

func toProtoChunk(c storage.Chunk) *arguspb.Chunk {
	enc := arguspb.ChunkEncoding_CHUNK_ENCODING_UNSPECIFIED
	if c.Encoding == chunkenc.EncXOR {
		enc = arguspb.ChunkEncoding_CHUNK_ENCODING_XOR
	}
	return &arguspb.Chunk{MinTimeMs: c.MinTime, MaxTimeMs: c.MaxTime, Encoding: enc, Data: c.Data}
}

// LabelNames returns the sorted label names of the tenant's series that
// match every matcher and have samples in the range, from the head and the
// chunk store, at most limit of them (0: no limit).
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
	head, err := h.headLabels(ctx, ms, mint, maxt, func(lset labels.Labels, add func(string)) {
		lset.Range(func(l labels.Label) { add(l.Name) })
	})
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
// series that match every matcher and have samples in the range, from the
// head and the chunk store, at most limit of them (0: no limit).
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
	// Only series that have the label can contribute a value.
	hasName := labels.MustNewMatcher(labels.MatchNotEqual, name, "")
	head, err := h.headLabels(ctx, append(slices.Clip(ms), hasName), mint, maxt, func(lset labels.Labels, add func(string)) {
		add(lset.Get(name))
	})
	if err != nil {
		return nil, grpcError(err)
	}
	stored, err := h.store.LabelValues(name, mint, maxt, ms...)
	if err != nil {
		return nil, grpcError(fmt.Errorf("label values from chunk store: %w", err))
	}
	return &arguspb.LabelValuesResponse{Values: unionSorted(head, stored, req.GetLimit())}, nil
}

// headLabels calls collect for every head series that matches ms and has
// in-memory samples in [mint, maxt] (a series without is fully in the store,
// which the caller reads after), and returns the sorted unique strings
// collect added. It visits every matching series.
func (h *tenantHead) headLabels(ctx context.Context, ms []*labels.Matcher, mint, maxt int64, collect func(labels.Labels, func(string))) ([]string, error) {
	refs, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	set := map[string]struct{}{}
	add := func(v string) { set[v] = struct{}{} }
	for n, ref := range refs {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s := h.series.getByRef(chunks.HeadSeriesRef(ref))
		if s == nil {
			continue
		}
		s.mu.Lock()
		ok := s.overlapsLocked(mint, maxt)
		s.mu.Unlock()
		if ok {
			collect(s.lset, add)
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
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
