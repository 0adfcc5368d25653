package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// Select returns, sorted by labels, every series that matches all matchers
// and has a chunk overlapping [mint, maxt], with those chunks in time order.
// No matchers select all series. With opts.SkipChunks the series are
// returned with nil Chunks. The result, chunk data included, is owned by the
// caller. Select reads a consistent snapshot and does not block Append.
func (s *ChunkStore) Select(mint, maxt int64, opts SelectOptions, matchers ...*labels.Matcher) ([]Series, error) {
	var out []Series
	err := s.view(func(r *reader) error {
		var err error
		out, err = r.selectSeries(mint, maxt, opts, matchers)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// selectSeries is Select on the buckets of r.
func (r *reader) selectSeries(mint, maxt int64, opts SelectOptions, matchers []*labels.Matcher) ([]Series, error) {
	if mint > maxt {
		return nil, nil
	}
	var (
		out []Series
		a   arena
		lb  = labels.NewScratchBuilder(8)
		cur = r.chunks.Cursor()
	)
	err := r.forEachSeries(mint, maxt, matchers, func(id uint64) error {
		chunks, ok, err := r.chunksInRange(cur, id, mint, maxt, chunkCopier(opts, &a))
		if err != nil || !ok {
			return err
		}
		enc, err := r.seriesLabels(id)
		if err != nil {
			return err
		}
		lbls, err := decodeLabels(enc, &a, &lb)
		if err != nil {
			return fmt.Errorf("series %d: %w", id, err)
		}
		out = append(out, Series{Labels: lbls, Chunks: chunks})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	return out, nil
}

// seriesLabels returns the encoded labels of series id, aliasing bbolt
// memory.
func (r *reader) seriesLabels(id uint64) ([]byte, error) {
	r.key = appendID(r.key[:0], id)
	enc := r.seriesFwd.get(r.series, r.key)
	if enc == nil {
		return nil, corruptf("series %d has a time range but no labels", id)
	}
	return enc, nil
}

// chunkCopier returns the function that turns a stored chunk into a returned
// one, or nil to only test that one exists.
func chunkCopier(opts SelectOptions, a *arena) func(chunkMeta) Chunk {
	if opts.SkipChunks {
		return nil
	}
	return func(m chunkMeta) Chunk {
		return Chunk{MinTime: m.minT, MaxTime: m.maxT, Encoding: m.enc, Data: a.copy(m.data)}
	}
}

// chunksInRange returns the chunks of series id that overlap [mint, maxt],
// and whether there is at least one. With a nil copyOut it only looks for
// the first one. The key order makes this one seek: the first key at or
// after id+mint is the first chunk that ends at or after mint, and the
// chunks that follow start ever later.
func (r *reader) chunksInRange(c *bbolt.Cursor, id uint64, mint, maxt int64, copyOut func(chunkMeta) Chunk) ([]Chunk, bool, error) {
	if r.chunkRefs != nil {
		return r.chunksByRef(id, mint, maxt, copyOut)
	}
	var (
		out   []Chunk
		found bool
	)
	r.key = appendChunkKey(r.key[:0], id, mint)
	for k, v := c.Seek(r.key); len(k) >= idLen && bytes.Equal(k[:idLen], r.key[:idLen]); k, v = c.Next() {
		m, err := decodeChunk(k, v)
		if err != nil {
			return nil, false, err
		}
		if m.minT > maxt {
			break
		}
		found = true
		if copyOut == nil {
			break
		}
		out = append(out, copyOut(m))
	}
	return out, found, nil
}

// forEachSeries calls fn, in ID order, with the ID of each series that
// matches all matchers and whose time range overlaps [mint, maxt]. The time
// range test reads series_time only, not labels or chunks. fn may use r.key.
func (r *reader) forEachSeries(mint, maxt int64, ms []*labels.Matcher, fn func(id uint64) error) error {
	ids, all, err := r.postingsForMatchers(ms)
	if err != nil {
		return err
	}
	if all {
		c := r.seriesTime.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != idLen {
				return corruptf("series time key of %d bytes", len(k))
			}
			if err := visitInRange(binary.BigEndian.Uint64(k), v, mint, maxt, fn); err != nil {
				return err
			}
		}
		return nil
	}
	for _, id := range ids {
		r.key = appendID(r.key[:0], id)
		if err := visitInRange(id, r.seriesTimeFwd.get(r.seriesTime, r.key), mint, maxt, fn); err != nil {
			return err
		}
	}
	return nil
}

// visitInRange calls fn(id) if the series_time value v overlaps [mint, maxt].
func visitInRange(id uint64, v []byte, mint, maxt int64, fn func(uint64) error) error {
	minT, maxT, err := decodeSeriesTime(v)
	if err != nil {
		return fmt.Errorf("series %d: %w", id, err)
	}
	if maxT < mint || minT > maxt {
		return nil
	}
	return fn(id)
}

// inRange reports whether series id has samples in [mint, maxt].
func (r *reader) inRange(id uint64, mint, maxt int64) (bool, error) {
	if mint == math.MinInt64 && maxt == math.MaxInt64 {
		return true, nil // every series has a chunk
	}
	in := false
	r.key = appendID(r.key[:0], id)
	err := visitInRange(id, r.seriesTime.Get(r.key), mint, maxt, func(uint64) error {
		in = true
		return nil
	})
	return in, err
}

// LabelNames returns the sorted label names of the series that match all
// matchers and have samples in [mint, maxt]. The result is owned by the
// caller.
//
// Without matchers it walks the postings name by name and stops at the
// first series in range of each name; with matchers it reads the labels of
// every matching series.
func (s *ChunkStore) LabelNames(mint, maxt int64, matchers ...*labels.Matcher) ([]string, error) {
	var names []string
	err := s.view(func(r *reader) error {
		var err error
		names, err = r.labelNames(mint, maxt, matchers)
		return err
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}

// labelNames is LabelNames on the buckets of r.
func (r *reader) labelNames(mint, maxt int64, matchers []*labels.Matcher) ([]string, error) {
	if mint > maxt {
		return nil, nil
	}
	if len(matchers) == 0 {
		return r.allLabelNames(mint, maxt)
	}
	var names []string
	seen := map[string]struct{}{}
	err := r.forEachSeries(mint, maxt, matchers, func(id uint64) error {
		enc, err := r.seriesLabels(id)
		if err != nil {
			return err
		}
		return rangeLabels(enc, func(name, _ []byte) bool {
			if _, ok := seen[string(name)]; !ok {
				seen[string(name)] = struct{}{}
				names = append(names, string(name))
			}
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// allLabelNames returns the names of the labels of the series in [mint,
// maxt], in order. After the first series in range of a name it seeks past
// the name: the keys of name n all start with n+0xff, and n's last byte is
// below 0xff, so n with its last byte incremented sorts right after them.
func (r *reader) allLabelNames(mint, maxt int64) ([]string, error) {
	var (
		names []string
		ids   []uint64 // scratch: the IDs of one entry
	)
	c := r.postings.Cursor()
	for k, v := c.First(); k != nil; {
		name, _, first, err := parsePostingKey(k)
		if err != nil {
			return nil, err
		}
		if ids, err = appendPostingIDs(ids[:0], first, v); err != nil {
			return nil, err
		}
		in, err := r.anyInRange(ids, mint, maxt)
		if err != nil {
			return nil, err
		}
		if !in {
			k, v = c.Next()
			continue
		}
		names = append(names, string(name))
		r.key = append(r.key[:0], name...)
		r.key[len(r.key)-1]++
		k, v = c.Seek(r.key)
	}
	return names, nil
}

// anyInRange reports whether any of the series ids has samples in [mint,
// maxt].
func (r *reader) anyInRange(ids []uint64, mint, maxt int64) (bool, error) {
	for _, id := range ids {
		if in, err := r.inRange(id, mint, maxt); in || err != nil {
			return in, err
		}
	}
	return false, nil
}

// LabelValues returns the sorted values of label name over the series that
// match all matchers and have samples in [mint, maxt]. It never returns "".
// The result is owned by the caller. It walks the postings of name once.
func (s *ChunkStore) LabelValues(name string, mint, maxt int64, matchers ...*labels.Matcher) ([]string, error) {
	var values []string
	err := s.view(func(r *reader) error {
		var err error
		values, err = r.labelValuesMatching(name, mint, maxt, matchers)
		return err
	})
	if err != nil {
		return nil, err
	}
	return values, nil
}

// labelValuesMatching is LabelValues on the buckets of r.
func (r *reader) labelValuesMatching(name string, mint, maxt int64, matchers []*labels.Matcher) ([]string, error) {
	if mint > maxt || name == "" || strings.IndexByte(name, sep) >= 0 {
		return nil, nil
	}
	ids, all, err := r.postingsForMatchers(matchers)
	if err != nil || (!all && len(ids) == 0) {
		return nil, err
	}
	values, err := r.labelValues(name, mint, maxt, ids, all)
	if err != nil {
		return nil, err
	}
	slices.Sort(values)
	return slices.Compact(values), nil
}

// labelValues returns the values of name of the series in [mint, maxt] that
// are in sorted ids (or any series if all), in postings order.
func (r *reader) labelValues(name string, mint, maxt int64, ids []uint64, all bool) ([]string, error) {
	var (
		values   []string
		accepted []byte   // the last value added, aliasing bbolt memory
		entry    []uint64 // scratch: the IDs of one entry
	)
	prefix := appendNamePrefix(nil, name)
	c := r.postings.Cursor()
	for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, value, first, err := parsePostingKey(k)
		if err != nil {
			return nil, err
		}
		if len(value) == 0 || (accepted != nil && bytes.Equal(value, accepted)) {
			continue
		}
		if entry, err = appendPostingIDs(entry[:0], first, v); err != nil {
			return nil, err
		}
		if !all {
			entry = slices.DeleteFunc(entry, func(id uint64) bool {
				_, ok := slices.BinarySearch(ids, id)
				return !ok
			})
		}
		in, err := r.anyInRange(entry, mint, maxt)
		if err != nil {
			return nil, err
		}
		if in {
			values = append(values, string(value))
			accepted = value
		}
	}
	return values, nil
}
