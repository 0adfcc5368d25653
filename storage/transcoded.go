package storage

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A reader in the ingester's own process (the querier of an all-in-one)
// does not need XOR bytes: it iterates samples. For it, Select can hand
// out the float chunks of compressed parts as they are stored (transcoded,
// part_transcode.go) and TranscodedChunk iterates them from their byte
// planes. That skips both the rebuild of the XOR bit stream and the
// bit-by-bit decoding of it, which together were most of the CPU of a range
// read over compressed parts; the XOR bytes are still built on demand, by
// Bytes, for whoever sends the chunk on a wire.

// EncTranscodedXOR is the Encoding of a Chunk that Select returns still
// transcoded (SelectOptions.KeepTranscoded). It is no chunkenc encoding:
// read such a chunk with NewChunk.
const EncTranscodedXOR = chunkenc.EncXOR | transcodedFlag

// errTranscoded is the error of a transcoded chunk that does not decode.
var errTranscoded = errors.New("transcoded chunk does not decode")

// NewChunk returns c as a chunkenc.Chunk: chunkenc's own for its
// encodings, a TranscodedChunk for EncTranscodedXOR.
func NewChunk(c Chunk) (chunkenc.Chunk, error) {
	if c.Encoding == EncTranscodedXOR {
		return NewTranscodedChunk(c.Data)
	}
	return chunkenc.FromData(c.Encoding, c.Data)
}

// TranscodedChunk is a float chunk in its transcoded form, read-only. It
// says it is an XOR chunk, and Bytes rebuilds the XOR bytes (on each call),
// so it can go wherever a chunkenc.XORChunk goes; Iterator reads the
// samples without them.
type TranscodedChunk struct {
	data []byte
	n    int
}

// NewTranscodedChunk returns the chunk of the transcoded data b, which it
// aliases.
func NewTranscodedChunk(b []byte) (*TranscodedChunk, error) {
	c := &TranscodedChunk{}
	c.Reset(b)
	if c.n == 0 {
		return nil, errTranscoded
	}
	return c, nil
}

// Reset makes c the chunk of the transcoded data b (not XOR bytes).
func (c *TranscodedChunk) Reset(b []byte) {
	d := partDecoder{b: b}
	c.data, c.n = b, int(d.uvarintMax(math.MaxUint16))
	if d.err != nil {
		c.n = 0
	}
}

// Encoding is XOR: what Bytes returns.
func (c *TranscodedChunk) Encoding() chunkenc.Encoding { return chunkenc.EncXOR }

// Bytes rebuilds the chunk's XOR bytes, into a new slice (nil if the chunk
// does not decode).
func (c *TranscodedChunk) Bytes() []byte {
	b, _ := untranscodeXOR(c.data)
	return b
}

// StoredLen is the length of the transcoded data.
func (c *TranscodedChunk) StoredLen() int { return len(c.data) }

// NumSamples returns the number of samples in the chunk.
func (c *TranscodedChunk) NumSamples() int { return c.n }

// Appender fails: the chunk is read-only.
func (c *TranscodedChunk) Appender() (chunkenc.Appender, error) {
	return nil, errors.New("a transcoded chunk is read-only")
}

// Compact does nothing.
func (c *TranscodedChunk) Compact() {}

// Iterator returns an iterator over the chunk's samples, reusing it if it
// is one that Iterator returned.
func (c *TranscodedChunk) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	pi, ok := it.(*planeIterator)
	if !ok {
		pi = &planeIterator{}
	}
	pi.reset(c.data)
	return pi
}

// planeIterator iterates the samples of a transcoded chunk: the timestamp
// deltas of deltas and the value deltas are read from their planes once,
// then each sample is two additions.
type planeIterator struct {
	dods, dels []uint64 // decoded streams, reused
	n, i       int      // samples; index of the current one (-1: before the first)
	t, dt      int64
	vb         uint64 // the current value's sortable bits
	dt1        int64
	err        error
}

func (it *planeIterator) reset(b []byte) {
	it.i, it.n, it.err = -1, 0, nil
	d := partDecoder{b: b}
	n := int(d.uvarintMax(math.MaxUint16))
	t0 := d.varint()
	if n > 1 {
		it.dt1 = d.varint()
	}
	if d.err != nil || n == 0 || len(d.b) < 8 {
		it.err = errTranscoded
		return
	}
	it.t, it.vb = t0, sortableBits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	var ok bool
	if it.dods, _, ok = readStream(&d, max(n-2, 0), it.dods); !ok {
		it.err = errTranscoded
		return
	}
	if it.dels, _, ok = readStream(&d, n-1, it.dels); !ok || len(d.b) != 0 {
		it.err = errTranscoded
		return
	}
	it.n = n
}

func (it *planeIterator) Next() chunkenc.ValueType {
	i := it.i + 1
	if i >= it.n {
		it.i = it.n
		return chunkenc.ValNone
	}
	it.i = i
	switch i {
	case 0:
	case 1:
		it.dt = it.dt1
		it.t += it.dt
		it.vb += uint64(unzigzag(it.dels[0]))
	default:
		it.dt += unzigzag(it.dods[i-2])
		it.t += it.dt
		it.vb += uint64(unzigzag(it.dels[i-1]))
	}
	return chunkenc.ValFloat
}

// Seek moves to the first sample at or after t; it stays on the current
// sample if that is at or after t.
func (it *planeIterator) Seek(t int64) chunkenc.ValueType {
	if it.i >= it.n {
		return chunkenc.ValNone
	}
	for it.i < 0 || it.t < t {
		if it.Next() == chunkenc.ValNone {
			return chunkenc.ValNone
		}
	}
	return chunkenc.ValFloat
}

func (it *planeIterator) At() (int64, float64) {
	return it.t, math.Float64frombits(unsortableBits(it.vb))
}

func (it *planeIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("a transcoded chunk holds floats only")
}

func (it *planeIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("a transcoded chunk holds floats only")
}

func (it *planeIterator) AtT() int64 { return it.t }

func (it *planeIterator) AtST() int64 { return 0 }

func (it *planeIterator) Err() error { return it.err }
