package ingester

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// Label names and values of the head, answered from its postings with
// Prometheus's head semantics: when the head's time span overlaps the
// request, every series of the head counts, whether or not it has samples in
// the range (as a Prometheus head or block does). Without matchers the answer
// is the postings' names or values, with no walk over the series; with
// matchers it is read from the matching series only.

// headNames returns the sorted label names of the head series that match ms
// (every series if ms is empty), or none if the head does not overlap
// [mint, maxt].
func (h *tenantHead) headNames(ctx context.Context, ms []*labels.Matcher, mint, maxt int64) ([]string, error) {
	if !h.overlaps(mint, maxt) {
		return nil, nil
	}
	if len(ms) == 0 {
		return h.postings.LabelNames(), nil
	}
	set := map[string]struct{}{}
	err := h.forMatching(ctx, ms, func(s *memSeries) {
		h.series.rangeLabels(s, func(name, _ string) bool {
			set[name] = struct{}{}
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	return sortedKeys(set), nil
}

// headValues returns the sorted values of label name over the head series
// that match ms, or none if the head does not overlap [mint, maxt]. As
// Prometheus's labelValuesWithMatchers, the values are first filtered by
// the matchers of name itself; the other matchers select series, whose
// values are found by intersecting postings or, when the series are fewer
// than the values, by reading the label of each.
func (h *tenantHead) headValues(ctx context.Context, name string, ms []*labels.Matcher, mint, maxt int64) ([]string, error) {
	if !h.overlaps(mint, maxt) {
		return nil, nil
	}
	values := h.postings.LabelValues(name)
	others := false
	for _, m := range ms {
		if m.Name != name {
			others = true
			continue
		}
		values = slices.DeleteFunc(values, func(v string) bool { return !m.Matches(v) })
	}
	if !others || len(values) == 0 {
		return values, nil
	}
	p, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return nil, err
	}
	refs, err := index.ExpandPostings(p)
	if err != nil {
		return nil, err
	}
	if len(refs) > len(values) {
		return h.valuesByPostings(ctx, name, values, refs)
	}
	set := map[string]struct{}{}
	for n, ref := range refs {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if s := h.series.getByRef(chunks.HeadSeriesRef(ref)); s != nil {
			if v, _ := h.series.labelValue(s, name); v != "" {
				set[v] = struct{}{}
			}
		}
	}
	return sortedKeys(set), nil
}

// valuesByPostings returns the values, of the sorted values of label name,
// whose postings intersect refs, in order.
func (h *tenantHead) valuesByPostings(ctx context.Context, name string, values []string, refs []promstorage.SeriesRef) ([]string, error) {
	candidates := make([]index.Postings, len(values))
	for k, v := range values {
		candidates[k] = h.postings.Postings(ctx, name, v)
	}
	found, err := index.FindIntersectingPostings(index.NewListPostings(refs), candidates)
	if err != nil {
		return nil, err
	}
	slices.Sort(found)
	out := make([]string, len(found))
	for k, idx := range found {
		out[k] = values[idx]
	}
	return out, nil
}

// forMatching calls f for every head series that matches ms.
func (h *tenantHead) forMatching(ctx context.Context, ms []*labels.Matcher, f func(*memSeries)) error {
	p, err := postingsForMatchers(ctx, h.postings, ms)
	if err != nil {
		return err
	}
	for n := 0; p.Next(); n++ {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if s := h.series.getByRef(chunks.HeadSeriesRef(p.At())); s != nil {
			f(s)
		}
	}
	return p.Err()
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// spanRefreshMs is how long, in the head's clock, a computed min time of the
// head's in-memory chunks is reused.
const spanRefreshMs = 10_000

// headSpan caches the min time of the chunks in memory of a head: finding it
// visits every series, and label reads need it only when a request ends
// before the head's newest sample. Safe for concurrent use. mu is taken
// before a series' mu and the stripe locks (by the walk), never after.
type headSpan struct {
	mu sync.Mutex
	// computed is the head clock at the last walk, math.MinInt64 before
	// the first. Guarded by mu.
	computed int64
	// minT is the min time of the chunks in memory at the walk (noTime if
	// none), floor the oldest sample time a push could append since then.
	// Guarded by mu.
	minT, floor int64
}

// overlaps reports whether the head's span, from the min time of its chunks
// in memory to its newest sample, overlaps [mint, maxt].
//
// Pushes can append below the min time found by a walk, but never below the
// floor of minValidTime at the walk, since the head's max time only grows;
// flushes only raise the min time. So, until the next walk, the span starts
// at or after min(minT, floor), and a request that ends at or after minT,
// or before both, is answered from the cache (a request between the two
// walks again, to be exact). The cache may then keep, for spanRefreshMs, a
// min time that flushes have raised: a head of chunks just flushed may still
// answer, as a Prometheus head does until its truncation.
func (h *tenantHead) overlaps(mint, maxt int64) bool {
	headMax := h.maxT.Load()
	if headMax == math.MinInt64 || mint > headMax || maxt < mint {
		return false
	}
	if maxt >= headMax {
		return true
	}
	sp := h.series.span()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := h.nowMs()
	stale := sp.computed == math.MinInt64 || now-sp.computed > spanRefreshMs || now < sp.computed
	if stale || (maxt >= sp.floor && maxt < sp.minT) {
		sp.floor = minValidTime(h.maxT.Load()) // Read before the walk: appends after it are above.
		sp.minT = h.minMemoryTime()
		sp.computed = now
		return maxt >= sp.minT
	}
	return maxt >= min(sp.minT, sp.floor)
}
