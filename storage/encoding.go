package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.etcd.io/bbolt"
)

// Bucket and meta key names. See doc.go for the layout.
var (
	bucketMeta       = []byte("meta")
	bucketSeries     = []byte("series")
	bucketSeriesTime = []byte("series_time")
	bucketByLabels   = []byte("series_by_labels")
	bucketPostings   = []byte("postings")
	bucketChunks     = []byte("chunks")

	keyFormatVersion = []byte("format_version")
)

// formatVersion is the format of ChunkStore files written by this package.
// Bump it for any incompatible change of the layout in doc.go. Version 2
// lets a postings entry list several series; version 1 files, whose entries
// list one each, read the same and are upgraded by the first writable open,
// so that a binary from before version 2, which would read only the first
// series of each entry, refuses them instead.
const (
	formatVersion          = 2
	formatVersionOneIDList = 1
)

const (
	// sep separates name, value and id in postings keys. It never occurs in
	// a label name (names are UTF-8, which has no 0xff byte; appendLabels
	// enforces it).
	sep = 0xff
	// idLen is the size of a series ID.
	idLen = 8
	// chunkKeyLen is the size of a chunk key: id and encoded max time.
	chunkKeyLen = idLen + 8
	// seriesTimeLen is the size of a series_time value: min and max time.
	seriesTimeLen = 16
	// maxEncodedLabels bounds encoded labels so that they, and every
	// postings key made from them (at most 8 bytes longer), fit in a bbolt
	// key.
	maxEncodedLabels = bbolt.MaxKeySize - 16
)

// emptyValue is the value of label_values entries and of postings entries
// of one series. bbolt never writes to values.
var emptyValue = []byte{}

// appendID appends id as 8 big-endian bytes, so that keys sort by id.
func appendID(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, id)
}

// appendTime appends t so that the byte order of encoded times is the
// numeric order of int64s: big-endian with the sign bit flipped.
func appendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
}

// decodeTime is the inverse of appendTime; b holds at least 8 bytes.
func decodeTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// appendSeriesTime encodes a series_time value.
func appendSeriesTime(dst []byte, minT, maxT int64) []byte {
	return appendTime(appendTime(dst, minT), maxT)
}

// decodeSeriesTime decodes a series_time value.
func decodeSeriesTime(v []byte) (minT, maxT int64, err error) {
	if len(v) != seriesTimeLen {
		return 0, 0, corruptf("series time value of %d bytes", len(v))
	}
	return decodeTime(v), decodeTime(v[8:]), nil
}

// appendLabels appends the canonical encoding of lbls to dst: for each label
// in name order, uvarint(len(name)) name uvarint(len(value)) value. Labels
// with an empty value are left out (Prometheus treats them as absent), so
// {a="1",b=""} and {a="1"} are the same series.
func appendLabels(dst []byte, lbls labels.Labels) ([]byte, error) {
	var (
		prev   string
		reason string
		n      int
	)
	start := len(dst)
	lbls.Range(func(l labels.Label) {
		switch {
		case reason != "":
			return
		case l.Name == "":
			reason = "empty label name"
		case strings.IndexByte(l.Name, sep) >= 0:
			reason = "label name contains byte 0xff"
		case n > 0 && l.Name <= prev:
			reason = "label names not sorted or duplicated"
		}
		prev = l.Name
		n++
		if reason != "" || l.Value == "" {
			return
		}
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	})
	switch {
	case reason != "":
	case len(dst) == start:
		reason = "no label with a value"
	case len(dst)-start > maxEncodedLabels:
		reason = fmt.Sprintf("%d bytes encoded, more than %d", len(dst)-start, maxEncodedLabels)
	}
	if reason != "" {
		return dst[:start], invalidLabelsError{series: lbls.String(), reason: reason}
	}
	return dst, nil
}

// rangeLabels calls fn for each name and value of encoded labels, in order,
// until fn returns false. The slices alias enc.
func rangeLabels(enc []byte, fn func(name, value []byte) bool) error {
	for len(enc) > 0 {
		name, rest, ok := readLengthPrefixed(enc)
		if !ok || len(name) == 0 {
			return corruptf("malformed label name in encoded labels")
		}
		value, rest, ok := readLengthPrefixed(rest)
		if !ok || len(value) == 0 {
			return corruptf("malformed label value in encoded labels")
		}
		enc = rest
		if !fn(name, value) {
			return nil
		}
	}
	return nil
}

// readLengthPrefixed splits b into a uvarint-length-prefixed field and the
// rest.
func readLengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return b[w:end], b[end:], true
}

// decodeLabels builds a labels.Labels from encoded labels. The strings are
// first copied into memory from a, so that the result never refers to
// bbolt's memory map, whatever labels implementation is compiled in.
func decodeLabels(enc []byte, a *arena, b *labels.ScratchBuilder) (labels.Labels, error) {
	owned := a.copy(enc)
	b.Reset()
	err := rangeLabels(owned, func(name, value []byte) bool {
		b.Add(yoloString(name), yoloString(value))
		return true
	})
	if err != nil {
		return labels.EmptyLabels(), err
	}
	return b.Labels(), nil
}

// labelValue returns the value of name in encoded labels, or nil.
func labelValue(enc []byte, name string) ([]byte, error) {
	var found []byte
	err := rangeLabels(enc, func(n, v []byte) bool {
		if string(n) == name {
			found = v
			return false
		}
		return true
	})
	return found, err
}

// yoloString views b as a string without copying. b must never change
// afterwards.
func yoloString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendNamePrefix appends the postings key prefix of every entry of name.
func appendNamePrefix(dst []byte, name string) []byte {
	return append(append(dst, name...), sep)
}

// appendValuePrefix appends the postings key prefix of the entries of the
// label pair name=value; the keys of that pair are this prefix plus an id.
func appendValuePrefix(dst []byte, name, value string) []byte {
	return append(append(appendNamePrefix(dst, name), value...), sep)
}

// appendPostingKey appends the key of the postings entry of name=value
// whose first series is id.
func appendPostingKey(dst, name, value []byte, id uint64) []byte {
	dst = append(append(dst, name...), sep)
	dst = append(append(dst, value...), sep)
	return appendID(dst, id)
}

// appendPostingValue appends the value of the postings entry of sorted ids
// (at least one), whose key holds ids[0]: uvarint(id - previous id) for each
// later id. An entry of one series has an empty value, as every entry had
// before entries listed several series.
func appendPostingValue(dst []byte, ids []uint64) []byte {
	for i := 1; i < len(ids); i++ {
		dst = binary.AppendUvarint(dst, ids[i]-ids[i-1])
	}
	return dst
}

// postingValueLen returns the size of appendPostingValue's output for ids.
func postingValueLen(ids []uint64) int {
	n := 0
	for i := 1; i < len(ids); i++ {
		d := ids[i] - ids[i-1]
		n++
		for d >= 0x80 {
			d >>= 7
			n++
		}
	}
	return n
}

// appendPostingIDs appends to dst the IDs of the postings entry whose key
// holds first and whose value is v, in increasing order. A malformed value
// (a truncated or overlong uvarint, a zero gap, an ID past 2^64-1) is
// reported as corruption.
func appendPostingIDs(dst []uint64, first uint64, v []byte) ([]uint64, error) {
	dst = append(dst, first)
	for id := first; len(v) > 0; {
		d, w := binary.Uvarint(v)
		if w <= 0 || d == 0 || id+d < id {
			return dst, corruptf("malformed postings value after series %d", id)
		}
		id += d
		dst = append(dst, id)
		v = v[w:]
	}
	return dst, nil
}

// parsePostingKey splits a postings key. The name ends at the first 0xff
// byte (names never contain one); the id, the first of the entry's series,
// is the last 8 bytes, so values may hold any byte.
func parsePostingKey(k []byte) (name, value []byte, id uint64, err error) {
	i := bytes.IndexByte(k, sep)
	if i <= 0 || len(k) < i+2+idLen || k[len(k)-idLen-1] != sep {
		return nil, nil, 0, corruptf("malformed postings key %q", k)
	}
	return k[:i], k[i+1 : len(k)-idLen-1], binary.BigEndian.Uint64(k[len(k)-idLen:]), nil
}

// appendChunkKey appends the key of the chunk of series id ending at maxT.
// Keys sort by series, then by time.
func appendChunkKey(dst []byte, id uint64, maxT int64) []byte {
	return appendTime(appendID(dst, id), maxT)
}

// chunkValueLen returns the size of the encoded value of c.
func chunkValueLen(c *Chunk) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(c.MaxTime)-uint64(c.MinTime)) + 1 + len(c.Data)
}

// appendChunkValue appends the value of chunk c: uvarint(MaxTime-MinTime),
// the encoding byte, then the data. The span is computed in uint64 so that
// it cannot overflow.
func appendChunkValue(dst []byte, c *Chunk) []byte {
	dst = binary.AppendUvarint(dst, uint64(c.MaxTime)-uint64(c.MinTime))
	dst = append(dst, byte(c.Encoding))
	return append(dst, c.Data...)
}

// chunkMeta is a decoded chunk value whose data aliases bbolt's memory.
type chunkMeta struct {
	minT, maxT int64
	enc        chunkenc.Encoding
	data       []byte
}

// decodeChunk decodes the chunk stored under key k with value v.
func decodeChunk(k, v []byte) (chunkMeta, error) {
	if len(k) != chunkKeyLen {
		return chunkMeta{}, corruptf("chunk key of %d bytes", len(k))
	}
	span, w := binary.Uvarint(v)
	if w <= 0 || len(v) < w+2 {
		return chunkMeta{}, corruptf("malformed chunk value under key %x", k)
	}
	maxT := decodeTime(k[idLen:])
	minT := int64(uint64(maxT) - span)
	if minT > maxT {
		return chunkMeta{}, corruptf("chunk under key %x has min time %d after max time %d", k, minT, maxT)
	}
	return chunkMeta{minT: minT, maxT: maxT, enc: chunkenc.Encoding(v[w]), data: v[w+1:]}, nil
}

// Arena block sizes: blocks start small, so that small results stay cheap,
// and double up to the maximum.
const (
	arenaMinBlock = 4 << 10
	arenaMaxBlock = 256 << 10
)

// arena hands out byte slices carved from large blocks, to save one
// allocation per value. A block is never written again once a slice of it has
// been handed out, so the slices stay valid as long as they are referenced:
// bbolt requires Put values to live until the transaction ends, and Select
// results are owned by the caller. An arena is not safe for concurrent use.
type arena struct {
	buf []byte
}

// alloc returns an empty slice with capacity n, which the caller may append
// at most n bytes to.
func (a *arena) alloc(n int) []byte {
	if n > cap(a.buf)-len(a.buf) {
		size := min(max(2*cap(a.buf), arenaMinBlock), arenaMaxBlock)
		if n > size/4 {
			return make([]byte, 0, n) // too big to share a block
		}
		a.buf = make([]byte, 0, size)
	}
	start := len(a.buf)
	a.buf = a.buf[:start+n]
	return a.buf[start : start : start+n]
}

// copy returns a copy of b owned by the arena.
func (a *arena) copy(b []byte) []byte {
	return append(a.alloc(len(b)), b...)
}
