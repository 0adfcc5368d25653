package storage

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// postingsIndex is what matchPostings needs of a series index. The
// ChunkStore (and level-0 DB partition) reader and a sealed part's reader
// implement it over their different postings layouts, so both answer
// matchers with the one implementation of Prometheus's semantics below.
type postingsIndex interface {
	// valuePostings appends to ids the sorted IDs of the series with
	// label name=value.
	valuePostings(name, value string, ids []uint64) ([]uint64, error)
	// scanPostings returns the sorted IDs of the series whose value of
	// name starts with prefix and is accepted by match.
	scanPostings(name, prefix string, match func(string) bool) ([]uint64, error)
	// allSeries returns the IDs of all series, sorted.
	allSeries() ([]uint64, error)
	// intersectPostings returns the IDs in every one of decoded and in
	// the postings of every label of equal; it may reorder decoded.
	// Equality matchers come apart because an index may intersect their
	// stored lists without decoding them whole.
	intersectPostings(decoded [][]uint64, equal []labels.Label) ([]uint64, error)
}

// matchPostings returns the sorted IDs of ix's series that match all
// matchers, or all=true when every series matches (ids is then nil).
//
// A matcher that matches the empty string also matches the series that lack
// its label. So, as in Prometheus, matchers that do not match "" contribute
// the postings of their matching values, which are intersected; matchers
// that match "" instead subtract the postings of the values they reject
// (found with their inverse, which does not match ""). If no matcher is of
// the first kind, the subtraction starts from all series.
func matchPostings(ix postingsIndex, ms []*labels.Matcher) (ids []uint64, all bool, err error) {
	var (
		positive, negative [][]uint64
		equal              []labels.Label
	)
	for _, m := range ms {
		if m.Name == "" || strings.IndexByte(m.Name, sep) >= 0 {
			// No series has such a label: it is always "".
			if m.Matches("") {
				continue
			}
			return nil, false, nil
		}
		if m.Matches("") {
			inv, err := m.Inverse()
			if err != nil {
				return nil, false, fmt.Errorf("invert matcher %s: %w", m, err)
			}
			p, err := matcherPostings(ix, inv)
			if err != nil {
				return nil, false, err
			}
			if len(p) > 0 {
				negative = append(negative, p)
			}
			continue
		}
		if m.Type == labels.MatchEqual {
			equal = append(equal, labels.Label{Name: m.Name, Value: m.Value})
			continue
		}
		p, err := matcherPostings(ix, m)
		if err != nil || len(p) == 0 {
			return nil, false, err
		}
		positive = append(positive, p)
	}
	if len(positive) == 0 && len(equal) == 0 {
		if len(negative) == 0 {
			return nil, true, nil
		}
		if ids, err = ix.allSeries(); err != nil {
			return nil, false, err
		}
	} else if ids, err = ix.intersectPostings(positive, equal); err != nil || len(ids) == 0 {
		return nil, false, err
	}
	for _, p := range negative {
		ids = subtract(ids, p)
	}
	return ids, false, nil
}

// matcherPostings returns the sorted IDs of ix's series with label m.Name
// matched by m, which must not match "". Regexps with a set of alternatives
// look those up; others scan only the values that start with their literal
// prefix, calling m.Matches (whose compiled regexp m holds) once per value.
func matcherPostings(ix postingsIndex, m *labels.Matcher) ([]uint64, error) {
	switch m.Type {
	case labels.MatchEqual:
		return ix.valuePostings(m.Name, m.Value, nil)
	case labels.MatchRegexp:
		if set := m.SetMatches(); len(set) > 0 {
			var (
				ids []uint64
				err error
			)
			for _, v := range set {
				if v != "" && m.Matches(v) {
					if ids, err = ix.valuePostings(m.Name, v, ids); err != nil {
						return nil, err
					}
				}
			}
			return sortUnique(ids), nil
		}
		return ix.scanPostings(m.Name, m.Prefix(), m.Matches)
	default:
		return ix.scanPostings(m.Name, "", m.Matches)
	}
}

// intersectDecoded returns the IDs in every one of lists, starting from
// the shortest. It reuses the lists' arrays.
func intersectDecoded(lists [][]uint64) []uint64 {
	if len(lists) == 0 {
		return nil
	}
	slices.SortFunc(lists, func(a, b []uint64) int { return len(a) - len(b) })
	ids := lists[0]
	for _, p := range lists[1:] {
		ids = intersect(ids, p)
	}
	return ids
}
