package querier

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	argusstorage "github.com/argus-tsdb/argus/storage"
)

// Labels returns the series' labels.
func (s *fetchedSeries) Labels() labels.Labels { return s.labels }

// Iterator returns an iterator over the series' chunks, reusing it when it
// is one that Iterator returned.
func (s *fetchedSeries) Iterator(it chunks.Iterator) chunks.Iterator {
	mi, ok := it.(*metaIterator)
	if !ok {
		mi = &metaIterator{}
	}
	*mi = metaIterator{chks: s.chunks}
	return mi
}

// metaIterator iterates a slice of chunks.
type metaIterator struct {
	chks []chunks.Meta
	cur  int // index+1 of the current chunk; 0 before the first Next
}

func (it *metaIterator) At() chunks.Meta { return it.chks[it.cur-1] }

func (it *metaIterator) Next() bool {
	if it.cur >= len(it.chks) {
		return false
	}
	it.cur++
	return true
}

func (*metaIterator) Err() error { return nil }

// sampleSeries is the sample view of a chunk series.
type sampleSeries struct {
	storage.ChunkSeries
}

// Iterator returns an iterator over the series' samples, reusing it (and
// the chunk and sample iterators inside it) when it is one that Iterator
// returned.
func (s *sampleSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	si, ok := it.(*sampleIterator)
	if !ok {
		si = &sampleIterator{}
	}
	si.reset(s.ChunkSeries.Iterator(si.chunks))
	return si
}

// sampleIterator iterates the samples of a series' chunks one chunk after
// the other. That is all it takes because the chunks are ordered by time and
// do not overlap: the SeriesSource protocol says so (and seriesDecoder checks
// it), and the compacting merger that will combine replicas (issue #3)
// produces such chunks too. It reuses one iterator of each kind for all
// chunks: XOR chunks from the wire (chunkenc.XORChunk) are decoded by
// storage.XORIterator, which decodes a whole chunk in one loop for about
// half of chunkenc's CPU per sample; other chunks by their own iterator.
type sampleIterator struct {
	chunks  chunks.Iterator   // the series' chunks, on the current one
	cur     chunkenc.Iterator // the current chunk's samples, when loaded
	xor     argusstorage.XORIterator
	other   chunkenc.Iterator // the last non-XOR iterator, for reuse
	curMaxT int64             // the current chunk's max time, when loaded
	loaded  bool              // cur iterates the current chunk
	done    bool              // no sample left, or an error
	err     error
}

func (it *sampleIterator) reset(chks chunks.Iterator) {
	it.chunks, it.loaded, it.done, it.err = chks, false, false, nil
}

// nextChunk moves to the next chunk, or marks the iterator done.
func (it *sampleIterator) nextChunk() {
	if !it.chunks.Next() {
		it.err = it.chunks.Err()
		it.loaded, it.done = false, true
		return
	}
	m := it.chunks.At()
	if xc, ok := m.Chunk.(*chunkenc.XORChunk); ok {
		it.xor.Reset(xc.Bytes())
		it.cur = &it.xor
	} else {
		it.other = m.Chunk.Iterator(it.other)
		it.cur = it.other
	}
	it.curMaxT = m.MaxTime
	it.loaded = true
}

// fail records the error of the current chunk's iterator, if any, and
// reports whether there was one.
func (it *sampleIterator) fail() bool {
	if err := it.cur.Err(); err != nil {
		it.err, it.loaded, it.done = err, false, true
		return true
	}
	return false
}

func (it *sampleIterator) Next() chunkenc.ValueType {
	for !it.done {
		if it.loaded {
			if vt := it.cur.Next(); vt != chunkenc.ValNone {
				return vt
			}
			if it.fail() {
				break
			}
		}
		it.nextChunk()
	}
	return chunkenc.ValNone
}

// Seek moves to the first sample at or after t, skipping without decoding
// the chunks that end before t; it stays on the current sample if that is
// at or after t.
func (it *sampleIterator) Seek(t int64) chunkenc.ValueType {
	for !it.done {
		if it.loaded && it.curMaxT >= t {
			if vt := it.cur.Seek(t); vt != chunkenc.ValNone {
				return vt
			}
			if it.fail() {
				break
			}
		}
		it.nextChunk()
	}
	return chunkenc.ValNone
}

func (it *sampleIterator) At() (int64, float64) { return it.cur.At() }

func (it *sampleIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.cur.AtHistogram(h)
}

func (it *sampleIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.cur.AtFloatHistogram(fh)
}

func (it *sampleIterator) AtT() int64  { return it.cur.AtT() }
func (it *sampleIterator) AtST() int64 { return it.cur.AtST() }
func (it *sampleIterator) Err() error  { return it.err }
