package ingester

import (
	"encoding/binary"
	"math"
)

// An out-of-order sample usually lands inside one chunk, often near the end
// of the open one (a sample a scrape or two late). Re-encoding the chunk
// would cost a full encode per such sample; xorResumeAt instead decodes the
// chunk up to the insertion point, keeping the encoder's state as xorAppend
// had it there, so that the chunk (the open one in place, a finished one as
// a copy) can be cut back to that point and the merged rest appended. XOR encoding is deterministic, so the bytes are those of a
// full re-encode (TestXORResumeAt checks it).

// bitReader reads bits most significant first.
type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) read(n int) uint64 {
	var u uint64
	for n > 0 {
		off := r.pos & 7
		avail := 8 - off
		take := min(avail, n)
		bits := uint64(r.b[r.pos>>3]>>(avail-take)) & (1<<take - 1)
		u = u<<take | bits
		n -= take
		r.pos += take
	}
	return u
}

// xorResume is the state of an XOR chunk's encoder after its first n
// samples, and where their bits end.
type xorResume struct {
	st   xorState
	n    int
	bits int // bits used, header included
}

// xorResumeAt decodes the XOR chunk data (written by xorAppend) and returns
// the encoder's state after its samples older than t, and appends the
// samples at or after t to tail. ok is false if data is malformed.
func xorResumeAt(data []byte, t int64, tail []oooSample) (xorResume, []oooSample, bool) {
	total := int(binary.BigEndian.Uint16(data))
	r := bitReader{b: data, pos: xorHeaderSize * 8}
	var st xorState
	var res xorResume
	found := false
	for k := range total {
		prev := st
		prevBits := r.pos
		switch k {
		case 0:
			v, n := binary.Varint(data[r.pos>>3:])
			if n <= 0 {
				return res, tail, false
			}
			r.pos += 8 * n
			st.t, st.v, st.leading = v, math.Float64frombits(r.read(64)), 0xff
		case 1:
			var d uint64
			for shift := uint(0); ; shift += 7 {
				b := r.read(8)
				d |= (b & 0x7f) << shift
				if b < 0x80 {
					break
				}
			}
			st.tDelta = d
			st.t += int64(d)
			st.v = xorReadValue(&r, &st)
		default:
			var dod int64
			switch {
			case r.read(1) == 0:
			case r.read(1) == 0:
				dod = signed(r.read(14), 14)
			case r.read(1) == 0:
				dod = signed(r.read(17), 17)
			case r.read(1) == 0:
				dod = signed(r.read(20), 20)
			default:
				dod = int64(r.read(64))
			}
			st.tDelta = uint64(int64(st.tDelta) + dod)
			st.t += int64(st.tDelta)
			st.v = xorReadValue(&r, &st)
		}
		if r.pos > 8*len(data) {
			return res, tail, false
		}
		if !found && st.t >= t {
			found = true
			res = xorResume{st: prev, n: k, bits: prevBits}
		}
		if found {
			tail = append(tail, oooSample{st.t, st.v})
		}
	}
	if !found {
		res = xorResume{st: st, n: total, bits: r.pos}
	}
	res.st.free = uint8((8 - res.bits%8) % 8)
	return res, tail, true
}

// signed interprets the low n bits of u as xorAppend wrote a delta of
// delta (chunkenc's bitRange).
func signed(u uint64, n uint) int64 {
	if u > 1<<(n-1) {
		return int64(u) - 1<<n
	}
	return int64(u)
}

// xorReadValue reads a value written by xorWriteValue after st.v, updating
// st's leading and trailing zeros.
func xorReadValue(r *bitReader, st *xorState) float64 {
	if r.read(1) == 0 {
		return st.v
	}
	if r.read(1) == 1 {
		st.leading = uint8(r.read(5))
		sig := uint8(r.read(6))
		if sig == 0 {
			sig = 64
		}
		st.trailing = 64 - st.leading - sig
	}
	sig := 64 - int(st.leading) - int(st.trailing)
	delta := r.read(sig) << st.trailing
	return math.Float64frombits(math.Float64bits(st.v) ^ delta)
}

// resumeLocked merges smps (sorted, none at a time in the chunk) into the
// one chunk that holds their range: the open chunk, in place, or the
// finished chunk fc (next after prev), replaced by a copy. It reports
// false, changing nothing, unless smps fall after the chunk's first sample
// and before its last, and the merge fits one chunk. The caller holds mu.
func (s *memSeries) resumeLocked(prev, fc *finishedChunk, smps []oooSample, sc *mergeScratch) bool {
	last := smps[len(smps)-1].t
	if fc == nil {
		if s.open == nil || smps[0].t <= s.openMinTLocked() || !resumeXOR(&s.open, &s.xor, smps, sc) {
			return false
		}
		return true
	}
	if smps[0].t <= fc.minT || last >= fc.maxT {
		return false
	}
	buf := make([]byte, len(fc.data), len(fc.data)+2*len(smps)+16)
	copy(buf, fc.data)
	var st xorState
	if !resumeXOR(&buf, &st, smps, sc) {
		return false
	}
	data := make([]byte, len(buf)) // Finished chunks have no spare capacity.
	copy(data, buf)
	nc := &finishedChunk{minT: fc.minT, maxT: fc.maxT, data: data, next: fc.next}
	if prev == nil {
		s.finished = nc
	} else {
		prev.next = nc
	}
	return true
}

// resumeXOR cuts the XOR chunk *data back to its samples older than smps[0]
// and appends the merge of the rest with smps, st being its encoder state.
// It reports false, changing nothing, if the merge would pass
// samplesPerChunk or the chunk does not decode.
func resumeXOR(data *[]byte, st *xorState, smps []oooSample, sc *mergeScratch) bool {
	if int(binary.BigEndian.Uint16(*data))+len(smps) > samplesPerChunk {
		return false
	}
	res, tail, ok := xorResumeAt(*data, smps[0].t, sc.old[:0])
	sc.old = tail
	if !ok {
		return false
	}
	merged := mergeSamples(sc.merged[:0], tail, smps)
	sc.merged = merged
	n := (res.bits + 7) / 8
	b := (*data)[:n]
	if res.st.free > 0 {
		b[n-1] &^= byte(1<<res.st.free - 1) // writeBits ORs into the last byte.
	}
	binary.BigEndian.PutUint16(b, uint16(res.n))
	*st = res.st
	for _, x := range merged {
		xorAppend(&b, st, x.t, x.v)
	}
	*data = b
	return true
}
