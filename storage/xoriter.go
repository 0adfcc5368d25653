package storage

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	mbits "math/bits"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A querier that receives XOR chunks over gRPC decodes every sample of them
// (a range query reads whole series), and chunkenc's iterator keeps its bit
// reader in fields and decodes a sample per Next call: about as much CPU per
// sample as a cold ingester spends rebuilding the chunk. XORIterator decodes
// a whole chunk in one loop with the reader's state in local variables (a
// window of 64 bits loaded at any bit offset from a padded copy, so no read
// checks for the end), into arrays that Next then walks. It reads exactly
// chunkenc's format: the wire stays chunkenc XOR.

// errXORBits is the error of an XOR chunk whose bits do not decode.
var errXORBits = errors.New("xor chunk does not decode")

// xorPad is the zero bytes after a chunk's copy: a sample takes at most 147
// bits and each sample's end is checked, so a read never passes the copy's
// end.
const xorPad = 32

// XORIterator iterates the samples of a chunkenc XOR chunk, as chunkenc's
// iterator does (the same samples, and io.EOF after those that decode when
// the bits end early). Reset decodes the whole chunk. Not safe for
// concurrent use.
type XORIterator struct {
	ts  []int64
	vs  []float64
	i   int // index of the current sample; -1 before the first
	err error
	buf []byte // the padded copy of the chunk
}

// NewXORIterator returns an iterator over the XOR chunk b.
func NewXORIterator(b []byte) *XORIterator {
	it := &XORIterator{}
	it.Reset(b)
	return it
}

// Reset makes it iterate the XOR chunk b (chunkenc's bytes, with their
// 2-byte sample count), reusing its memory. It does not keep b.
func (it *XORIterator) Reset(b []byte) {
	it.i, it.err = -1, nil
	it.ts, it.vs = it.ts[:0], it.vs[:0]
	if len(b) < 2 {
		it.err = errXORBits
		return
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 {
		return
	}
	it.buf = append(append(it.buf[:0], b[2:]...), make([]byte, xorPad)...)
	it.ts, it.vs = slices.Grow(it.ts, n), slices.Grow(it.vs, n)
	var k int
	k, it.err = decodeXOR(it.buf, len(b)-2, it.ts[:n], it.vs[:n])
	it.ts, it.vs = it.ts[:k], it.vs[:k]
}

// decodeXOR decodes the samples of the chunk of nbytes in p (padded by
// xorPad bytes) into ts and vs, which have the chunk's length, and returns
// how many it decoded and the error that stopped it early. The hot loop:
// the reader's position and the XOR state are local variables, and the
// value is read inline.
func decodeXOR(p []byte, nbytes int, ts []int64, vs []float64) (int, error) {
	p, n := p[:nbytes+xorPad], len(ts)
	vs = vs[:n]
	t, k := binary.Varint(p[:nbytes])
	if k <= 0 || nbytes-k < 8 {
		return 0, io.EOF
	}
	v := binary.BigEndian.Uint64(p[k:])
	ts[0], vs[0] = t, math.Float64frombits(v)
	if n == 1 {
		return 1, nil
	}
	dt, k2 := binary.Uvarint(p[k+8 : nbytes])
	if k2 <= 0 {
		return 1, io.EOF
	}
	end := uint(nbytes) * 8
	pos := uint(k+8+k2) * 8
	leading, trailing := uint8(0xff), uint8(0)
	for i := 1; i < n; i++ {
		w := xorPeek(p, pos)
		if i > 1 {
			if w>>63 == 0 { // dod 0: the regular case
				pos++
				w <<= 1
			} else {
				var dod int64
				dod, pos = xorReadDod(p, pos, w)
				dt = uint64(int64(dt) + dod)
				w = xorPeek(p, pos)
			}
		}
		t += int64(dt)
		if w>>63 == 0 {
			pos++
		} else {
			if w>>62 == 0b10 {
				if leading == 0xff { // a reuse before any window: never written
					return i, errXORBits
				}
				pos += 2
			} else {
				leading = uint8(w >> 57 & 31)
				m := uint8(w >> 51 & 63)
				if m == 0 {
					m = 64 // 64 significant bits are written as 0
				}
				trailing = 64 - leading - m // uint8 arithmetic, as chunkenc's
				pos += 13
			}
			m := uint(64 - leading - trailing)
			v ^= xorPeek(p, pos) >> (64 - m) << trailing
			pos += m
		}
		if pos > end {
			return i, io.EOF
		}
		ts[i], vs[i] = t, math.Float64frombits(v)
	}
	return n, nil
}

// xorPeek returns the 64 bits of p from bit pos on; p has 9 bytes from
// pos/8 on.
func xorPeek(p []byte, pos uint) uint64 {
	i, s := pos>>3, pos&7
	return binary.BigEndian.Uint64(p[i:i+8])<<s | uint64(p[i+8])>>(8-s)
}

// xorReadDod reads a timestamp's delta of delta at pos, whose first bits
// are w's, as chunkenc reads it, and returns it and the position after it.
func xorReadDod(p []byte, pos uint, w uint64) (int64, uint) {
	ones := uint(mbits.LeadingZeros64(^w))
	var sz uint
	switch ones {
	case 0:
		return 0, pos + 1
	case 1:
		sz = 14
	case 2:
		sz = 17
	case 3:
		sz = 20
	default:
		return int64(xorPeek(p, pos+4)), pos + 68
	}
	bits := w << (ones + 1) >> (64 - sz)
	if bits > 1<<(sz-1) { // negative: see chunkenc's docs/bstream.md
		bits -= 1 << sz
	}
	return int64(bits), pos + ones + 1 + sz
}

// Next moves to the next sample.
func (it *XORIterator) Next() chunkenc.ValueType {
	if it.i+1 >= len(it.ts) {
		it.i = len(it.ts)
		return chunkenc.ValNone
	}
	it.i++
	return chunkenc.ValFloat
}

// Seek moves to the first sample at or after t; it stays on the current
// sample if that is at or after t.
func (it *XORIterator) Seek(t int64) chunkenc.ValueType {
	i := max(it.i, 0)
	for i < len(it.ts) && it.ts[i] < t {
		i++
	}
	it.i = i
	if i >= len(it.ts) {
		return chunkenc.ValNone
	}
	return chunkenc.ValFloat
}

// At returns the current sample.
func (it *XORIterator) At() (int64, float64) { return it.ts[it.i], it.vs[it.i] }

// AtHistogram panics: an XOR chunk holds floats only.
func (it *XORIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("an xor chunk holds floats only")
}

// AtFloatHistogram panics: an XOR chunk holds floats only.
func (it *XORIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("an xor chunk holds floats only")
}

// AtT returns the current sample's timestamp.
func (it *XORIterator) AtT() int64 { return it.ts[it.i] }

// AtST returns 0: XOR chunks have no start timestamps.
func (it *XORIterator) AtST() int64 { return 0 }

// Err returns the error that ended the samples early, once Next has passed
// the last one that decoded.
func (it *XORIterator) Err() error {
	if it.i < len(it.ts) {
		return nil
	}
	return it.err
}
