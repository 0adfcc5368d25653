package promimport

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/storage"
)

// shape appends to out what the store gets of chunk m: m itself (its bytes
// copied) if it is an XOR chunk within one partition, else its float
// samples re-encoded into XOR chunks cut at partition boundaries and every
// maxSamplesPerChunk samples, or nothing for a histogram chunk (counted).
func (w *writer) shape(out []storage.Chunk, m chunks.Meta) ([]storage.Chunk, error) {
	if m.Chunk == nil {
		return out, errNoChunk
	}
	switch enc := m.Chunk.Encoding(); enc {
	case chunkenc.EncXOR, chunkenc.EncXOR2:
		if enc == chunkenc.EncXOR && partitionOf(m.MinTime, w.rangeMs) == partitionOf(m.MaxTime, w.rangeMs) {
			w.stats.Samples += int64(m.Chunk.NumSamples())
			return append(out, cloneChunk(m)), nil
		}
		if enc == chunkenc.EncXOR {
			w.stats.SplitChunks++
		} else {
			w.stats.ReencodedChunks++
		}
		n := len(out)
		out, err := reencode(out, m.Chunk, w.rangeMs)
		for _, c := range out[n:] {
			w.stats.Samples += int64(chunkSamples(c))
		}
		return out, err
	case chunkenc.EncHistogram, chunkenc.EncFloatHistogram, chunkenc.EncHistogramST, chunkenc.EncFloatHistogramST:
		w.stats.HistogramChunks++
		w.stats.HistogramSamples += int64(m.Chunk.NumSamples())
		return out, nil
	default:
		return out, fmt.Errorf("chunk of unknown encoding %s (%d)", enc, enc)
	}
}

// reencode appends the float samples of c to out as XOR chunks, a new one
// at every partition boundary and every maxSamplesPerChunk samples.
func reencode(out []storage.Chunk, c chunkenc.Chunk, rangeMs int64) ([]storage.Chunk, error) {
	var (
		cur     *chunkenc.XORChunk
		app     chunkenc.Appender
		curPart int64
		cm      storage.Chunk
	)
	finish := func() {
		if cur != nil {
			cm.Encoding, cm.Data = chunkenc.EncXOR, slices.Clone(cur.Bytes())
			out = append(out, cm)
		}
	}
	it := c.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			return out, fmt.Errorf("%s sample in a %s chunk", vt, c.Encoding())
		}
		t, v := it.At()
		if cur == nil || partitionOf(t, rangeMs) != curPart || cur.NumSamples() >= maxSamplesPerChunk {
			finish()
			cur = chunkenc.NewXORChunk()
			var err error
			if app, err = cur.Appender(); err != nil {
				return out, fmt.Errorf("new xor appender: %w", err)
			}
			curPart, cm = partitionOf(t, rangeMs), storage.Chunk{MinTime: t}
		}
		app.Append(0, t, v)
		cm.MaxTime = t
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("decode %s chunk: %w", c.Encoding(), err)
	}
	finish()
	return out, nil
}

// partitionOf returns the index of the partition of length rangeMs that
// holds t, rounding down for negative times too.
func partitionOf(t, rangeMs int64) int64 {
	p := t / rangeMs
	if t%rangeMs < 0 {
		p--
	}
	return p
}

// chunkSamples returns the number of samples of an XOR chunk made here.
func chunkSamples(c storage.Chunk) int {
	xc, err := chunkenc.FromData(c.Encoding, c.Data)
	if err != nil {
		return 0 // Not reached: the bytes were just encoded.
	}
	return xc.NumSamples()
}
