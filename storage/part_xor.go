package storage

import (
	"encoding/binary"
	"math/bits"
)

// encodeXOR encodes samples (times ts, float bits vs) as chunkenc's XOR
// encoder does, byte for byte, but with a 64-bit accumulator instead of a
// write per bit, which makes rebuilding transcoded chunks several times
// faster. transcodeXOR keeps a transcoded chunk only if this rebuilds the
// original bytes, so a difference could only cost density, never data.
func encodeXOR(ts []int64, vs []uint64) []byte {
	return encodeXORTo(&bitWriter{buf: make([]byte, 0, 2+len(ts)*3)}, ts, vs)
}

// encodeXORTo is encodeXOR appending to w, which must be empty.
func encodeXORTo(w *bitWriter, ts []int64, vs []uint64) []byte {
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(ts)))
	var (
		tDelta            uint64
		leading, trailing uint8 = 0xff, 0
		tmp               [binary.MaxVarintLen64]byte
	)
	for i, t := range ts {
		switch i {
		case 0:
			for _, b := range tmp[:binary.PutVarint(tmp[:], t)] {
				w.write(uint64(b), 8)
			}
			w.write(vs[0], 64)
		case 1:
			tDelta = uint64(t - ts[0])
			for _, b := range tmp[:binary.PutUvarint(tmp[:], tDelta)] {
				w.write(uint64(b), 8)
			}
			w.xorValue(vs[1]^vs[0], &leading, &trailing)
		default:
			d := uint64(t - ts[i-1])
			dod := int64(d - tDelta)
			tDelta = d
			switch {
			case dod == 0:
				w.write(0, 1)
			case xorBitRange(dod, 14):
				w.write(0b10, 2)
				w.write(uint64(dod), 14)
			case xorBitRange(dod, 17):
				w.write(0b110, 3)
				w.write(uint64(dod), 17)
			case xorBitRange(dod, 20):
				w.write(0b1110, 4)
				w.write(uint64(dod), 20)
			default:
				w.write(0b1111, 4)
				w.write(uint64(dod), 64)
			}
			w.xorValue(vs[i]^vs[i-1], &leading, &trailing)
		}
	}
	return w.bytes()
}

func xorBitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}

// bitWriter appends bits most significant first, as chunkenc's bstream.
type bitWriter struct {
	buf []byte
	acc uint64 // pending bits, left-aligned
	n   uint   // number of pending bits, below 32
}

// write appends the low nbits (0 to 64) of x.
func (w *bitWriter) write(x uint64, nbits uint) {
	if nbits > 32 {
		w.write32(x>>32&(1<<(nbits-32)-1), nbits-32)
		w.write32(x&0xffffffff, 32)
		return
	}
	w.write32(x&(1<<nbits-1), nbits)
}

// write32 appends x, which has nbits (at most 32) bits.
func (w *bitWriter) write32(x uint64, nbits uint) {
	w.acc |= x << (64 - w.n - nbits)
	w.n += nbits
	if w.n >= 32 {
		w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(w.acc>>32))
		w.acc <<= 32
		w.n -= 32
	}
}

// xorValue writes the XOR delta of a value as chunkenc's xorWrite does.
func (w *bitWriter) xorValue(delta uint64, leading, trailing *uint8) {
	if delta == 0 {
		w.write(0, 1)
		return
	}
	newLeading := uint8(bits.LeadingZeros64(delta))
	newTrailing := uint8(bits.TrailingZeros64(delta))
	if newLeading >= 32 {
		newLeading = 31
	}
	if *leading != 0xff && newLeading >= *leading && newTrailing >= *trailing {
		w.write(0b10, 2)
		w.write(delta>>*trailing, uint(64-*leading-*trailing))
		return
	}
	*leading, *trailing = newLeading, newTrailing
	sigbits := 64 - newLeading - newTrailing
	// Control bits 11, 5 bits of leading zeros, 6 of significant bits (64
	// is written as 0).
	w.write(0b11<<11|uint64(newLeading)<<6|uint64(sigbits&63), 13)
	w.write(delta>>newTrailing, uint(sigbits))
}

// bytes returns the stream, the last byte padded with zero bits.
func (w *bitWriter) bytes() []byte {
	for ; w.n > 0; w.n -= min(w.n, 8) {
		w.buf = append(w.buf, byte(w.acc>>56))
		w.acc <<= 8
	}
	w.acc, w.n = 0, 0
	return w.buf
}
