package storage

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Native histogram chunks (chunkenc.EncHistogram and EncFloatHistogram) are
// stored as they come, with their encoding, in every part: compressed parts
// zstd-compress their blobs but transcode only XOR chunks. The rare paths
// that rewrite samples (a deletion inside a chunk, a merge of overlapping
// chunks) re-encode them here, sample by sample, with chunkenc's own
// appenders.

// anySample is one sample of a chunk of any encoding: h or fh is set for a
// histogram, else v is the float value.
type anySample struct {
	t  int64
	v  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// appendAnySamples decodes the samples of c and appends them to dst.
func appendAnySamples(dst []anySample, c Chunk) ([]anySample, error) {
	ch, err := chunkenc.FromData(c.Encoding, c.Data)
	if err != nil {
		return dst, err
	}
	it := ch.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		var s anySample
		switch vt {
		case chunkenc.ValFloat:
			s.t, s.v = it.At()
		case chunkenc.ValHistogram:
			s.t, s.h = it.AtHistogram(nil)
		case chunkenc.ValFloatHistogram:
			s.t, s.fh = it.AtFloatHistogram(nil)
		}
		dst = append(dst, s)
	}
	return dst, it.Err()
}

// encoding is the chunk encoding of s.
func (s *anySample) encoding() chunkenc.Encoding {
	switch {
	case s.h != nil:
		return chunkenc.EncHistogram
	case s.fh != nil:
		return chunkenc.EncFloatHistogram
	}
	return chunkenc.EncXOR
}

// encodeAnySamples encodes samples, in time order, into chunks: a new one
// at each change of sample type, after maxXOR float samples, and when a
// histogram appender starts one (a counter reset, a schema change).
func encodeAnySamples(samples []anySample, maxXOR int) ([]Chunk, error) {
	var (
		out  []Chunk
		cur  chunkenc.Chunk
		app  chunkenc.Appender
		minT int64
	)
	finish := func(maxT int64) {
		if cur != nil && cur.NumSamples() > 0 {
			out = append(out, Chunk{MinTime: minT, MaxTime: maxT, Encoding: cur.Encoding(), Data: slices.Clone(cur.Bytes())})
		}
		cur = nil
	}
	for i := range samples {
		s := &samples[i]
		enc := s.encoding()
		if cur != nil && (cur.Encoding() != enc || (enc == chunkenc.EncXOR && cur.NumSamples() >= maxXOR)) {
			finish(samples[i-1].t)
		}
		if cur == nil {
			c, err := chunkenc.NewEmptyChunk(enc)
			if err != nil {
				return nil, err
			}
			if app, err = c.Appender(); err != nil {
				return nil, err
			}
			cur, minT = c, s.t
		}
		var (
			next    chunkenc.Chunk
			recoded bool
			err     error
		)
		switch enc {
		case chunkenc.EncHistogram:
			next, recoded, app, err = app.AppendHistogram(nil, 0, s.t, s.h, false)
		case chunkenc.EncFloatHistogram:
			next, recoded, app, err = app.AppendFloatHistogram(nil, 0, s.t, s.fh, false)
		default:
			app.Append(0, s.t, s.v)
		}
		switch {
		case err != nil:
			return nil, err
		case next == nil:
		case recoded:
			cur = next
		default:
			finish(samples[i-1].t)
			cur, minT = next, s.t
		}
	}
	if len(samples) > 0 {
		finish(samples[len(samples)-1].t)
	}
	return out, nil
}

// chunkWithoutAny is ChunkWithout for a chunk of any encoding: the kept
// samples must fit one chunk, as they do when only deletions thin it.
func chunkWithoutAny(c Chunk, deleted func(t int64) bool) (out Chunk, n int, dropped bool, err error) {
	all, err := appendAnySamples(nil, c)
	if err != nil {
		return Chunk{}, 0, false, fmt.Errorf("%w: decode chunk [%d, %d]: %v", ErrCorrupt, c.MinTime, c.MaxTime, err)
	}
	kept := slices.DeleteFunc(all, func(s anySample) bool { return deleted(s.t) })
	if len(kept) == len(all) || len(kept) == 0 {
		return c, len(kept), len(kept) < len(all), nil
	}
	chks, err := encodeAnySamples(kept, len(kept))
	if err != nil {
		return Chunk{}, 0, false, err
	}
	if len(chks) != 1 {
		return Chunk{}, 0, false, fmt.Errorf("%w: chunk [%d, %d] re-encodes into %d chunks without deleted samples", ErrCorrupt, c.MinTime, c.MaxTime, len(chks))
	}
	return chks[0], len(kept), true, nil
}

// reencodeAny is reencode for groups with a chunk of another encoding than
// XOR: the samples of every chunk, on equal times the highest source's
// kept, in chunks of at most mergedChunkSamples floats.
func reencodeAny(group []taggedChunk) ([]Chunk, error) {
	type tagged struct {
		anySample
		src int
	}
	var samples []tagged
	var buf []anySample
	for _, c := range group {
		var err error
		if buf, err = appendAnySamples(buf[:0], c.Chunk); err != nil {
			return nil, err
		}
		for _, s := range buf {
			samples = append(samples, tagged{s, c.src})
		}
	}
	slices.SortStableFunc(samples, func(a, b tagged) int {
		if a.t != b.t {
			return cmpInt64(a.t, b.t)
		}
		return a.src - b.src
	})
	kept := make([]anySample, 0, len(samples))
	for _, s := range samples {
		if n := len(kept); n > 0 && kept[n-1].t == s.t {
			kept[n-1] = s.anySample
			continue
		}
		kept = append(kept, s.anySample)
	}
	return encodeAnySamples(kept, mergedChunkSamples)
}
