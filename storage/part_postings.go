package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// postingsForMatchers returns the sorted IDs of the tenant's series that
// match all matchers, or all=true when every series matches.
func (r *partReader) postingsForMatchers(ms []*labels.Matcher) (ids []uint64, all bool, err error) {
	return matchPostings(r, ms)
}

// allSeries implements postingsIndex: a part numbers its series densely.
func (r *partReader) allSeries() ([]uint64, error) {
	ids := make([]uint64, r.h.series)
	for i := range ids {
		ids[i] = uint64(i)
	}
	return ids, nil
}

// intersectPostings implements postingsIndex. Equality postings are
// decoded only as far as the intersection needs.
func (r *partReader) intersectPostings(decoded [][]uint64, equal []labels.Label) ([]uint64, error) {
	encoded := make([]encodedList, 0, len(equal))
	for _, l := range equal {
		v := r.b.Get(appendPostingsKey(r.key[:0], l.Name, l.Value))
		n, w := binary.Uvarint(v)
		if v == nil || w <= 0 {
			return nil, nil
		}
		encoded = append(encoded, encodedList{v, n})
	}
	return r.intersectAll(decoded, encoded)
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

// valuePostings appends the IDs of name=value to ids.
func (r *partReader) valuePostings(name, value string, ids []uint64) ([]uint64, error) {
	r.key = appendPostingsKey(r.key[:0], name, value)
	v := r.b.Get(r.key)
	if v == nil {
		return ids, nil
	}
	return decodePostings(ids, v, r.h.series)
}

// scanPostings returns the sorted IDs of the series whose value of name
// starts with prefix and is accepted by match.
func (r *partReader) scanPostings(name, prefix string, match func(string) bool) ([]uint64, error) {
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
