package storage

import (
	"context"
	"errors"
	"iter"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// mergeSource is the partSource of a compaction or a rewrite: the k-way
// merge by labels of its sources' series, without what the DB's filters
// drop (tombstones, retention, a tenant deletion in progress).
type mergeSource struct {
	ctx     context.Context
	sources []*partition
	hidden  func(p *partition, tenant string) bool
	filter  func(tenant string) *tenantFilter
}

// Tenants returns the tenants of the sources, sorted.
func (m *mergeSource) Tenants() []string {
	var out []string
	for _, p := range m.sources {
		for _, t := range p.r.Tenants() {
			if !m.hidden(p, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// errStopSeries stops a source's Series walk early.
var errStopSeries = errors.New("stop")

// seriesOf turns p's Series walk for tenant into an iterator.
func seriesOf(p *partition, tenant string) iter.Seq2[Series, error] {
	return func(yield func(Series, error) bool) {
		err := p.r.Series(tenant, func(s Series) error {
			if !yield(s, nil) {
				return errStopSeries
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopSeries) {
			yield(Series{}, err)
		}
	}
}

// Series calls fn with tenant's merged series, sorted by labels, each with
// its chunks in time order and at least one chunk.
func (m *mergeSource) Series(tenant string, fn func(Series) error) error {
	type cursor struct {
		next  func() (Series, error, bool)
		cur   Series
		taken bool // cur goes into the series being emitted
	}
	var curs []*cursor
	for _, p := range m.sources {
		if m.hidden(p, tenant) {
			continue
		}
		next, stop := iter.Pull2(seriesOf(p, tenant))
		defer stop()
		c := &cursor{next: next}
		s, err, ok := next()
		if err != nil {
			return err
		}
		if ok {
			c.cur = s
			curs = append(curs, c)
		}
	}
	flt := m.filter(tenant)
	for n := 0; len(curs) > 0; n++ {
		if n%1024 == 0 && m.ctx.Err() != nil {
			return m.ctx.Err()
		}
		least := curs[0].cur.Labels
		for _, c := range curs[1:] {
			if labels.Compare(c.cur.Labels, least) < 0 {
				least = c.cur.Labels
			}
		}
		out := Series{Labels: least}
		same := 0
		for _, c := range curs {
			c.taken = labels.Equal(c.cur.Labels, least)
			if c.taken {
				out.Chunks = append(out.Chunks, c.cur.Chunks...)
				same++
			}
		}
		if same > 1 {
			out.Chunks = mergeSeriesChunks(out.Chunks)
		}
		ok, err := flt.apply(&out)
		if err != nil {
			return err
		}
		if ok {
			if err := fn(out); err != nil {
				return err
			}
		}
		// Advance only after fn: the series may alias a source's memory
		// until its walk goes on.
		kept := curs[:0]
		for _, c := range curs {
			if c.taken {
				s, err, ok := c.next()
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				c.cur = s
			}
			kept = append(kept, c)
		}
		curs = kept
	}
	return nil
}
