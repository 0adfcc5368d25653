package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// reader holds the buckets of one read transaction. Slices it returns from
// bbolt are valid only until the transaction ends.
type reader struct {
	series, seriesTime, byLabels, postings, chunks *bbolt.Bucket
	// lvIndex is the label-values index of a DB partition (nil in a
	// ChunkStore file, which has none).
	lvIndex *bbolt.Bucket
	// chunkRefs lists the chunks of each series of a DB partition, whose
	// chunks are keyed by a sequence (nil in a ChunkStore file).
	chunkRefs *bbolt.Bucket

	// Lookups by ascending series ID in read transactions.
	seriesFwd, seriesTimeFwd, chunkRefsFwd fwdCursor

	key []byte // scratch
}

// bucketParent is what holds the data buckets: the transaction of a
// ChunkStore file, or a tenant's bucket in a DB partition.
type bucketParent interface {
	Bucket(name []byte) *bbolt.Bucket
}

func newReader(parent bucketParent) *reader {
	return &reader{
		series:     parent.Bucket(bucketSeries),
		seriesTime: parent.Bucket(bucketSeriesTime),
		byLabels:   parent.Bucket(bucketByLabels),
		postings:   parent.Bucket(bucketPostings),
		chunks:     parent.Bucket(bucketChunks),
		lvIndex:    parent.Bucket(bucketLabelValues),
		chunkRefs:  parent.Bucket(bucketChunkRefs),
	}
}

// postingsForMatchers returns the sorted IDs of the series that match all
// matchers, or all=true when every series matches (ids is then nil).
//
// A matcher that matches the empty string also matches the series that lack
// its label. So, as in Prometheus, matchers that do not match "" contribute
// the postings of their matching values, which are intersected; matchers
// that match "" instead subtract the postings of the values they reject
// (found with their inverse, which does not match ""). If no matcher is of
// the first kind, the subtraction starts from all series.
func (r *reader) postingsForMatchers(ms []*labels.Matcher) (ids []uint64, all bool, err error) {
	var positive, negative [][]uint64
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
			p, err := r.postingsForMatcher(inv)
			if err != nil {
				return nil, false, err
			}
			if len(p) > 0 {
				negative = append(negative, p)
			}
			continue
		}
		p, err := r.postingsForMatcher(m)
		if err != nil || len(p) == 0 {
			return nil, false, err
		}
		positive = append(positive, p)
	}
	if len(positive) == 0 {
		if len(negative) == 0 {
			return nil, true, nil
		}
		if ids, err = r.allSeries(); err != nil {
			return nil, false, err
		}
	} else {
		slices.SortFunc(positive, func(a, b []uint64) int { return len(a) - len(b) })
		ids = positive[0]
		for _, p := range positive[1:] {
			ids = intersect(ids, p)
		}
	}
	for _, p := range negative {
		ids = subtract(ids, p)
	}
	return ids, false, nil
}

// postingsForMatcher returns the sorted IDs of the series that have label
// m.Name with a value matched by m. m must not match "".
func (r *reader) postingsForMatcher(m *labels.Matcher) ([]uint64, error) {
	switch m.Type {
	case labels.MatchEqual:
		return r.postingsForValue(m.Name, m.Value, nil), nil
	case labels.MatchRegexp:
		if set := m.SetMatches(); len(set) > 0 {
			var ids []uint64
			for _, v := range set {
				if v != "" && m.Matches(v) {
					ids = r.postingsForValue(m.Name, v, ids)
				}
			}
			return sortUnique(ids), nil
		}
		return r.postingsForScan(m.Name, m.Prefix(), m.Matches)
	default:
		return r.postingsForScan(m.Name, "", m.Matches)
	}
}

// postingsForValue appends to ids the sorted IDs of the series with label
// name=value.
func (r *reader) postingsForValue(name, value string, ids []uint64) []uint64 {
	r.key = appendValuePrefix(r.key[:0], name, value)
	c := r.postings.Cursor()
	for k, _ := c.Seek(r.key); bytes.HasPrefix(k, r.key); k, _ = c.Next() {
		// Longer keys belong to values that extend value with 0xff.
		if len(k) == len(r.key)+idLen {
			ids = append(ids, binary.BigEndian.Uint64(k[len(r.key):]))
		}
	}
	return ids
}

// postingsForScan returns the sorted IDs of the series that have label name
// with a value that starts with prefix and is accepted by match. match is
// called once per distinct value.
func (r *reader) postingsForScan(name, prefix string, match func(string) bool) ([]uint64, error) {
	var (
		ids    []uint64
		last   []byte
		lastOK bool
	)
	r.key = append(appendNamePrefix(r.key[:0], name), prefix...)
	c := r.postings.Cursor()
	for k, _ := c.Seek(r.key); bytes.HasPrefix(k, r.key); k, _ = c.Next() {
		_, value, id, err := parsePostingKey(k)
		if err != nil {
			return nil, err
		}
		if last == nil || !bytes.Equal(value, last) {
			last, lastOK = value, match(yoloString(value))
		}
		if lastOK {
			ids = append(ids, id)
		}
	}
	return sortUnique(ids), nil
}

// allSeries returns the IDs of all series, sorted.
func (r *reader) allSeries() ([]uint64, error) {
	var ids []uint64
	c := r.seriesTime.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != idLen {
			return nil, corruptf("series time key of %d bytes", len(k))
		}
		ids = append(ids, binary.BigEndian.Uint64(k))
	}
	return ids, nil
}

// sortUnique sorts ids and removes duplicates, in place.
func sortUnique(ids []uint64) []uint64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// intersect returns the IDs in both sorted a and b. It reuses a.
func intersect(a, b []uint64) []uint64 {
	out := a[:0]
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// subtract returns the IDs of sorted a that are not in sorted b. It reuses a.
func subtract(a, b []uint64) []uint64 {
	out := a[:0]
	j := 0
	for _, id := range a {
		for j < len(b) && b[j] < id {
			j++
		}
		if j < len(b) && b[j] == id {
			continue
		}
		out = append(out, id)
	}
	return out
}
