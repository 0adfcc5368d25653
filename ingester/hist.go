package ingester

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/internal/slab"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// Native histograms in the head.
//
// A series that never had a histogram sample keeps the compact XOR state of
// memSeries (open, xor, finished) and a nil hist. Its first histogram sample
// cuts the open XOR chunk and gives it a histState, which from then on takes
// every sample of the series, float ones too: its chunks are Prometheus
// chunkenc chunks of any encoding (XOR, histogram, float histogram), cut on
// a change of sample type as Prometheus's head does. So the series' chunks
// in time order are always the XOR list of memSeries, then the histState's
// list, and hist is never reset to nil (GC removes the whole series).

// histSamplesPerXORChunk is when histState cuts an XOR chunk, as memSeries.
const histSamplesPerXORChunk = samplesPerChunk

// histState is the chunk state of a series that has had a histogram sample.
// All of it is guarded by the series' mu.
type histState struct {
	open     chunkenc.Chunk    // the chunk appended to, nil when none
	app      chunkenc.Appender // open's appender
	openMinT int64
	openMaxT int64
	finished *encChunk // the oldest cut chunk not persisted yet
}

// encChunk is a cut chunk of a histState, with its encoding. data is
// immutable once cut.
type encChunk struct {
	minT, maxT int64
	enc        chunkenc.Encoding
	data       []byte
	next       *encChunk
}

// appendAnyLocked appends one sample of any type: a histogram when h or fh
// is set, else the float v. It reports whether a chunk was cut. The caller
// holds mu and has checked that t is newer than every sample.
func (s *memSeries) appendAnyLocked(t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, nowMs int64) (cut bool) {
	if s.hist == nil {
		if h == nil && fh == nil {
			return s.appendLocked(t, v, nowMs)
		}
		cut = s.open != nil
		s.cutLocked()
		s.hist = &histState{}
	}
	if s.hist.append(t, v, h, fh) {
		cut = true
	}
	s.lastAppend = unixSeconds(nowMs)
	return cut
}

// sampleEncoding is the chunk encoding of a sample.
func sampleEncoding(h *histogram.Histogram, fh *histogram.FloatHistogram) chunkenc.Encoding {
	switch {
	case h != nil:
		return chunkenc.EncHistogram
	case fh != nil:
		return chunkenc.EncFloatHistogram
	}
	return chunkenc.EncXOR
}

// mustCut reports whether a sample of encoding enc at t starts a new chunk:
// another encoding, another 2h range, or a full chunk (120 samples for XOR;
// for histograms Prometheus's size target, once a chunk has its minimum
// number of samples).
func (hs *histState) mustCut(t int64, enc chunkenc.Encoding) bool {
	if hs.open.Encoding() != enc || chunkIndex(t) != chunkIndex(hs.openMaxT) {
		return true
	}
	n := hs.open.NumSamples()
	if enc == chunkenc.EncXOR {
		return n >= histSamplesPerXORChunk
	}
	// The sample count is a uint16 that chunkenc panics on overflowing: tiny
	// histograms many per ms would fill it before the size target.
	return n >= histMaxSamplesPerChunk ||
		(n >= chunkenc.MinSamplesPerHistogramChunk && len(hs.open.Bytes()) >= chunkenc.TargetBytesPerHistogramChunk)
}

// histMaxSamplesPerChunk caps a histogram chunk far below chunkenc's limit.
const histMaxSamplesPerChunk = 1 << 14

// append appends one sample, cutting first when mustCut says so. The
// appender may itself start a new chunk (a counter reset, a schema change)
// or recode the open one (new buckets); the histogram may be changed by it.
func (hs *histState) append(t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram) (cut bool) {
	enc := sampleEncoding(h, fh)
	var prev chunkenc.Appender
	if hs.open != nil && hs.mustCut(t, enc) {
		prev = hs.app // For the new chunk's counter-reset header, as Prometheus's head does.
		hs.cut()
		cut = true
	}
	if hs.open == nil {
		c, err := chunkenc.NewEmptyChunk(enc)
		if err != nil {
			panic(err) // The three encodings above always have a chunk.
		}
		app, err := c.Appender()
		if err != nil {
			panic(err) // An empty chunk always has an appender.
		}
		hs.open, hs.app, hs.openMinT = c, app, t
	}
	var (
		next    chunkenc.Chunk
		recoded bool
	)
	switch enc {
	case chunkenc.EncHistogram:
		next, recoded, hs.app, _ = hs.app.AppendHistogram(prev, 0, t, h, false) // Not append-only: never fails.
	case chunkenc.EncFloatHistogram:
		next, recoded, hs.app, _ = hs.app.AppendFloatHistogram(prev, 0, t, fh, false)
	default:
		hs.app.Append(0, t, v)
	}
	switch {
	case next == nil:
	case recoded:
		hs.open = next
	default:
		app := hs.app // The new chunk's; the samples before t end the cut one.
		hs.cut()
		hs.open, hs.app, hs.openMinT = next, app, t
		cut = true
	}
	hs.openMaxT = t
	return cut
}

// cut moves the open chunk, if any, to the end of finished.
func (hs *histState) cut() {
	if hs == nil || hs.open == nil {
		return
	}
	data := hs.open.Bytes()
	fc := &encChunk{minT: hs.openMinT, maxT: hs.openMaxT, enc: hs.open.Encoding(), data: append(make([]byte, 0, len(data)), data...)}
	if hs.finished == nil {
		hs.finished = fc
	} else {
		last := hs.finished
		for last.next != nil {
			last = last.next
		}
		last.next = fc
	}
	hs.open, hs.app = nil, nil
}

// hasOpen reports whether hs has an open chunk; hs may be nil.
func (hs *histState) hasOpen() bool { return hs != nil && hs.open != nil }

// inMemory reports whether hs has any chunk; hs may be nil.
func (hs *histState) inMemory() bool { return hs != nil && (hs.open != nil || hs.finished != nil) }

// firstInMemory returns the min time of the oldest chunk of hs, or noTime.
func (hs *histState) firstInMemory() int64 {
	switch {
	case hs == nil:
		return noTime
	case hs.finished != nil:
		return hs.finished.minT
	case hs.open != nil:
		return hs.openMinT
	}
	return noTime
}

// overlaps reports whether a chunk of hs overlaps [mint, maxt].
func (hs *histState) overlaps(mint, maxt int64) bool {
	if hs == nil {
		return false
	}
	for c := hs.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			return true
		}
	}
	return hs.open != nil && hs.openMinT <= maxt && hs.openMaxT >= mint
}

// appendChunks appends the chunks of hs overlapping [mint, maxt] to dst, as
// memSeries.appendChunksCarvedLocked: finished ones shared, the open one
// copied from *opens.
func (hs *histState) appendChunks(dst []storage.Chunk, opens *[]byte, mint, maxt int64) []storage.Chunk {
	if hs == nil {
		return dst
	}
	for c := hs.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			dst = append(dst, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: c.enc, Data: c.data})
		}
	}
	if hs.open != nil && hs.openMinT <= maxt && hs.openMaxT >= mint {
		b := hs.open.Bytes()
		data := slab.Take(opens, len(b), openChunkBlock)
		copy(data, b)
		dst = append(dst, storage.Chunk{MinTime: hs.openMinT, MaxTime: hs.openMaxT, Encoding: hs.open.Encoding(), Data: data})
	}
	return dst
}

// appendFinishedLocked appends the finished chunks of s that end at or
// before floor, XOR ones first, to dst, for a flush, and returns how many of
// them are XOR ones (see dropFinishedLocked). The caller holds mu.
func (s *memSeries) appendFinishedLocked(dst []storage.Chunk, floor int64) ([]storage.Chunk, int) {
	n := len(dst)
	for c := s.finished; c != nil && c.maxT <= floor; c = c.next {
		dst = append(dst, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: chunkenc.EncXOR, Data: c.data})
	}
	nXOR := len(dst) - n
	if s.hist != nil {
		for c := s.hist.finished; c != nil && c.maxT <= floor; c = c.next {
			dst = append(dst, storage.Chunk{MinTime: c.minT, MaxTime: c.maxT, Encoding: c.enc, Data: c.data})
		}
	}
	return dst, nXOR
}

// dropFinishedLocked removes the nXOR oldest finished XOR chunks of s and
// its nHist oldest finished histogram-state chunks, which exist (a flush
// persisted them), and returns their bytes. The caller holds mu.
func (s *memSeries) dropFinishedLocked(nXOR, nHist int) (nBytes int) {
	for ; nXOR > 0 && s.finished != nil; nXOR-- {
		nBytes += len(s.finished.data)
		s.finished = s.finished.next
	}
	for ; nHist > 0 && s.hist != nil && s.hist.finished != nil; nHist-- {
		nBytes += len(s.hist.finished.data)
		s.hist.finished = s.hist.finished.next
	}
	return nBytes
}

// hasFinishedLocked reports whether s has a finished chunk to persist. The
// caller holds mu.
func (s *memSeries) hasFinishedLocked() bool {
	return s.finished != nil || (s.hist != nil && s.hist.finished != nil)
}

// dropBefore drops the chunks of hs that end before cutoff and returns how
// many; it runs after memSeries dropped its own (older) ones.
func (hs *histState) dropBefore(cutoff int64) (dropped int) {
	if hs == nil {
		return 0
	}
	for hs.finished != nil && hs.finished.maxT < cutoff {
		hs.finished = hs.finished.next
		dropped++
	}
	if hs.finished == nil && hs.open != nil && hs.openMaxT < cutoff {
		hs.open, hs.app = nil, nil
		dropped++
	}
	return dropped
}

// stats adds the chunks of hs to a chunk count and time range.
func (hs *histState) stats(n, mint, maxt *int64) {
	if hs == nil {
		return
	}
	for c := hs.finished; c != nil; c = c.next {
		*n++
		*mint, *maxt = min(*mint, c.minT), max(*maxt, c.maxT)
	}
	if hs.open != nil {
		*n++
		*mint, *maxt = min(*mint, hs.openMinT), max(*maxt, hs.openMaxT)
	}
}

// lastChunk returns the newest chunk of hs, nil if none.
func (hs *histState) lastChunk() chunkenc.Chunk {
	if hs.open != nil {
		return hs.open
	}
	if hs.finished == nil {
		return nil
	}
	last := hs.finished
	for last.next != nil {
		last = last.next
	}
	c, err := chunkenc.FromData(last.enc, last.data)
	if err != nil {
		return nil
	}
	return c
}

// lastSample is the newest sample of a series, of any type.
type lastSample struct {
	t  int64
	vt chunkenc.ValueType
	v  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// last returns the newest sample of hs, decoding the chunk that holds it
// (for the rare duplicate check of a retried push); ok is false if none.
func (hs *histState) last() (ls lastSample, ok bool) {
	c := hs.lastChunk()
	if c == nil {
		return ls, false
	}
	it := c.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		ls.vt, ok = vt, true
		switch vt {
		case chunkenc.ValFloat:
			ls.t, ls.v = it.At()
		case chunkenc.ValHistogram:
			ls.t, ls.h = it.AtHistogram(ls.h)
		case chunkenc.ValFloatHistogram:
			ls.t, ls.fh = it.AtFloatHistogram(ls.fh)
		}
	}
	return ls, ok && it.Err() == nil
}

// lastFloat is memSeries.lastSampleLocked for a series with hist: its
// newest sample, if it is a float.
func (hs *histState) lastFloat() (t int64, v float64, ok bool) {
	ls, ok := hs.last()
	return ls.t, ls.v, ok && ls.vt == chunkenc.ValFloat
}

// wireEncoding is the query wire's encoding of a chunk encoding
// (UNSPECIFIED for one the wire has not, which the querier refuses).
func wireEncoding(e chunkenc.Encoding) arguspb.ChunkEncoding {
	switch e {
	case chunkenc.EncXOR:
		return arguspb.ChunkEncoding_CHUNK_ENCODING_XOR
	case chunkenc.EncHistogram:
		return arguspb.ChunkEncoding_CHUNK_ENCODING_HISTOGRAM
	case chunkenc.EncFloatHistogram:
		return arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM
	}
	return arguspb.ChunkEncoding_CHUNK_ENCODING_UNSPECIFIED
}
