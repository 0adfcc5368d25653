package querier

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// Tenant federation (-tenant-federation.enabled), as in Cortex and Mimir: a
// read whose context names several tenants (X-Scope-OrgID: a|b) reads each
// of them as a single-tenant read, within that tenant's own query limits,
// and merges the results with Prometheus's merge querier. Every series gets
// the label __tenant_id__ naming its tenant; a series that already has one
// keeps its value as original___tenant_id__. Matchers on __tenant_id__ pick
// the tenants to read and are not sent to them; matchers on
// original___tenant_id__ are sent as matchers on __tenant_id__. A context
// naming one tenant (or the same one twice) reads it alone, unlabelled.

const (
	// tenantLabel names the tenant of each series of a federated read.
	tenantLabel = "__tenant_id__"
	// originalTenantLabel keeps a series' own __tenant_id__ in a federated
	// read.
	originalTenantLabel = "original___tenant_id__"
)

// federated returns a querier over the tenants of ids that matchers select,
// and the matchers to pass it. The tenants are read in parallel for Select
// and one after the other for the label calls, which are small.
func (tq *tenantQuerier) federated(ids []string, matchers []*labels.Matcher) (storage.ChunkQuerier, []*labels.Matcher) {
	var (
		byTenant  []*labels.Matcher
		forwarded = make([]*labels.Matcher, 0, len(matchers))
	)
	for _, m := range matchers {
		switch m.Name {
		case tenantLabel:
			byTenant = append(byTenant, m)
		case originalTenantLabel:
			renamed := *m // Keeps the compiled regular expression.
			renamed.Name = tenantLabel
			forwarded = append(forwarded, &renamed)
		default:
			forwarded = append(forwarded, m)
		}
	}
	var views []storage.ChunkQuerier
	for _, id := range ids {
		if slices.IndexFunc(byTenant, func(m *labels.Matcher) bool { return !m.Matches(id) }) < 0 {
			views = append(views, &tenantView{tq: tq, id: id})
		}
	}
	// Every view is a primary: an error of one fails the read, as a
	// secondary's would only be a warning. The series of two tenants
	// differ by __tenant_id__, so the merger never merges any.
	return storage.NewMergeChunkQuerier(views, nil, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)), forwarded
}

// tenantView is the single-tenant read of tenant id within a federated read,
// its series labelled with the tenant. It is safe for concurrent use.
type tenantView struct {
	tq *tenantQuerier
	id string
}

// Select starts reading the tenant's series and returns at once, so that the
// merge querier, which calls the Selects of its queriers one after the
// other, reads the tenants in parallel; the set waits for the read on first
// use. The series come sorted whatever sortSeries says: the merge needs it.
func (v *tenantView) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	ctx = tenant.With(ctx, v.id)
	p := &pendingSeriesSet{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.set = v.labelled(v.tq.selectTenant(ctx, v.id, true, hints, matchers...))
	}()
	return p
}

// labelled returns the series of set with __tenant_id__ set to the tenant,
// sorted again: the label can move a series past another (it sorts after
// upper-case names and "__name__", so {Zone="x"} < {Zone="x",__name__="y"}
// becomes {Zone="x",__name__="y",__tenant_id__="a"} < {Zone="x",__tenant_id__="a"}).
func (v *tenantView) labelled(set storage.ChunkSeriesSet) storage.ChunkSeriesSet {
	var (
		out []storage.ChunkSeries
		b   labels.Builder
	)
	for set.Next() {
		s := set.At()
		b.Reset(s.Labels())
		if orig := s.Labels().Get(tenantLabel); orig != "" {
			b.Set(originalTenantLabel, orig)
		}
		b.Set(tenantLabel, v.id)
		out = append(out, &relabelledSeries{ChunkSeries: s, lset: b.Labels()})
	}
	if err := set.Err(); err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	slices.SortFunc(out, func(a, b storage.ChunkSeries) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &sliceChunkSeriesSet{series: out, warnings: set.Warnings()}
}

// LabelNames returns the tenant's label names, with __tenant_id__ when it
// has any, and its own __tenant_id__ renamed original___tenant_id__.
func (v *tenantView) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, ws, err := v.tq.labelNamesTenant(tenant.With(ctx, v.id), v.id, hints, matchers...)
	if err != nil || len(names) == 0 {
		return names, ws, err
	}
	out := make([]string, 0, len(names)+1)
	for _, n := range names {
		if n == tenantLabel {
			n = originalTenantLabel
		}
		out = append(out, n)
	}
	out = append(out, tenantLabel)
	slices.Sort(out)
	return slices.Compact(out), ws, nil
}

// LabelValues returns the tenant's values of label name. The values of
// __tenant_id__ are the tenant itself, whatever the other matchers, as in
// Cortex: the matchers on __tenant_id__ already picked the tenants.
func (v *tenantView) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	switch name {
	case tenantLabel:
		return []string{v.id}, nil, nil
	case originalTenantLabel:
		name = tenantLabel
	}
	return v.tq.labelValuesTenant(tenant.With(ctx, v.id), v.id, name, hints, matchers...)
}

// Close does nothing: the tenantQuerier owns the backend.
func (*tenantView) Close() error { return nil }

// relabelledSeries is a chunk series under other labels.
type relabelledSeries struct {
	storage.ChunkSeries
	lset labels.Labels
}

func (s *relabelledSeries) Labels() labels.Labels { return s.lset }

// pendingSeriesSet is a set being read by another goroutine, which closes
// done once set is ready. Every method waits for it.
type pendingSeriesSet struct {
	done chan struct{}
	set  storage.ChunkSeriesSet // written before done is closed
}

func (p *pendingSeriesSet) wait() storage.ChunkSeriesSet {
	<-p.done
	return p.set
}

func (p *pendingSeriesSet) Next() bool                        { return p.wait().Next() }
func (p *pendingSeriesSet) At() storage.ChunkSeries           { return p.wait().At() }
func (p *pendingSeriesSet) Err() error                        { return p.wait().Err() }
func (p *pendingSeriesSet) Warnings() annotations.Annotations { return p.wait().Warnings() }

// sliceChunkSeriesSet iterates series in order.
type sliceChunkSeriesSet struct {
	series   []storage.ChunkSeries
	warnings annotations.Annotations
	cur      int // index+1 of the current series; 0 before the first Next
}

func (s *sliceChunkSeriesSet) Next() bool {
	if s.cur >= len(s.series) {
		return false
	}
	s.cur++
	return true
}

func (s *sliceChunkSeriesSet) At() storage.ChunkSeries           { return s.series[s.cur-1] }
func (*sliceChunkSeriesSet) Err() error                          { return nil }
func (s *sliceChunkSeriesSet) Warnings() annotations.Annotations { return s.warnings }
