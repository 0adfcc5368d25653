package storage

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// interval is an inclusive time range.
type interval struct{ mint, maxt int64 }

// intervals is a sorted list of disjoint, non-adjacent intervals.
type intervals []interval

// add returns iv with x merged in.
func (iv intervals) add(x interval) intervals {
	out := make(intervals, 0, len(iv)+1)
	for _, y := range iv {
		switch {
		case y.maxt < x.mint && y.maxt+1 < x.mint:
			out = append(out, y)
		case x.maxt < y.mint && x.maxt+1 < y.mint:
			out = append(out, x)
			x = y
		default:
			x = interval{min(x.mint, y.mint), max(x.maxt, y.maxt)}
		}
	}
	return append(out, x)
}

// covers reports whether t is in one of the intervals.
func (iv intervals) covers(t int64) bool {
	i, _ := slices.BinarySearchFunc(iv, t, func(x interval, t int64) int {
		if x.maxt < t {
			return -1
		}
		return 1
	})
	return i < len(iv) && iv[i].mint <= t
}

// overlaps reports whether some interval overlaps [mint, maxt].
func (iv intervals) overlaps(mint, maxt int64) bool {
	for _, x := range iv {
		if x.mint <= maxt && x.maxt >= mint {
			return true
		}
	}
	return false
}

// coversAll reports whether one interval contains [mint, maxt].
func (iv intervals) coversAll(mint, maxt int64) bool {
	for _, x := range iv {
		if x.mint <= mint && x.maxt >= maxt {
			return true
		}
	}
	return false
}

// tenantFilter is what reads and rewrites drop of one tenant's data: the
// samples before the retention cut-off and those its tombstones delete.
type tenantFilter struct {
	cutoff     int64 // samples before it are gone; math.MinInt64: none
	tombstones []Tombstone
}

// empty reports whether the filter drops nothing.
func (f *tenantFilter) empty() bool {
	return f == nil || (f.cutoff == math.MinInt64 && len(f.tombstones) == 0)
}

// forRange returns the start of a read of [mint, maxt] clipped to the
// cut-off, and the part of f that can change its result: the cut-off only
// if the read asked for older samples (chunks crossing it must then be
// trimmed), and the tombstones overlapping the clipped range. Reads that
// need no filtering, the common case, skip decoding chunks.
func (f *tenantFilter) forRange(mint, maxt int64) (int64, *tenantFilter) {
	out := &tenantFilter{cutoff: math.MinInt64}
	if f.cutoff > mint {
		out.cutoff, mint = f.cutoff, f.cutoff
	}
	for _, t := range f.tombstones {
		if t.MinTime <= maxt && t.MaxTime >= mint {
			out.tombstones = append(out.tombstones, t)
		}
	}
	return mint, out
}

// deletions returns the deleted time ranges of the series lbls.
func (f *tenantFilter) deletions(lbls labels.Labels) intervals {
	var iv intervals
	if f.cutoff != math.MinInt64 {
		iv = iv.add(interval{math.MinInt64, f.cutoff - 1})
	}
	for _, t := range f.tombstones {
		if tombstoneMatches(t, lbls) {
			iv = iv.add(interval{t.MinTime, t.MaxTime})
		}
	}
	return iv
}

// tombstoneMatches reports whether every matcher of t matches lbls (a
// missing label is the empty string, as in a selector).
func tombstoneMatches(t Tombstone, lbls labels.Labels) bool {
	for _, m := range t.Matchers {
		if !m.Matches(lbls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// apply drops the deleted samples of s, re-encoding the chunks they share
// with kept samples. It reports whether any sample is left.
func (f *tenantFilter) apply(s *Series) (bool, error) {
	if f.empty() {
		return len(s.Chunks) > 0, nil
	}
	dels := f.deletions(s.Labels)
	if len(dels) == 0 {
		return len(s.Chunks) > 0, nil
	}
	out := s.Chunks[:0]
	for _, c := range s.Chunks {
		kept, res, err := trimChunk(c, dels)
		if err != nil {
			return false, fmt.Errorf("series %s: %w", s.Labels, err)
		}
		if res != chunkDropped {
			out = append(out, kept)
		}
	}
	s.Chunks = out
	return len(out) > 0, nil
}

// trimResult says what trimChunk did to a chunk.
type trimResult int

const (
	chunkKept    trimResult = iota // no sample deleted: c itself is returned
	chunkTrimmed                   // some samples deleted: a new chunk is returned
	chunkDropped                   // every sample deleted
)

// trimChunk returns c without its samples in dels. A caller that stores
// chunks must rewrite every chunk it reports trimmed, even when its time
// range is unchanged (a deletion between its first and last samples).
// Chunks of every encoding are re-encoded (native histogram ones with
// ChunkWithout's generic path).
func trimChunk(c Chunk, dels intervals) (Chunk, trimResult, error) {
	if !dels.overlaps(c.MinTime, c.MaxTime) {
		return c, chunkKept, nil
	}
	if dels.coversAll(c.MinTime, c.MaxTime) {
		return Chunk{}, chunkDropped, nil
	}
	out, n, dropped, err := ChunkWithout(c, dels.covers)
	if err != nil {
		return Chunk{}, 0, err
	}
	switch {
	case n == 0:
		return Chunk{}, chunkDropped, nil
	case !dropped:
		return c, chunkKept, nil // the deletions fall between samples
	}
	return out, chunkTrimmed, nil
}
