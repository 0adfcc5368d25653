package ingester

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// maxStatusLimit bounds the top lists of TSDBStatus, as Prometheus does.
const maxStatusLimit = 10000

// namesPerMessage caps the label names of one LabelNamesAndValuesResponse,
// and valuesPerMessage (about) its values.
const (
	namesPerMessage  = 256
	valuesPerMessage = 16384
)

// TSDBStatus reports the cardinality of the in-memory head of the tenant of
// ctx, computed as Prometheus computes its head's (MemPostings.Stats, with
// labels.SizeOfLabels for the memory of each label name), without
// Prometheus's 30 s cache. Deleted series count until they leave the head,
// as in Prometheus. A tenant without a head here has an empty status.
func (a *AdminServer) TSDBStatus(ctx context.Context, req *arguspb.TSDBStatusRequest) (*arguspb.TSDBStatusResponse, error) {
	limit := int(req.GetLimit())
	if limit < 1 || limit > maxStatusLimit {
		return nil, grpcError(fmt.Errorf("%w: limit must be in [1, %d], got %d", ErrInvalidAdminRequest, maxStatusLimit, limit))
	}
	h, err := a.adminHead(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &arguspb.TSDBStatusResponse{MinTimeMs: math.MaxInt64, MaxTimeMs: math.MinInt64}
	if h == nil {
		return resp, nil
	}
	st := h.postings.stats(labels.MetricName, limit, labels.SizeOfLabels)
	resp.NumSeries = uint64(h.memorySeries())
	resp.NumLabelPairs = int64(st.NumLabelPairs)
	resp.ChunkCount, resp.MinTimeMs, resp.MaxTimeMs = h.chunkStats()
	resp.SeriesCountByMetricName = toStats(st.CardinalityMetricsStats)
	resp.LabelValueCountByLabelName = toStats(st.CardinalityLabelStats)
	resp.MemoryInBytesByLabelName = toStats(st.LabelValueStats)
	resp.SeriesCountByLabelValuePair = toStats(st.LabelValuePairsStats)
	return resp, nil
}

func toStats(in []index.Stat) []*arguspb.CardinalityStat {
	out := make([]*arguspb.CardinalityStat, len(in))
	for i, s := range in {
		out[i] = &arguspb.CardinalityStat{Name: s.Name, Value: s.Count}
	}
	return out
}

// chunkStats returns the number of chunks in memory and the min and max
// time of their samples (math.MaxInt64 and math.MinInt64 without any). It
// locks each series in turn.
func (h *tenantHead) chunkStats() (n, mint, maxt int64) {
	mint, maxt = math.MaxInt64, math.MinInt64
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := s.finished; c != nil; c = c.next {
			n++
			mint, maxt = min(mint, c.minT), max(maxt, c.maxT)
		}
		if s.hasOpenLocked() {
			n++
			mint, maxt = min(mint, s.openMinTLocked()), max(maxt, s.openMaxTLocked())
		}
		s.hist.stats(&n, &mint, &maxt)
	})
	return n, mint, maxt
}

// LabelNamesAndValues streams every label name of the tenant's in-memory
// series that match all matchers (every series without matchers) with its
// sorted values, names in order, each name whole in one message.
func (a *AdminServer) LabelNamesAndValues(req *arguspb.LabelNamesAndValuesRequest, stream grpc.ServerStreamingServer[arguspb.LabelNamesAndValuesResponse]) error {
	ctx := stream.Context()
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return grpcError(err)
	}
	h, err := a.adminHead(ctx)
	if err != nil || h == nil {
		return grpcError(err)
	}
	values, err := h.namesAndValues(ctx, ms)
	if err != nil {
		return grpcError(err)
	}
	var (
		batch []*arguspb.LabelNameValues
		size  int
	)
	for _, name := range slices.Sorted(maps.Keys(values)) {
		batch = append(batch, &arguspb.LabelNameValues{Name: name, Values: values[name]})
		size += len(values[name])
		if len(batch) >= namesPerMessage || size >= valuesPerMessage {
			if err := stream.Send(&arguspb.LabelNamesAndValuesResponse{Items: batch}); err != nil {
				return grpcError(err)
			}
			batch, size = nil, 0
		}
	}
	if len(batch) > 0 {
		return grpcError(stream.Send(&arguspb.LabelNamesAndValuesResponse{Items: batch}))
	}
	return nil
}

// namesAndValues returns the sorted values of each label name of the head
// series matching ms: from the postings index alone without matchers, else
// from the labels of the matching series.
func (h *tenantHead) namesAndValues(ctx context.Context, ms []*labels.Matcher) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ms) == 0 {
		for _, name := range h.postings.LabelNames() {
			vs := h.postings.LabelValues(name)
			slices.Sort(vs)
			out[name] = vs
		}
		return out, ctx.Err()
	}
	refs, err := h.matching(ctx, ms)
	if err != nil {
		return nil, err
	}
	sets := map[string]map[string]struct{}{}
	err = h.forSeries(ctx, refs, func(lset labels.Labels) {
		lset.Range(func(l labels.Label) {
			if sets[l.Name] == nil {
				sets[l.Name] = map[string]struct{}{}
			}
			sets[l.Name][l.Value] = struct{}{}
		})
	})
	for name, set := range sets {
		out[name] = slices.Sorted(maps.Keys(set))
	}
	return out, err
}

// matching returns the refs of the head series matching ms, sorted.
func (h *tenantHead) matching(ctx context.Context, ms []*labels.Matcher) ([]promstorage.SeriesRef, error) {
	p, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	refs, err := index.ExpandPostings(p)
	if err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	return refs, nil
}

// forSeries calls f with the labels of each head series of refs still in
// the head, checking ctx every checkCtxEvery series.
func (h *tenantHead) forSeries(ctx context.Context, refs []promstorage.SeriesRef, f func(labels.Labels)) error {
	for n, ref := range refs {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if s := h.series.getByRef(chunks.HeadSeriesRef(ref)); s != nil {
			if lset, ok := h.series.labelsOf(s); ok {
				f(lset)
			}
		}
	}
	return nil
}

// LabelValuesCardinality counts, per value of each requested label name,
// the tenant's in-memory series that match all matchers, from the postings
// index (intersected with the matchers' postings when there are some).
func (a *AdminServer) LabelValuesCardinality(ctx context.Context, req *arguspb.LabelValuesCardinalityRequest) (*arguspb.LabelValuesCardinalityResponse, error) {
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return nil, grpcError(err)
	}
	if len(req.GetLabelNames()) == 0 {
		return nil, grpcError(fmt.Errorf("%w: no label names", ErrInvalidAdminRequest))
	}
	h, err := a.adminHead(ctx)
	if err != nil || h == nil {
		return &arguspb.LabelValuesCardinalityResponse{}, grpcError(err)
	}
	var selected []promstorage.SeriesRef
	if len(ms) > 0 {
		if selected, err = h.matching(ctx, ms); err != nil {
			return nil, grpcError(err)
		}
	}
	resp := &arguspb.LabelValuesCardinalityResponse{NumSeries: uint64(h.memorySeries())}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(req.GetLabelNames()))) {
		item, err := h.valueCounts(ctx, name, ms, selected)
		if err != nil {
			return nil, grpcError(err)
		}
		if len(item.Values) > 0 {
			resp.Items = append(resp.Items, item)
		}
	}
	return resp, nil
}

// valueCounts counts the series of each value of name, among selected if
// there are matchers.
func (h *tenantHead) valueCounts(ctx context.Context, name string, ms []*labels.Matcher, selected []promstorage.SeriesRef) (*arguspb.LabelValueCounts, error) {
	vals := h.postings.LabelValues(name)
	slices.Sort(vals)
	item := &arguspb.LabelValueCounts{Name: name}
	for _, v := range vals {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := h.postings.Postings(ctx, name, v)
		if len(ms) > 0 {
			p = index.Intersect(p, index.NewListPostings(selected))
		}
		var n uint64
		for p.Next() {
			n++
		}
		if err := p.Err(); err != nil {
			return nil, fmt.Errorf("postings of %s=%q: %w", name, v, err)
		}
		if n > 0 {
			item.Values = append(item.Values, &arguspb.CardinalityStat{Name: v, Value: n})
		}
	}
	return item, nil
}

// stats computes the cardinality statistics of the postings as
// Prometheus's index.MemPostings.Stats does: the series count of each value
// of label (the metric names), the number of values of each label name, the
// bytes of each label name's pairs (sizeOf of a name, a value and its
// series count, summed over the values), the series count of each pair and
// the number of pairs; each list its limit largest entries, ties by name.
// It holds the read lock for one pass over the index.
func (p *headPostings) stats(label string, limit int, sizeOf func(name, value string, n uint64) uint64) *index.PostingsStats {
	var metrics, names, sizes, pairs []index.Stat
	st := &index.PostingsStats{}
	p.mu.RLock()
	for name, values := range p.m {
		names = append(names, index.Stat{Name: name, Count: uint64(len(values))})
		st.NumLabelPairs += len(values)
		var size uint64
		for value, refs := range values {
			n := uint64(len(refs))
			if name == label {
				metrics = append(metrics, index.Stat{Name: value, Count: n})
			}
			pairs = append(pairs, index.Stat{Name: name + "=" + value, Count: n})
			size += sizeOf(name, value, n)
		}
		sizes = append(sizes, index.Stat{Name: name, Count: size})
	}
	p.mu.RUnlock()
	st.CardinalityMetricsStats = topStats(metrics, limit)
	st.CardinalityLabelStats = topStats(names, limit)
	st.LabelValueStats = topStats(sizes, limit)
	st.LabelValuePairsStats = topStats(pairs, limit)
	return st
}

// topStats returns the limit largest entries of s, highest first, ties by
// name.
func topStats(s []index.Stat, limit int) []index.Stat {
	slices.SortFunc(s, func(a, b index.Stat) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return s[:min(limit, len(s))]
}
