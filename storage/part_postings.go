package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// postingsForMatchers returns the sorted IDs of the tenant's series that
// match all matchers, or all=true when every series matches. It follows the
// semantics of ChunkStore's reader.postingsForMatchers (see there): matchers
// that do not match "" intersect the postings of their values, the others
// subtract the postings of the values their inverse matches.
func (r *partReader) postingsForMatchers(ms []*labels.Matcher) (ids []uint64, all bool, err error) {
	var (
		positive, negative [][]uint64
		equal              []encodedList
	)
	for _, m := range ms {
		if m.Name == "" || strings.IndexByte(m.Name, sep) >= 0 {
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
			p, err := r.postingsForMatcher(inv)
			if err != nil {
				return nil, false, err
			}
			if len(p) > 0 {
				negative = append(negative, p)
			}
			continue
		}
		if m.Type == labels.MatchEqual {
			// Decoded only as far as the intersection needs.
			v := r.b.Get(appendPostingsKey(r.key[:0], m.Name, m.Value))
			n, w := binary.Uvarint(v)
			if v == nil || w <= 0 {
				return nil, false, nil
			}
			equal = append(equal, encodedList{v, n})
			continue
		}
		p, err := r.postingsForMatcher(m)
		if err != nil || len(p) == 0 {
			return nil, false, err
		}
		positive = append(positive, p)
	}
	if len(positive) == 0 && len(equal) == 0 {
		if len(negative) == 0 {
			return nil, true, nil
		}
		ids = make([]uint64, r.h.series)
		for i := range ids {
			ids[i] = uint64(i)
		}
	} else if ids, err = r.intersectAll(positive, equal); err != nil {
		return nil, false, err
	}
	for _, p := range negative {
		ids = subtract(ids, p)
	}
	return ids, false, nil
}

// encodedList is a postings value and its count.
type encodedList struct {
	v []byte
	n uint64
}

// intersectAll returns the IDs in all decoded lists and all encoded lists,
// starting from the shortest. Encoded lists other than the shortest are
// only decoded up to the last ID still in the intersection.
func (r *partReader) intersectAll(decoded [][]uint64, encoded []encodedList) ([]uint64, error) {
	slices.SortFunc(decoded, func(a, b []uint64) int { return len(a) - len(b) })
	slices.SortFunc(encoded, func(a, b encodedList) int { return cmpInt64(int64(a.n), int64(b.n)) })
	var ids []uint64
	if len(encoded) > 0 && (len(decoded) == 0 || encoded[0].n < uint64(len(decoded[0]))) {
		var err error
		if ids, err = decodePostings(nil, encoded[0].v, r.h.series); err != nil {
			return nil, err
		}
		encoded = encoded[1:]
	} else {
		ids, decoded = decoded[0], decoded[1:]
	}
	for _, p := range decoded {
		ids = intersect(ids, p)
	}
	for _, e := range encoded {
		var err error
		if ids, err = intersectEncoded(ids, e.v, r.h.series); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// intersectEncoded returns the IDs of sorted ids that are in the postings
// value v, reusing ids. It stops decoding v past the last of ids.
func intersectEncoded(ids []uint64, v []byte, limit uint64) ([]uint64, error) {
	d := partDecoder{b: v}
	n := d.uvarintMax(uint64(len(v)))
	out := ids[:0]
	i, prev := 0, uint64(0)
	for k := uint64(0); k < n && i < len(ids); k++ {
		x := d.uvarint()
		if k > 0 {
			x += prev + 1
		}
		if d.err != nil || x >= limit || (k > 0 && x <= prev) {
			return nil, fmt.Errorf("postings: %w", corruptf("malformed postings list"))
		}
		prev = x
		for i < len(ids) && ids[i] < x {
			i++
		}
		if i < len(ids) && ids[i] == x {
			out = append(out, x)
			i++
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("postings: %w", d.err)
	}
	return out, nil
}

// postingsForMatcher returns the sorted IDs of the series with label m.Name
// matched by m, which must not match "". Regexps with a set of alternatives
// look those up; others scan only the values that start with their literal
// prefix, calling m.Matches (whose compiled regexp m holds) once per value.
func (r *partReader) postingsForMatcher(m *labels.Matcher) ([]uint64, error) {
	switch m.Type {
	case labels.MatchEqual:
		return r.postingsForValue(m.Name, m.Value, nil)
	case labels.MatchRegexp:
		if set := m.SetMatches(); len(set) > 0 {
			var (
				ids []uint64
				err error
			)
			for _, v := range set {
				if v != "" && m.Matches(v) {
					if ids, err = r.postingsForValue(m.Name, v, ids); err != nil {
						return nil, err
					}
				}
			}
			return sortUnique(ids), nil
		}
		return r.postingsForScan(m.Name, m.Prefix(), m.Matches)
	default:
		return r.postingsForScan(m.Name, "", m.Matches)
	}
}

// postingsForValue appends the IDs of name=value to ids.
func (r *partReader) postingsForValue(name, value string, ids []uint64) ([]uint64, error) {
	r.key = appendPostingsKey(r.key[:0], name, value)
	v := r.b.Get(r.key)
	if v == nil {
		return ids, nil
	}
	return decodePostings(ids, v, r.h.series)
}

// postingsForScan returns the sorted IDs of the series whose value of name
// starts with prefix and is accepted by match.
func (r *partReader) postingsForScan(name, prefix string, match func(string) bool) ([]uint64, error) {
	var (
		ids   []uint64
		lists int
		err   error
	)
	r.key = appendPostingsKey(r.key[:0], name, prefix)
	valueAt := len(r.key) - len(prefix)
	c := r.b.Cursor()
	for k, v := c.Seek(r.key); bytes.HasPrefix(k, r.key); k, v = c.Next() {
		if !match(yoloString(k[valueAt:])) {
			continue
		}
		if ids, err = decodePostings(ids, v, r.h.series); err != nil {
			return nil, err
		}
		lists++
	}
	if lists > 1 {
		ids = sortUnique(ids)
	}
	return ids, nil
}
