package storage

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Select returns, sorted by labels, every series of tenant that matches all
// matchers and has a chunk overlapping [mint, maxt], with those chunks in
// time order, merged over partitions, tombstones and the tenant's retention
// applied. The result is owned by the caller.
//
// A chunk that holds deleted samples (or samples older than the retention
// cut-off) is returned re-encoded without them; a series left without
// samples in the range is not returned.
func (db *DB) Select(tenant string, mint, maxt int64, opts SelectOptions, ms ...*labels.Matcher) ([]Series, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, ErrClosed
	}
	flt := db.filterFor(tenant)
	mint, flt = flt.forRange(mint, maxt)
	if mint > maxt {
		return nil, nil
	}
	popts := opts
	if !flt.empty() {
		popts.SkipChunks = false     // the filter needs the samples
		popts.KeepTranscoded = false // and re-encodes XOR chunks
	}
	var lists [][]Series
	for _, p := range db.overlapping(mint, maxt) {
		if db.hidden(p, tenant) {
			continue
		}
		ss, err := p.r.Select(tenant, mint, maxt, popts, ms)
		if err != nil {
			return nil, err
		}
		if len(ss) > 0 {
			lists = append(lists, ss)
		}
	}
	out := mergeSeriesLists(lists)
	if flt.empty() {
		return out, nil
	}
	kept := out[:0]
	for _, s := range out {
		ok, err := flt.apply(&s)
		if err != nil {
			return nil, err
		}
		s.Chunks = slices.DeleteFunc(s.Chunks, func(c Chunk) bool { return c.MaxTime < mint || c.MinTime > maxt })
		if !ok || len(s.Chunks) == 0 {
			continue
		}
		if opts.SkipChunks {
			s.Chunks = nil
		}
		kept = append(kept, s)
	}
	return kept, nil
}

// mergeSeriesLists merges lists of series sorted by labels into one: the
// chunks of a series in several lists are concatenated in time order, and
// identical chunks (the same data in two partitions) kept once. Lists are
// merged pairwise, so the cost is n log(lists).
func mergeSeriesLists(lists [][]Series) []Series {
	if len(lists) == 0 {
		return nil
	}
	for len(lists) > 1 {
		next := make([][]Series, 0, (len(lists)+1)/2)
		for i := 0; i+1 < len(lists); i += 2 {
			next = append(next, mergeTwo(lists[i], lists[i+1]))
		}
		if len(lists)%2 == 1 {
			next = append(next, lists[len(lists)-1])
		}
		lists = next
	}
	return lists[0]
}

// mergeTwo merges two lists of series sorted by labels.
func mergeTwo(a, b []Series) []Series {
	out := make([]Series, 0, max(len(a), len(b)))
	for len(a) > 0 && len(b) > 0 {
		switch c := labels.Compare(a[0].Labels, b[0].Labels); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			s := a[0]
			if len(b[0].Chunks) > 0 {
				s.Chunks = mergeSeriesChunks(append(slices.Clip(s.Chunks), b[0].Chunks...))
			}
			out, a, b = append(out, s), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// mergeSeriesChunks sorts chunks by time and removes identical duplicates.
func mergeSeriesChunks(cs []Chunk) []Chunk {
	slices.SortStableFunc(cs, func(a, b Chunk) int {
		if a.MinTime != b.MinTime {
			return cmpInt64(a.MinTime, b.MinTime)
		}
		return cmpInt64(a.MaxTime, b.MaxTime)
	})
	return slices.CompactFunc(cs, sameSelected)
}

// sameSelected reports whether a and b are the same chunk: the same data, or
// one transcoded (SelectOptions.KeepTranscoded) and the other the XOR bytes
// it rebuilds, as when a raw part and a compressed one hold it.
func sameSelected(a, b Chunk) bool {
	if a.MinTime != b.MinTime || a.MaxTime != b.MaxTime {
		return false
	}
	if a.Encoding == b.Encoding {
		return bytes.Equal(a.Data, b.Data)
	}
	if b.Encoding == EncTranscodedXOR {
		a, b = b, a
	}
	if a.Encoding != EncTranscodedXOR || b.Encoding != chunkenc.EncXOR {
		return false
	}
	x, ok := untranscodeXOR(a.Data)
	return ok && bytes.Equal(x, b.Data)
}

// LabelNames returns the sorted label names of tenant's series that match
// all matchers in the partitions overlapping [mint, maxt] (clipped to the
// tenant's retention). A partition that overlaps the range contributes all
// its names, as a Prometheus block does; without matchers that is read from
// each partition's label-values index alone. Tombstones are not applied.
func (db *DB) LabelNames(tenant string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return db.collectStrings(tenant, mint, maxt, func(r partitionReader) ([]string, error) {
		return r.LabelNames(tenant, ms)
	})
}

// LabelValues returns the sorted values of name, as LabelNames does names.
func (db *DB) LabelValues(tenant, name string, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	return db.collectStrings(tenant, mint, maxt, func(r partitionReader) ([]string, error) {
		return r.LabelValues(tenant, name, ms)
	})
}

// collectStrings returns the sorted union of fn over the partitions of
// tenant overlapping [mint, maxt].
func (db *DB) collectStrings(tenant string, mint, maxt int64, fn func(partitionReader) ([]string, error)) ([]string, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, ErrClosed
	}
	if c, ok := db.cutoffs[tenant]; ok {
		mint = max(mint, c)
	}
	if mint > maxt {
		return nil, nil
	}
	var lists [][]string
	for _, p := range db.overlapping(mint, maxt) {
		if db.hidden(p, tenant) {
			continue
		}
		ss, err := fn(p.r)
		if err != nil {
			return nil, err
		}
		if len(ss) > 0 {
			if !slices.IsSorted(ss) {
				slices.Sort(ss)
			}
			lists = append(lists, ss)
		}
	}
	return mergeStrings(lists), nil
}

// mergeStrings merges sorted lists into one sorted list without
// duplicates, pairwise: n log(lists) rather than sorting everything.
func mergeStrings(lists [][]string) []string {
	if len(lists) == 0 {
		return nil
	}
	for len(lists) > 1 {
		next := make([][]string, 0, (len(lists)+1)/2)
		for i := 0; i+1 < len(lists); i += 2 {
			a, b := lists[i], lists[i+1]
			out := make([]string, 0, max(len(a), len(b)))
			for len(a) > 0 && len(b) > 0 {
				switch {
				case a[0] < b[0]:
					out, a = append(out, a[0]), a[1:]
				case a[0] > b[0]:
					out, b = append(out, b[0]), b[1:]
				default:
					out, a, b = append(out, a[0]), a[1:], b[1:]
				}
			}
			next = append(next, append(append(out, a...), b...))
		}
		if len(lists)%2 == 1 {
			next = append(next, lists[len(lists)-1])
		}
		lists = next
	}
	return slices.Compact(lists[0])
}

// LastTime returns the max time of the newest persisted chunk of lbls, and
// false if there is none. Tombstones and retention are not applied: it
// tells a replaying writer which chunks are already stored.
func (db *DB) LastTime(tenant string, lbls labels.Labels) (int64, bool, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return 0, false, ErrClosed
	}
	last, found := int64(math.MinInt64), false
	for i := len(db.parts) - 1; i >= 0; i-- {
		p := db.parts[i]
		if db.hidden(p, tenant) || (found && p.maxT <= last) {
			continue
		}
		t, ok, err := p.r.LastTime(tenant, lbls)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || t > last) {
			last, found = t, true
		}
	}
	if !found {
		return 0, false, nil
	}
	return last, true, nil
}

// PartitionInfo describes one partition file.
type PartitionInfo struct {
	Path             string
	MinTime, MaxTime int64
	Level            int // 0: written by flushes; 1+: immutable, compacted
	Bytes            int64
	Tenants          int
}

// TenantPartitionStats is one tenant's share of one partition.
type TenantPartitionStats struct {
	Partition        PartitionInfo
	Series, Chunks   int64
	Samples          int64
	Bytes            int64 // the tenant's chunk and index bytes in the partition, approximately
	MinTime, MaxTime int64
	Tombstones       int
}

// Tenants returns the tenants with persisted data, sorted.
func (db *DB) Tenants() ([]string, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, ErrClosed
	}
	return db.tenantsLocked(), nil
}

// tenantsLocked returns the sorted tenants with data. Callers hold mu.
func (db *DB) tenantsLocked() []string {
	var out []string
	for _, p := range db.parts {
		for _, t := range p.r.Tenants() {
			if !db.hidden(p, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Partitions returns every partition, oldest first.
func (db *DB) Partitions() []PartitionInfo {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]PartitionInfo, 0, len(db.parts))
	for _, p := range db.parts {
		out = append(out, db.info(p))
	}
	return out
}

// info describes p. Callers hold mu.
func (db *DB) info(p *partition) PartitionInfo {
	path := filepath.Join(db.dir, p.name)
	pi := PartitionInfo{Path: path, MinTime: p.minT, MaxTime: p.maxT, Level: p.level}
	if st, err := os.Stat(path); err == nil {
		pi.Bytes = st.Size()
	}
	for _, t := range p.r.Tenants() {
		if !db.hidden(p, t) {
			pi.Tenants++
		}
	}
	return pi
}

// TenantStats returns tenant's share of each partition, oldest first. It
// reads the headers of all the tenant's chunks.
func (db *DB) TenantStats(tenant string) ([]TenantPartitionStats, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, ErrClosed
	}
	var out []TenantPartitionStats
	for _, p := range db.parts {
		if db.hidden(p, tenant) || !p.hasTenant(tenant) {
			continue
		}
		st, err := p.r.Stats(tenant)
		if err != nil {
			return nil, err
		}
		st.Partition = db.info(p)
		for _, e := range db.tombs[tenant] {
			if e.t.MinTime <= p.maxT && e.t.MaxTime >= p.minT {
				st.Tombstones++
			}
		}
		out = append(out, st)
	}
	return out, nil
}
