package ingester

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The open chunk of a series is appended to here rather than through
// chunkenc.XORChunk's Appender, which is a separate object of 48 bytes per
// series behind an interface (16 more bytes, and a cache miss per append):
// the encoder's state lives in memSeries itself. The bytes written are
// exactly Prometheus's XOR chunk encoding (tsdb/chunkenc/xor.go, documented
// in its docs/bstream.md), so chunkenc reads them, and
// TestXORAppend_MatchesChunkenc checks them bit for bit against it.

// xorHeaderSize is the chunk header: the sample count, big-endian.
const xorHeaderSize = 2

// xorState is the encoder state of an open chunk, kept in memSeries.
// Guarded by the series' mu.
type xorState struct {
	t      int64   // the last sample's time
	v      float64 // the last sample's value
	tDelta uint64  // the last time delta
	// free is the number of unused low bits of the last byte of chunk.
	free uint8
	// leading and trailing are the zero bits around the last value XOR's
	// significant bits; leading is 0xff before the first XOR is written.
	leading, trailing uint8
}

// xorAppend appends a sample to the XOR chunk in *chunk (a header at least)
// whose encoder state is st.
func xorAppend(chunk *[]byte, st *xorState, t int64, v float64) {
	num := binary.BigEndian.Uint16((*chunk)[:xorHeaderSize])
	var tDelta uint64
	switch num {
	case 0:
		*chunk = binary.AppendVarint(*chunk, t) // The header ends on a byte boundary: free is 0.
		writeBits(chunk, st, math.Float64bits(v), 64)
		st.leading = 0xff
	case 1:
		tDelta = uint64(t - st.t)
		writeUvarint(chunk, st, tDelta)
		xorWriteValue(chunk, st, v)
	case math.MaxUint16:
		panic("ingester: chunk capacity exceeded") // Cut at samplesPerChunk long before.
	default:
		tDelta = uint64(t - st.t)
		dod := int64(tDelta - st.tDelta)
		switch {
		case dod == 0:
			writeBits(chunk, st, 0, 1)
		case bitRange(dod, 14):
			writeBits(chunk, st, 0b10<<14|uint64(dod)&(1<<14-1), 16)
		case bitRange(dod, 17):
			writeBits(chunk, st, 0b110<<17|uint64(dod)&(1<<17-1), 20)
		case bitRange(dod, 20):
			writeBits(chunk, st, 0b1110<<20|uint64(dod)&(1<<20-1), 24)
		default:
			writeBits(chunk, st, 0b1111, 4)
			writeBits(chunk, st, uint64(dod), 64)
		}
		xorWriteValue(chunk, st, v)
	}
	st.t, st.v, st.tDelta = t, v, tDelta
	binary.BigEndian.PutUint16((*chunk)[:xorHeaderSize], num+1)
}

// bitRange reports whether x fits the nbits field of a time delta of
// delta (as chunkenc's).
func bitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}

// writeUvarint writes x as a uvarint, byte by byte at the bit position.
func writeUvarint(chunk *[]byte, st *xorState, x uint64) {
	for x >= 0x80 {
		writeBits(chunk, st, uint64(byte(x)|0x80), 8)
		x >>= 7
	}
	writeBits(chunk, st, x, 8)
}

// xorWriteValue writes v as the XOR with the previous value (chunkenc's
// xorWrite).
func xorWriteValue(chunk *[]byte, st *xorState, v float64) {
	delta := math.Float64bits(v) ^ math.Float64bits(st.v)
	if delta == 0 {
		writeBits(chunk, st, 0, 1)
		return
	}
	leading := uint8(bits.LeadingZeros64(delta))
	trailing := uint8(bits.TrailingZeros64(delta))
	if leading >= 32 { // Stored on 5 bits.
		leading = 31
	}
	if st.leading != 0xff && leading >= st.leading && trailing >= st.trailing {
		writeBits(chunk, st, 0b10, 2)
		writeBits(chunk, st, delta>>st.trailing, 64-int(st.leading)-int(st.trailing))
		return
	}
	st.leading, st.trailing = leading, trailing
	sig := 64 - leading - trailing // 64 is written as 0 on 6 bits, and read back as 64.
	writeBits(chunk, st, 0b11<<11|uint64(leading)<<6|uint64(sig)&(1<<6-1), 13)
	writeBits(chunk, st, delta>>trailing, int(sig))
}

// writeBits writes the nbits (at most 64) low bits of u, most significant
// first, after the last bit written.
func writeBits(chunk *[]byte, st *xorState, u uint64, nbits int) {
	if nbits == 0 {
		return
	}
	u <<= 64 - uint(nbits)
	b := *chunk
	if st.free > 0 {
		free := int(st.free)
		b[len(b)-1] |= byte(u >> uint(64-free))
		if nbits < free {
			st.free = uint8(free - nbits)
			return
		}
		u <<= uint(free)
		nbits -= free
		st.free = 0
	}
	for nbits >= 8 {
		b = append(b, byte(u>>56))
		u <<= 8
		nbits -= 8
	}
	if nbits > 0 {
		b = append(b, byte(u>>56))
		st.free = uint8(8 - nbits)
	}
	*chunk = b
}
