package querier

import (
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Native histogram chunks on the query wire: CHUNK_ENCODING_HISTOGRAM and
// CHUNK_ENCODING_FLOAT_HISTOGRAM carry Prometheus's chunkenc histogram
// chunk bytes, decoded by chunkenc's own iterators, so that promql sees
// the histogram samples as it does from Prometheus's TSDB. A series may mix
// XOR and histogram chunks (its sample type changed), one chunk after the
// other.

// knownEncoding reports whether the querier reads chunks of encoding enc.
func knownEncoding(enc arguspb.ChunkEncoding) bool {
	switch enc {
	case arguspb.ChunkEncoding_CHUNK_ENCODING_XOR, arguspb.ChunkEncoding_CHUNK_ENCODING_HISTOGRAM,
		arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM:
		return true
	}
	return false
}

// histogramChunk returns the histogram chunk of encoding enc over data
// (aliased, as XOR chunks alias theirs).
func histogramChunk(enc arguspb.ChunkEncoding, data []byte) (chunkenc.Chunk, error) {
	e := chunkenc.EncHistogram
	if enc == arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM {
		e = chunkenc.EncFloatHistogram
	}
	return chunkenc.FromData(e, data)
}

// wireEncoding is the query wire's encoding of a chunk encoding
// (UNSPECIFIED for one the wire has not, which checkChunk refuses).
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
