package storage

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A compressed part stores float chunks in a form that zstd compresses far
// better than Gorilla XOR, whose bit stream has no byte alignment for it to
// find: the timestamps' deltas of deltas and the values' deltas (of their
// bits, mapped so that the integer order is the float order), each stream
// shifted right by the trailing zero bits all its entries share and split
// into byte planes (all lowest bytes, then all second bytes...). Regular
// scrapes make the timestamp planes empty, counters with integer steps leave
// one small plane, and the random low bits of gauges stay as they are, so
// zstd removes what XOR spends on alignment and control bits. Reads rebuild
// the XOR chunk with an encoder that writes what chunkenc writes (part_xor.go;
// chunkenc is deterministic): the writer keeps the transcoded form only if it
// rebuilds the original bytes exactly.
//
// Layout: uvarint(samples) varint(first t) [varint(second t - first t)]
// first value bits(8, little-endian) stream(dods) stream(value deltas), where
// stream is shift(1) width(1) then width planes of one byte per entry.

// transcodedFlag marks a transcoded chunk in the encoding byte of its meta.
const transcodedFlag = 0x80

// transcodeXOR returns the transcoded form of XOR chunk data, or false if it
// does not decode or would not rebuild exactly.
func transcodeXOR(dst, data []byte) ([]byte, bool) {
	ch, err := chunkenc.FromData(chunkenc.EncXOR, data)
	if err != nil || len(data) < 2 {
		return dst, false
	}
	n := ch.NumSamples()
	ts := make([]int64, 0, n)
	vs := make([]uint64, 0, n)
	it := ch.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		ts = append(ts, t)
		vs = append(vs, math.Float64bits(v))
	}
	if it.Err() != nil || len(ts) != n || n == 0 {
		return dst, false
	}
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendVarint(dst, ts[0])
	if n > 1 {
		dst = binary.AppendVarint(dst, ts[1]-ts[0])
	}
	dst = binary.LittleEndian.AppendUint64(dst, vs[0])
	scratch := make([]uint64, 0, n)
	for i := 2; i < n; i++ {
		scratch = append(scratch, zigzag(ts[i]-2*ts[i-1]+ts[i-2]))
	}
	dst = appendStream(dst, scratch)
	scratch = scratch[:0]
	for i := 1; i < n; i++ {
		scratch = append(scratch, zigzag(int64(sortableBits(vs[i])-sortableBits(vs[i-1]))))
	}
	dst = appendStream(dst, scratch)
	rebuilt, ok := untranscodeXOR(dst[start:])
	if !ok || !bytes.Equal(rebuilt, data) {
		return dst[:start], false
	}
	return dst, true
}

// untranscodeXOR rebuilds the XOR chunk data of a transcoded chunk into a
// new slice.
func untranscodeXOR(v []byte) ([]byte, bool) {
	var x xorScratch
	out, ok := x.untranscode(v)
	return bytes.Clone(out), ok
}

// xorScratch holds the buffers of untranscode, reused from chunk to chunk.
type xorScratch struct {
	dods, dels []uint64
	w          xorWriter
}

// untranscode rebuilds the XOR chunk data of a transcoded chunk. The result
// is valid until the next call.
//
// It writes the XOR bit stream straight from the decoded streams: the
// stored delta of delta of each timestamp is the one XOR encodes (both wrap
// the same way), and each value is its predecessor's sortable bits plus the
// stored delta, so no timestamp or value array is built. A chunk whose
// streams are both zero (a constant, regularly scraped series) is its first
// two samples followed by two zero bits per sample.
func (x *xorScratch) untranscode(v []byte) ([]byte, bool) {
	d := partDecoder{b: v}
	n := int(d.uvarintMax(math.MaxUint16))
	t0 := d.varint()
	var dt1 int64
	if n > 1 {
		dt1 = d.varint()
	}
	if d.err != nil || n == 0 || len(d.b) < 8 {
		return nil, false
	}
	first := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	var ok, dodsZero, delsZero bool
	if x.dods, dodsZero, ok = readStream(&d, max(n-2, 0), x.dods); !ok {
		return nil, false
	}
	if x.dels, delsZero, ok = readStream(&d, n-1, x.dels); !ok || len(d.b) != 0 {
		return nil, false
	}
	w := &x.w
	w.begin(w.buf, n)
	w.first(t0, first)
	if n == 1 {
		return w.finish(), true
	}
	vb := sortableBits(first) + uint64(unzigzag(x.dels[0]))
	prev := unsortableBits(vb)
	w.second(uint64(dt1), prev^first)
	if dodsZero && delsZero {
		w.zeros(2 * uint(n-2))
		return w.finish(), true
	}
	w.rest(x.dods[:n-2], x.dels[1:n-1], dodsZero, vb, prev)
	return w.finish(), true
}

// appendStream appends xs shifted right by their common trailing zeros, as
// byte planes.
func appendStream(dst []byte, xs []uint64) []byte {
	var or uint64
	for _, x := range xs {
		or |= x
	}
	shift := 0
	if or != 0 {
		shift = bits.TrailingZeros64(or)
	}
	width := (bits.Len64(or>>shift) + 7) / 8
	dst = append(dst, byte(shift), byte(width))
	for p := range width {
		for _, x := range xs {
			dst = append(dst, byte(x>>shift>>(8*p)))
		}
	}
	return dst
}

// readStream reads a stream of n entries written by appendStream into xs,
// and says whether they are all zero.
func readStream(d *partDecoder, n int, xs []uint64) (_ []uint64, zero, ok bool) {
	shift, width := int(d.byte()), int(d.byte())
	if d.err != nil || shift > 63 || width > 8 || len(d.b) < width*n {
		return xs, false, false
	}
	xs = slices.Grow(xs[:0], n)[:n]
	switch width {
	case 0:
		clear(xs)
		return xs, true, true
	case 1:
		for i, c := range d.b[:n] {
			xs[i] = uint64(c)
		}
	default:
		clear(xs)
		for p := range width {
			plane := d.b[p*n : (p+1)*n]
			for i, c := range plane {
				xs[i] |= uint64(c) << (8 * p)
			}
		}
	}
	if shift != 0 {
		for i := range xs {
			xs[i] <<= shift
		}
	}
	d.b = d.b[width*n:]
	return xs, false, true
}

func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(x uint64) int64 { return int64(x>>1) ^ -int64(x&1) }

// sortableBits maps float bits to integers in the order of the floats (for
// non-NaN values), so that close values have close integers even across 0.
func sortableBits(b uint64) uint64 {
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

func unsortableBits(s uint64) uint64 {
	if s>>63 != 0 {
		return s &^ (1 << 63)
	}
	return ^s
}
