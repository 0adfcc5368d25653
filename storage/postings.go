package storage

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// reader holds the buckets of one read transaction. Slices it returns from
// bbolt are valid only until the transaction ends.
type reader struct {
	txBuckets

	// Lookups by ascending series ID in read transactions.
	seriesFwd, seriesTimeFwd, chunkRefsFwd fwdCursor

	key []byte // scratch
}

// bucketParent is what holds the data buckets: the transaction of a
// ChunkStore file, or a tenant's bucket in a DB partition.
type bucketParent interface {
	Bucket(name []byte) *bbolt.Bucket
}

// txBuckets are the data buckets of one transaction, which readers and
// writers open alike.
type txBuckets struct {
	series, seriesTime, byLabels, postings, chunks *bbolt.Bucket
	// lvIndex is the label-values index of a DB partition (nil in a
	// ChunkStore file, which has none).
	lvIndex *bbolt.Bucket
	// chunkRefs lists the chunks of each series of a DB partition, whose
	// chunks are keyed by a sequence (nil in a ChunkStore file).
	chunkRefs *bbolt.Bucket
}

func openTxBuckets(parent bucketParent) txBuckets {
	return txBuckets{
		series:     parent.Bucket(bucketSeries),
		seriesTime: parent.Bucket(bucketSeriesTime),
		byLabels:   parent.Bucket(bucketByLabels),
		postings:   parent.Bucket(bucketPostings),
		chunks:     parent.Bucket(bucketChunks),
		lvIndex:    parent.Bucket(bucketLabelValues),
		chunkRefs:  parent.Bucket(bucketChunkRefs),
	}
}

func newReader(parent bucketParent) *reader {
	return &reader{txBuckets: openTxBuckets(parent)}
}

// postingsForMatchers returns the sorted IDs of the series that match all
// matchers, or all=true when every series matches (ids is then nil).
func (r *reader) postingsForMatchers(ms []*labels.Matcher) (ids []uint64, all bool, err error) {
	return matchPostings(r, ms)
}

func (r *reader) valuePostings(name, value string, ids []uint64) ([]uint64, error) {
	return r.postingsForValue(name, value, ids)
}

// intersectPostings implements postingsIndex: this index has no encoded
// lists to spare decoding, so equality postings are read whole.
func (r *reader) intersectPostings(decoded [][]uint64, equal []labels.Label) ([]uint64, error) {
	for _, l := range equal {
		p, err := r.postingsForValue(l.Name, l.Value, nil)
		if err != nil || len(p) == 0 {
			return nil, err
		}
		decoded = append(decoded, p)
	}
	return intersectDecoded(decoded), nil
}

// postingsForValue appends to ids the sorted IDs of the series with label
// name=value. A pair's entries list disjoint runs of IDs in key order: each
// was written by one transaction, and IDs only grow.
func (r *reader) postingsForValue(name, value string, ids []uint64) ([]uint64, error) {
	r.key = appendValuePrefix(r.key[:0], name, value)
	c := r.postings.Cursor()
	for k, v := c.Seek(r.key); bytes.HasPrefix(k, r.key); k, v = c.Next() {
		// Longer keys belong to values that extend value with 0xff.
		if len(k) != len(r.key)+idLen {
			continue
		}
		var err error
		if ids, err = appendPostingIDs(ids, binary.BigEndian.Uint64(k[len(r.key):]), v); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// scanPostings returns the sorted IDs of the series that have label name
// with a value that starts with prefix and is accepted by match. match is
// called once per distinct value.
func (r *reader) scanPostings(name, prefix string, match func(string) bool) ([]uint64, error) {
	var (
		ids    []uint64
		last   []byte
		lastOK bool
	)
	r.key = append(appendNamePrefix(r.key[:0], name), prefix...)
	c := r.postings.Cursor()
	for k, v := c.Seek(r.key); bytes.HasPrefix(k, r.key); k, v = c.Next() {
		_, value, first, err := parsePostingKey(k)
		if err != nil {
			return nil, err
		}
		if last == nil || !bytes.Equal(value, last) {
			last, lastOK = value, match(yoloString(value))
		}
		if !lastOK {
			continue
		}
		if ids, err = appendPostingIDs(ids, first, v); err != nil {
			return nil, err
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
