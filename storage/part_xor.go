package storage

import (
	"encoding/binary"
	mbits "math/bits"
	"slices"
)

// xorWriter writes a chunkenc XOR chunk: chunkenc's bit stream (bits most
// significant first, the last byte padded with zeros) through a 64-bit
// accumulator flushed 8 bytes at a time, where chunkenc writes bit by bit.
// It also keeps the XOR value state (the leading and trailing zeros of the
// last value window).
type xorWriter struct {
	buf               []byte
	acc               uint64 // pending bits, left-aligned
	n                 uint   // number of pending bits, below 64
	leading, trailing uint   // window of the last value; leading 0xff: none
}

// begin starts a chunk of n samples in dst's memory.
func (w *xorWriter) begin(dst []byte, n int) {
	// At most 2+10+8 bytes for the first sample and 10 bytes plus 77 bits
	// for the second, 145 bits (19 bytes) for the others, 8 of slack.
	w.buf = slices.Grow(dst[:0], 2+48+19*n)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(n))
	w.acc, w.n, w.leading, w.trailing = 0, 0, 0xff, 0
}

// put appends the nbits (at most 64) low bits of x; x has no bits above them.
func (w *xorWriter) put(x uint64, nbits uint) {
	free := 64 - w.n
	if nbits < free {
		w.acc |= x << (free - nbits)
		w.n += nbits
		return
	}
	w.acc |= x >> (nbits - free)
	w.buf = binary.BigEndian.AppendUint64(w.buf, w.acc)
	w.n = nbits - free
	w.acc = x << (64 - w.n) // 0 when w.n is 0: Go shifts by 64 give 0
}

// zeros appends k zero bits.
func (w *xorWriter) zeros(k uint) {
	for k > 0 {
		c := min(k, 64)
		w.put(0, c)
		k -= c
	}
}

// putBytes appends whole bytes, as chunkenc's writeByte.
func (w *xorWriter) putBytes(b []byte) {
	for _, c := range b {
		w.put(uint64(c), 8)
	}
}

// first writes the first sample: varint time, then the value's 64 bits.
func (w *xorWriter) first(t int64, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	w.putBytes(tmp[:binary.PutVarint(tmp[:], t)])
	w.put(v>>32, 32)
	w.put(v&0xffffffff, 32)
}

// second writes the second sample: uvarint time delta, then the XOR of the
// value with the first.
func (w *xorWriter) second(tDelta, xor uint64) {
	var tmp [binary.MaxVarintLen64]byte
	w.putBytes(tmp[:binary.PutUvarint(tmp[:], tDelta)])
	w.value(xor)
}

// dod writes the delta of delta of a timestamp.
func (w *xorWriter) dod(dod int64) {
	switch {
	case dod == 0:
		w.put(0, 1)
	case xorBitRange(dod, 14):
		w.put(0b10<<14|uint64(dod)&(1<<14-1), 16)
	case xorBitRange(dod, 17):
		w.put(0b110<<17|uint64(dod)&(1<<17-1), 20)
	case xorBitRange(dod, 20):
		w.put(0b1110<<20|uint64(dod)&(1<<20-1), 24)
	default:
		w.put(0b1111, 4)
		w.put(uint64(dod), 64)
	}
}

// value writes the XOR of a value with the previous one, as chunkenc's
// xorWrite.
func (w *xorWriter) value(delta uint64) {
	if delta == 0 {
		w.put(0, 1)
		return
	}
	lz := uint(mbits.LeadingZeros64(delta))
	tz := uint(mbits.TrailingZeros64(delta))
	if lz >= 32 {
		lz = 31
	}
	if w.leading != 0xff && lz >= w.leading && tz >= w.trailing {
		w.put(0b10, 2)
		w.put(delta>>w.trailing, 64-w.leading-w.trailing)
		return
	}
	w.leading, w.trailing = lz, tz
	sig := 64 - lz - tz
	// Control bits 11, 5 bits of leading zeros, 6 of significant bits (64
	// is written as 0).
	w.put(0b11<<11|uint64(lz)<<6|uint64(sig&63), 13)
	w.put(delta>>tz, sig)
}

// rest writes the samples after the second from the stored deltas of
// delta of their timestamps (zigzag; all zero if dodsZero) and deltas of
// their values' sortable bits (zigzag), given the second value's sortable
// bits vb and bits prev. It is put, dod and value in one loop with the
// writer's state in local variables, which the compiler keeps in registers:
// the rebuild of every transcoded chunk read runs here.
func (w *xorWriter) rest(dods, dels []uint64, dodsZero bool, vb, prev uint64) {
	buf, acc, n := w.buf, w.acc, w.n
	leading, trailing := w.leading, w.trailing
	for i, del := range dels {
		// The timestamp's code, followed by the value's control bits.
		code, bits := uint64(0), uint(1)
		if !dodsZero {
			if dod := unzigzag(dods[i]); dod != 0 {
				if !xorBitRange(dod, 20) {
					w.buf, w.acc, w.n = buf, acc, n
					w.dod(dod)
					buf, acc, n = w.buf, w.acc, w.n
					bits = 0
				} else {
					code, bits = dodCode(dod)
				}
			}
		}
		vb += uint64(unzigzag(del))
		val := unsortableBits(vb)
		delta := val ^ prev
		prev = val
		if delta == 0 {
			buf, acc, n = putBits(buf, acc, n, code<<1, bits+1)
			continue
		}
		lz := uint(mbits.LeadingZeros64(delta))
		tz := uint(mbits.TrailingZeros64(delta))
		if lz >= 32 {
			lz = 31
		}
		// The control bits and the value's bits go in one put when they
		// fit in 64 bits, as they do for all but the widest values.
		if leading != 0xff && lz >= leading && tz >= trailing {
			sig := 64 - leading - trailing
			if bits+2+sig <= 64 {
				buf, acc, n = putBits(buf, acc, n, (code<<2|0b10)<<sig|delta>>trailing, bits+2+sig)
				continue
			}
			buf, acc, n = putBits(buf, acc, n, code<<2|0b10, bits+2)
			buf, acc, n = putBits(buf, acc, n, delta>>trailing, sig)
			continue
		}
		leading, trailing = lz, tz
		sig := 64 - lz - tz
		ctl := code<<13 | 0b11<<11 | uint64(lz)<<6 | uint64(sig&63)
		if bits+13+sig <= 64 {
			buf, acc, n = putBits(buf, acc, n, ctl<<sig|delta>>tz, bits+13+sig)
			continue
		}
		buf, acc, n = putBits(buf, acc, n, ctl, bits+13)
		buf, acc, n = putBits(buf, acc, n, delta>>tz, sig)
	}
	w.buf, w.acc, w.n = buf, acc, n
	w.leading, w.trailing = leading, trailing
}

// dodCode returns the code of a delta of delta that fits in 20 bits, and its
// length, as dod writes it.
func dodCode(dod int64) (uint64, uint) {
	switch {
	case xorBitRange(dod, 14):
		return 0b10<<14 | uint64(dod)&(1<<14-1), 16
	case xorBitRange(dod, 17):
		return 0b110<<17 | uint64(dod)&(1<<17-1), 20
	default:
		return 0b1110<<20 | uint64(dod)&(1<<20-1), 24
	}
}

// putBits is xorWriter.put on the writer's state held in variables.
func putBits(buf []byte, acc uint64, n uint, x uint64, nbits uint) ([]byte, uint64, uint) {
	free := 64 - n
	if nbits < free {
		return buf, acc | x<<(free-nbits), n + nbits
	}
	acc |= x >> (nbits - free)
	buf = binary.BigEndian.AppendUint64(buf, acc)
	n = nbits - free
	return buf, x << (64 - n), n
}

// finish pads the last byte with zeros and returns the chunk.
func (w *xorWriter) finish() []byte {
	for ; w.n > 0; w.n -= min(w.n, 8) {
		w.buf = append(w.buf, byte(w.acc>>56))
		w.acc <<= 8
	}
	w.acc = 0
	return w.buf
}

func xorBitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}
