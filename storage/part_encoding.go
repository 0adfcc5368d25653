package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The encoders and decoders of the values of a part (see part.go). Every
// decoder returns an error matching ErrCorrupt for any malformed input and
// never panics.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodePartMeta encodes the value of part_meta/meta.
func encodePartMeta(m partMeta) []byte {
	v := binary.AppendVarint(nil, m.MinTime)
	v = binary.AppendVarint(v, m.MaxTime)
	v = binary.AppendUvarint(v, uint64(m.Level))
	v = binary.AppendUvarint(v, uint64(len(m.Sources)))
	for _, s := range m.Sources {
		v = binary.AppendUvarint(v, uint64(len(s)))
		v = append(v, s...)
	}
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}

// decodePartMeta decodes the value of part_meta/meta.
func decodePartMeta(v []byte) (partMeta, error) {
	if len(v) < 4 || crc32.Checksum(v[:len(v)-4], castagnoli) != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return partMeta{}, corruptf("part meta checksum mismatch")
	}
	var (
		d = partDecoder{b: v[:len(v)-4]}
		m partMeta
	)
	m.MinTime, m.MaxTime = d.varint(), d.varint()
	m.Level = int(d.uvarintMax(math.MaxInt32))
	n := d.uvarintMax(uint64(len(v)))
	for range n {
		if d.err != nil {
			break
		}
		m.Sources = append(m.Sources, string(d.bytes()))
	}
	if err := d.done("part meta"); err != nil {
		return partMeta{}, err
	}
	return m, nil
}

// partDecoder reads the fields of one value; the first failure sticks.
type partDecoder struct {
	b   []byte
	err error
}

func (d *partDecoder) fail() {
	if d.err == nil {
		d.err = corruptf("truncated or malformed field")
	}
	d.b = nil
}

func (d *partDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

// uvarintMax reads a uvarint and fails if it is above limit.
func (d *partDecoder) uvarintMax(limit uint64) uint64 {
	x := d.uvarint()
	if x > limit {
		d.fail()
		return 0
	}
	return x
}

func (d *partDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *partDecoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes reads a uvarint-length-prefixed field, aliasing the input.
func (d *partDecoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	if d.err != nil {
		return nil
	}
	f := d.b[:n]
	d.b = d.b[n:]
	return f
}

// done returns the decoder's error, or one if input is left over.
func (d *partDecoder) done(what string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = corruptf("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return nil
}

// tenantHeader is the decoded header of a tenant.
type tenantHeader struct {
	series, chunks, samples uint64
	minT, maxT              int64
	symbols, blobs, bytes   uint64
	crc                     uint32
}

// encodeTenantHeader encodes h with the CRC of its fields and of idx.
func encodeTenantHeader(h tenantHeader, idx []keyValue) []byte {
	v := binary.AppendUvarint(nil, h.series)
	v = binary.AppendUvarint(v, h.chunks)
	v = binary.AppendUvarint(v, h.samples)
	v = binary.AppendVarint(v, h.minT)
	v = binary.AppendVarint(v, h.maxT)
	v = binary.AppendUvarint(v, h.symbols)
	v = binary.AppendUvarint(v, h.blobs)
	v = binary.AppendUvarint(v, h.bytes)
	crc := crc32.Update(0, castagnoli, v)
	for _, kv := range idx {
		crc = crc32.Update(crc32.Update(crc, castagnoli, kv.k), castagnoli, kv.v)
	}
	return binary.BigEndian.AppendUint32(v, crc)
}

// decodeTenantHeader decodes a header; fieldsCRC is the CRC of its fields,
// for Check to continue over the index.
func decodeTenantHeader(v []byte) (h tenantHeader, fieldsCRC uint32, err error) {
	if len(v) < 4 {
		return h, 0, corruptf("tenant header of %d bytes", len(v))
	}
	fields := v[:len(v)-4]
	d := partDecoder{b: fields}
	h.series = d.uvarintMax(math.MaxUint32)
	h.chunks, h.samples = d.uvarint(), d.uvarint()
	h.minT, h.maxT = d.varint(), d.varint()
	h.symbols = d.uvarintMax(math.MaxUint32)
	h.blobs = d.uvarintMax(math.MaxUint32)
	h.bytes = d.uvarint()
	if err := d.done("tenant header"); err != nil {
		return h, 0, err
	}
	if h.series > 0 && h.minT > h.maxT {
		return h, 0, corruptf("tenant header: min time %d after max time %d", h.minT, h.maxT)
	}
	h.crc = binary.BigEndian.Uint32(v[len(v)-4:])
	return h, crc32.Update(0, castagnoli, fields), nil
}

// appendPostingsKey appends the key of the postings of name=value.
func appendPostingsKey(dst []byte, name, value string) []byte {
	dst = append(append(dst, kindPostings), name...)
	return append(append(dst, sep), value...)
}

// encodePostings appends the postings value of sorted, distinct ids.
func encodePostings(dst []byte, ids []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i, id := range ids {
		if i == 0 {
			dst = binary.AppendUvarint(dst, uint64(id))
		} else {
			dst = binary.AppendUvarint(dst, uint64(id-ids[i-1]-1))
		}
	}
	return dst
}

// decodePostings appends to dst the IDs of a postings value, which must all
// be below limit.
func decodePostings(dst []uint64, v []byte, limit uint64) ([]uint64, error) {
	d := partDecoder{b: v}
	n := d.uvarintMax(uint64(len(v)))
	dst = slices.Grow(dst, int(n))
	prev := uint64(0)
	for i := range n {
		x := d.uvarint()
		if i > 0 {
			x += prev + 1
		}
		if d.err != nil || x >= limit || (i > 0 && x <= prev) {
			d.fail()
			break
		}
		dst = append(dst, x)
		prev = x
	}
	return dst, d.done("postings")
}

// encodeSymbolBlock appends a front-coded block of sorted symbols.
func encodeSymbolBlock(dst []byte, syms []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(syms)))
	prev := ""
	for _, s := range syms {
		shared := 0
		for shared < len(prev) && shared < len(s) && prev[shared] == s[shared] {
			shared++
		}
		dst = binary.AppendUvarint(dst, uint64(shared))
		dst = binary.AppendUvarint(dst, uint64(len(s)-shared))
		dst = append(dst, s[shared:]...)
		prev = s
	}
	return dst
}

// decodeSymbolBlock appends the symbols of a block to dst as new strings.
func decodeSymbolBlock(dst []string, v []byte) ([]string, error) {
	return decodeSymbolBlockIn(nil, dst, v)
}

// decodeSymbolBlockIn is decodeSymbolBlock with the strings' bytes carved
// from a (one allocation per arena block rather than per string) unless a
// is nil.
func decodeSymbolBlockIn(a *arena, dst []string, v []byte) ([]string, error) {
	_, err := rangeSymbolBlock(v, nil, func(sym []byte) { // dst gets copies
		if a != nil {
			dst = append(dst, yoloString(a.copy(sym)))
		} else {
			dst = append(dst, string(sym))
		}
	})
	return dst, err
}

// rangeSymbolBlock calls fn with each symbol of block v in order: a count,
// then each symbol as the length of the prefix it shares with the previous
// one and the rest. sym is rebuilt in buf, valid until fn returns; the
// grown buf is returned for reuse.
func rangeSymbolBlock(v, buf []byte, fn func(sym []byte)) ([]byte, error) {
	d := partDecoder{b: v}
	n := d.uvarintMax(symbolsPerBlock)
	prev := buf[:0]
	for range n {
		shared := d.uvarintMax(uint64(len(prev)))
		rest := d.bytes()
		if d.err != nil {
			break
		}
		prev = append(prev[:shared], rest...)
		fn(prev)
	}
	return prev, d.done("symbol block")
}

// partChunkRef is one decoded chunk meta of a series entry.
type partChunkRef struct {
	minT, maxT int64
	enc        chunkenc.Encoding
	blob       uint32 // where the data is
	off, len   uint32
}

// seriesEntry is a decoded series value. labels holds symbol IDs, name,
// value, name, value...
type seriesEntry struct {
	labels []uint32
	chunks []partChunkRef
}

// decodeSeriesEntry decodes a series value into e, reusing its slices. Chunk
// locations are derived with blobLen, which returns the raw length of a
// blob; a nil blobLen leaves them unresolved (blob and off of the first
// chunk only, in chunks[0]). baseT is the tenant's MinTime and symbols the
// number of symbols.
func decodeSeriesEntry(e *seriesEntry, v []byte, baseT int64, symbols uint64) error {
	d := partDecoder{b: v}
	n := d.uvarintMax(uint64(len(v)) / 2)
	e.labels = e.labels[:0]
	for range 2 * n {
		e.labels = append(e.labels, uint32(d.uvarintMax(symbols-1)))
		if d.err != nil {
			break
		}
	}
	if n == 0 || symbols == 0 {
		d.fail()
	}
	nc := d.uvarintMax(uint64(len(d.b)) / 3)
	blob := d.uvarintMax(math.MaxUint32)
	off := d.uvarintMax(math.MaxUint32)
	e.chunks = e.chunks[:0]
	var prevMax int64
	for i := range nc {
		var minT int64
		if i == 0 {
			minT = int64(uint64(baseT) + d.uvarint())
		} else {
			delta := d.uvarint()
			minT = int64(uint64(prevMax) + delta + 1)
			if delta > uint64(math.MaxInt64)-uint64(prevMax) { // overflow
				d.fail()
			}
		}
		span := d.uvarint()
		maxT := int64(uint64(minT) + span)
		enc := chunkenc.Encoding(d.byte())
		l := d.uvarintMax(math.MaxUint32)
		if d.err != nil || maxT < minT || (i > 0 && minT <= prevMax) {
			d.fail()
			break
		}
		e.chunks = append(e.chunks, partChunkRef{minT: minT, maxT: maxT, enc: enc, blob: uint32(blob), off: uint32(off), len: uint32(l)})
		prevMax = maxT
	}
	if nc == 0 {
		d.fail()
	}
	return d.done("series entry")
}

// locateChunks sets the blob and offset of every chunk of e from those of
// the first, given the raw length of each blob (ok false if it does not
// exist). A chunk that does not fit in its blob at its offset starts the
// next blob.
func locateChunks(e *seriesEntry, blobLen func(uint32) (int, bool, error)) error {
	if len(e.chunks) == 0 {
		return nil
	}
	blob, off := e.chunks[0].blob, uint64(e.chunks[0].off)
	n, ok, err := blobLen(blob)
	for i := range e.chunks {
		c := &e.chunks[i]
		if err == nil && ok && off+uint64(c.len) > uint64(n) && i > 0 {
			blob, off = blob+1, 0
			n, ok, err = blobLen(blob)
		}
		if err != nil {
			return err
		}
		if !ok || off+uint64(c.len) > uint64(n) {
			return corruptf("chunk %d of %d bytes at blob %d offset %d out of bounds", i, c.len, blob, off)
		}
		c.blob, c.off = blob, uint32(off)
		off += uint64(c.len)
	}
	return nil
}

// Blob codecs.
const (
	codecRaw  = 0
	codecZstd = 1
	codecS2   = 2
	// maxBlobRaw bounds the raw size of a blob a decoder accepts: a blob
	// holds at most partBlobTarget bytes or one chunk.
	maxBlobRaw = 64 << 20
)

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
)

// zstdCoders returns the shared zstd encoder and decoder; their EncodeAll
// and DecodeAll are safe for concurrent use.
func zstdCoders() (*zstd.Encoder, *zstd.Decoder) {
	zstdOnce.Do(func() {
		var err error
		zstdEnc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only on invalid options
		}
		// zstd's own frame checksum (xxhash, a quarter of the time of
		// decompressing a blob) is not verified: each blob's CRC32C covers
		// its compressed bytes, and Check verifies it. Reads trust the
		// file, as reads of a Prometheus block trust its chunk CRCs.
		zstdDec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlobRaw),
			zstd.IgnoreChecksum(true))
		if err != nil {
			panic(err)
		}
	})
	return zstdEnc, zstdDec
}

// blobCodec is the codec writePart compresses blobs with; benchmarks change it.
var blobCodec byte = codecZstd

// encodeBlob appends the blob value of raw, compressed if compress and if
// that is smaller.
func encodeBlob(dst, raw []byte, compress bool) []byte {
	codec, payload := byte(codecRaw), raw
	if compress {
		var c []byte
		switch blobCodec {
		case codecS2:
			c = s2.EncodeBetter(nil, raw)
		default:
			enc, _ := zstdCoders()
			c = enc.EncodeAll(raw, nil)
		}
		if len(c) < len(raw) {
			codec, payload = blobCodec, c
		}
	}
	start := len(dst)
	dst = append(dst, codec, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(raw)))
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start+1:], crc32.Checksum(dst[start+5:], castagnoli))
	return dst
}

// blobRawLen returns the raw length of a blob value without decoding it.
func blobRawLen(v []byte) (int, error) {
	if len(v) < 6 {
		return 0, corruptf("blob of %d bytes", len(v))
	}
	n, w := binary.Uvarint(v[5:])
	if w <= 0 || n > maxBlobRaw || (v[0] == codecRaw && n != uint64(len(v)-5-w)) {
		return 0, corruptf("malformed blob length")
	}
	return int(n), nil
}

// decodeBlob returns the raw data of a blob value: v itself for a raw blob,
// a new slice otherwise. With verify it checks the CRC first.
func decodeBlob(v []byte, verify bool) ([]byte, error) {
	return decodeBlobInto(v, verify, nil)
}

// decodeBlobInto is decodeBlob decompressing into buf's memory when it is
// large enough (a raw blob is still returned as v itself).
func decodeBlobInto(v []byte, verify bool, buf []byte) ([]byte, error) {
	n, err := blobRawLen(v)
	if err != nil {
		return nil, err
	}
	if verify && crc32.Checksum(v[5:], castagnoli) != binary.BigEndian.Uint32(v[1:]) {
		return nil, corruptf("blob checksum mismatch")
	}
	_, w := binary.Uvarint(v[5:])
	payload := v[5+w:]
	if buf == nil || cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	var raw []byte
	switch v[0] {
	case codecRaw:
		return payload, nil
	case codecZstd:
		_, dec := zstdCoders()
		raw, err = dec.DecodeAll(payload, buf[:0])
	case codecS2:
		if l, lerr := s2.DecodedLen(payload); lerr != nil || l != n {
			return nil, corruptf("malformed s2 blob")
		}
		raw, err = s2.Decode(buf[:n], payload)
	default:
		return nil, corruptf("unknown blob codec %d", v[0])
	}
	if err != nil {
		return nil, corruptf("decompress blob: %v", err)
	}
	if len(raw) != n {
		return nil, corruptf("blob decompressed to %d bytes, want %d", len(raw), n)
	}
	return raw, nil
}

// encodeSeriesGroup encodes a series group of entries, compressed if
// compress and if that is smaller.
func encodeSeriesGroup(entries [][]byte, compress bool) []byte {
	raw := binary.AppendUvarint(nil, uint64(len(entries)))
	for _, e := range entries {
		raw = binary.AppendUvarint(raw, uint64(len(e)))
	}
	for _, e := range entries {
		raw = append(raw, e...)
	}
	if compress {
		enc, _ := zstdCoders()
		if c := enc.EncodeAll(raw, []byte{codecZstd}); len(c) < len(raw)+1 {
			return c
		}
	}
	return append([]byte{codecRaw}, raw...)
}

// decodeSeriesGroup returns the entries of a series group: their data
// (aliasing v if it is raw) and the offset of each in it, plus the end.
func decodeSeriesGroup(v []byte, offs []int) (data []byte, _ []int, err error) {
	if data, err = decompressSeriesGroup(v); err != nil {
		return nil, offs, err
	}
	return parseSeriesGroup(data, offs)
}

// decompressSeriesGroup returns the raw bytes of the series group value v:
// a new buffer if it is compressed, else aliasing v.
func decompressSeriesGroup(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, corruptf("empty series group")
	}
	switch v[0] {
	case codecRaw:
		return v[1:], nil
	case codecZstd:
		_, dec := zstdCoders()
		data, err := dec.DecodeAll(v[1:], nil)
		if err != nil {
			return nil, corruptf("decompress series group: %v", err)
		}
		return data, nil
	default:
		return nil, corruptf("unknown series group codec %d", v[0])
	}
}

// parseSeriesGroup returns data, the raw bytes of a series group, and the
// offsets of its entries and of its end (in offs, reused).
func parseSeriesGroup(data []byte, offs []int) ([]byte, []int, error) {
	d := partDecoder{b: data}
	n := d.uvarintMax(seriesPerGroup)
	var buf [seriesPerGroup]uint64 // on the stack: a group is parsed per point lookup
	lens := buf[:0:n]
	end := uint64(0)
	for range n {
		l := d.uvarint()
		lens = append(lens, l)
		end += l
		if l > uint64(len(data)) || end > uint64(len(data)) {
			d.fail()
		}
	}
	if d.err != nil || n == 0 || end != uint64(len(d.b)) {
		return nil, offs, corruptf("malformed series group")
	}
	off := len(data) - len(d.b)
	offs = offs[:0]
	for _, l := range lens {
		offs = append(offs, off)
		off += int(l)
	}
	return data, append(offs, off), nil
}
