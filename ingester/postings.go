package ingester

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/index"
)

// headPostings is the inverted index of a tenant head: for every label
// name and value, the sorted refs of the series that have it, and the refs
// of every series. It is Prometheus's index.MemPostings cut to what a head
// of this package needs, with one difference that matters for many small
// tenants: it starts empty (MemPostings preallocates two maps of 512 names,
// about 36 KB) and grows with the series.
//
// Refs are mostly added in increasing order (the head creates them so under
// its createMu), and a list stays sorted by appending; WAL replay adds them
// in the order their series records were logged, which may differ, and Add
// then moves the new ref back into place, as MemPostings does. All methods
// are safe for concurrent use. A list handed to a reader is not written
// within its length again once the head is read (after replay): Add only
// appends past it, and Delete replaces it.
type headPostings struct {
	mu sync.RWMutex
	m  map[string]map[string][]promstorage.SeriesRef // guarded by mu: name → value → sorted refs
	// all holds every ref, sorted. Guarded by mu.
	all []promstorage.SeriesRef
}

func newHeadPostings() *headPostings {
	return &headPostings{m: map[string]map[string][]promstorage.SeriesRef{}}
}

// Add indexes the series ref with the symbolic labels syms of table t,
// which the caller may read (symbols.go). The lists are keyed by the
// table's strings, so a label's text is in memory once for both.
func (p *headPostings) Add(ref promstorage.SeriesRef, t *symbolTable, syms string) {
	p.mu.Lock()
	t.rangeSymbols(syms, func(name, value string) bool {
		vm := p.m[name]
		if vm == nil {
			vm = map[string][]promstorage.SeriesRef{}
			p.m[name] = vm
		}
		vm[value] = appendSorted(vm[value], ref)
		return true
	})
	p.all = appendSorted(p.all, ref)
	p.mu.Unlock()
}

// appendSorted appends ref to the sorted refs, keeping them sorted: one
// comparison when ref is the greatest.
func appendSorted(refs []promstorage.SeriesRef, ref promstorage.SeriesRef) []promstorage.SeriesRef {
	refs = append(refs, ref)
	for i := len(refs) - 1; i > 0 && refs[i] < refs[i-1]; i-- {
		refs[i], refs[i-1] = refs[i-1], refs[i]
	}
	return refs
}

// Delete removes the refs of deleted from the lists of the labels in
// affected (every label of a deleted series must be there) and from all.
func (p *headPostings) Delete(deleted map[promstorage.SeriesRef]struct{}, affected map[labels.Label]struct{}) {
	if len(deleted) == 0 {
		return
	}
	keep := func(refs []promstorage.SeriesRef) []promstorage.SeriesRef {
		out := make([]promstorage.SeriesRef, 0, len(refs))
		for _, r := range refs {
			if _, ok := deleted[r]; !ok {
				out = append(out, r)
			}
		}
		return out
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range affected {
		vm := p.m[l.Name]
		if _, ok := vm[l.Value]; !ok {
			continue
		}
		refs := keep(vm[l.Value])
		switch {
		case len(refs) > 0:
			vm[l.Value] = refs
		case len(vm) > 1:
			delete(vm, l.Value)
		default:
			delete(p.m, l.Name)
		}
	}
	p.all = keep(p.all)
}

// All returns the postings of every series.
func (p *headPostings) All() index.Postings {
	p.mu.RLock()
	all := p.all
	p.mu.RUnlock()
	return index.NewListPostings(all)
}

// numSeries returns the number of series indexed.
func (p *headPostings) numSeries() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.all)
}

// LabelNames returns the label names of the indexed series, sorted.
func (p *headPostings) LabelNames() []string {
	p.mu.RLock()
	names := make([]string, 0, len(p.m))
	for name := range p.m {
		names = append(names, name)
	}
	p.mu.RUnlock()
	slices.Sort(names)
	return names
}

// LabelValues returns the values of label name over the indexed series,
// sorted.
func (p *headPostings) LabelValues(name string) []string {
	p.mu.RLock()
	vm := p.m[name]
	values := make([]string, 0, len(vm))
	for v := range vm {
		values = append(values, v)
	}
	p.mu.RUnlock()
	slices.Sort(values)
	return values
}

// Postings returns the merged postings of the values of label name.
func (p *headPostings) Postings(ctx context.Context, name string, values ...string) index.Postings {
	its := make([]index.Postings, 0, len(values))
	p.mu.RLock()
	vm := p.m[name]
	for _, v := range values {
		if refs := vm[v]; len(refs) > 0 {
			its = append(its, index.NewListPostings(refs))
		}
	}
	p.mu.RUnlock()
	return merge(ctx, its)
}

// PostingsForLabelMatching returns the merged postings of the values of
// label name for which match is true. match runs without the lock held: a
// slow regular expression must not hold up the series a push creates.
func (p *headPostings) PostingsForLabelMatching(ctx context.Context, name string, match func(string) bool) index.Postings {
	values := p.valuesOf(name)
	matched := values[:0] // Reuses values' array: the filter is always behind.
	for n, v := range values {
		if n%checkCtxEvery == 0 && ctx.Err() != nil {
			return index.ErrPostings(ctx.Err())
		}
		if match(v) {
			matched = append(matched, v)
		}
	}
	return p.Postings(ctx, name, matched...)
}

// PostingsForAllLabelValues returns the postings of the series that have
// label name, whatever its value.
func (p *headPostings) PostingsForAllLabelValues(ctx context.Context, name string) index.Postings {
	p.mu.RLock()
	vm := p.m[name]
	its := make([]index.Postings, 0, len(vm))
	for _, refs := range vm {
		its = append(its, index.NewListPostings(refs))
	}
	p.mu.RUnlock()
	return merge(ctx, its)
}

// valuesOf returns the values of label name, unsorted, in a new slice.
func (p *headPostings) valuesOf(name string) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	vm := p.m[name]
	values := make([]string, 0, len(vm))
	for v := range vm {
		values = append(values, v)
	}
	return values
}

// merge is index.Merge without its cost for zero or one list.
func merge(ctx context.Context, its []index.Postings) index.Postings {
	switch len(its) {
	case 0:
		return index.EmptyPostings()
	case 1:
		return its[0]
	}
	return index.Merge(ctx, its...)
}
