package querier

import (
	"fmt"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/slab"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The Series stream is the querier's hot path: a range query over thousands
// of series receives megabytes of chunks. Unmarshalling it into the
// generated messages would allocate a message per series, label and chunk
// and copy every string and chunk only to throw the messages away, so
// seriesCodec decodes the wire format straight into fetchedSeries instead.
// FuzzSeriesDecoder checks it against the generated UnmarshalVT.

// Field numbers of the messages of the Series stream, as in
// proto/arguspb/argus.proto. TestSeriesDecoder_FieldNumbers pins them to
// the generated descriptors.
const (
	fieldResponseSeries protowire.Number = 1 // SeriesResponse.series
	fieldSeriesLabels   protowire.Number = 1 // StreamSeries.labels
	fieldSeriesChunks   protowire.Number = 2 // StreamSeries.chunks
	fieldLabelName      protowire.Number = 1 // Label.name
	fieldLabelValue     protowire.Number = 2 // Label.value
	fieldChunkMinTime   protowire.Number = 1 // Chunk.min_time_ms
	fieldChunkMaxTime   protowire.Number = 2 // Chunk.max_time_ms
	fieldChunkEncoding  protowire.Number = 3 // Chunk.encoding
	fieldChunkData      protowire.Number = 4 // Chunk.data
)

// seriesCodec is the codec of the querier's Series calls, passed per call
// (grpc.ForceCodecV2) so that it does not depend on how the connection was
// dialed. It decodes the stream's messages into a *seriesDecoder and leaves
// every other message, the request included, to grpccodec.Codec. It is safe
// for concurrent use.
type seriesCodec struct{ grpccodec.Codec }

// Unmarshal decodes data into v. For a *seriesDecoder, data is copied once,
// into memory that the decoded chunks then alias and that nothing reuses.
func (c seriesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	d, ok := v.(*seriesDecoder)
	if !ok {
		return c.Codec.Unmarshal(data, v)
	}
	return d.decodeResponse(data.Materialize())
}

// seriesDecoder decodes the SeriesResponse messages of one Series stream
// into fetchedSeries, checking the protocol as it goes. Chunk data aliases
// the message bytes (which the decoder owns: see seriesCodec.Unmarshal);
// label strings are copied into each series' labels.Labels (with the default
// stringlabels; other labels implementations may keep referring to the
// message, which nothing modifies). The chunks of many series are carved
// from shared blocks, so that decoding allocates little per series. It is
// not safe for concurrent use.
type seriesDecoder struct {
	limit int // stop after this many series; 0: no limit
	// budget counts every decoded series and its chunks against the
	// tenant's query limits; its first error stops the stream. nil counts
	// nothing.
	budget *tenantBudget
	series seriesList
	// err is the first protocol violation; decoding stops at it. It is
	// kept here because gRPC turns an Unmarshal error into a status.
	err error

	b       labels.ScratchBuilder
	scratch []wireChunk         // the chunks of the series being decoded
	metas   []chunks.Meta       // the block the next series' chunks are carved from
	xors    []chunkenc.XORChunk // likewise, for the chunks the metas point to
}

// wireChunk is a chunk as it is on the wire; data aliases the message.
type wireChunk struct {
	minT, maxT int64
	enc        arguspb.ChunkEncoding
	data       []byte
}

// full reports whether the decoder holds limit series.
func (d *seriesDecoder) full() bool {
	return d.limit > 0 && d.series.len() >= d.limit
}

// decodeResponse decodes one encoded SeriesResponse, which b must own, and
// returns (and keeps) the first protocol violation.
func (d *seriesDecoder) decodeResponse(b []byte) error {
	for len(b) > 0 && d.err == nil && !d.full() {
		f, rest, err := nextField(b)
		if err != nil {
			d.err = fmt.Errorf("%w: malformed series response: %w", ErrProtocol, err)
			break
		}
		b = rest
		if f.num != fieldResponseSeries {
			continue // An unknown field, skipped as proto3 says.
		}
		if f.typ != protowire.BytesType {
			d.err = wrongType("SeriesResponse.series", f.typ)
			break
		}
		d.err = d.decodeSeries(f.bytes)
	}
	return d.err
}

// decodeSeries decodes one StreamSeries and appends it to d.series.
func (d *seriesDecoder) decodeSeries(b []byte) error {
	d.b.Reset()
	d.scratch = d.scratch[:0]
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return fmt.Errorf("%w: malformed series: %w", ErrProtocol, err)
		}
		b = rest
		switch f.num {
		case fieldSeriesLabels:
			if f.typ != protowire.BytesType {
				return wrongType("StreamSeries.labels", f.typ)
			}
			name, value, err := decodeLabel(f.bytes)
			if err != nil {
				return err
			}
			d.b.Add(name, value)
		case fieldSeriesChunks:
			if f.typ != protowire.BytesType {
				return wrongType("StreamSeries.chunks", f.typ)
			}
			c, err := decodeChunk(f.bytes)
			if err != nil {
				return err
			}
			d.scratch = append(d.scratch, c)
		}
	}
	d.b.Sort()
	fs := fetchedSeries{labels: d.b.Labels()}
	if err := d.checkOrder(fs.labels); err != nil {
		return err
	}
	if err := checkChunks(fs.labels, d.scratch); err != nil {
		return err
	}
	if err := d.count(fs.labels, len(d.scratch)); err != nil {
		return err
	}
	if len(d.scratch) > 0 {
		fs.chunks = slab.Take(&d.metas, len(d.scratch), carveBlock)
		xors := slab.Take(&d.xors, len(d.scratch), carveBlock)
		for i, c := range d.scratch {
			fs.chunks[i] = chunks.Meta{Chunk: &xors[i], MinTime: c.minT, MaxTime: c.maxT}
			if c.enc != arguspb.ChunkEncoding_CHUNK_ENCODING_XOR {
				chk, err := histogramChunk(c.enc, c.data)
				if err != nil {
					return fmt.Errorf("%w: series %s: %w", ErrProtocol, fs.labels, err)
				}
				fs.chunks[i].Chunk = chk
				continue
			}
			xors[i].Reset(c.data)
		}
	}
	d.series.add(fs)
	return nil
}

// checkOrder checks that the series lset comes after the last one received.
func (d *seriesDecoder) checkOrder(lset labels.Labels) error {
	if d.series.len() > 0 {
		if prev := d.series.last().labels; labels.Compare(prev, lset) >= 0 {
			return fmt.Errorf("%w: series %s received after %s", ErrProtocol, lset, prev)
		}
	}
	return nil
}

// count counts the series lset, received with nChunks chunks, against the
// query limits.
func (d *seriesDecoder) count(lset labels.Labels, nChunks int) error {
	if d.budget != nil {
		// The series this stream delivered so far are distinct (sorted,
		// checked above), so the stream alone is over the series limit as
		// soon as their count is.
		if err := d.budget.fetched(lset, d.series.len()+1, nChunks); err != nil {
			return err
		}
	}
	return nil
}

// checkChunks checks what the querier relies on: XOR or native histogram
// chunks that hold at least their header, ordered by time and not overlapping (so that a
// series' samples are its chunks' samples one after the other).
func checkChunks(lset labels.Labels, cs []wireChunk) error {
	prevMaxT := int64(0)
	for i, c := range cs {
		if err := checkChunk(lset, c.enc, len(c.data), c.minT, c.maxT, i > 0, prevMaxT); err != nil {
			return err
		}
		prevMaxT = c.maxT
	}
	return nil
}

// checkChunk checks one chunk of lset for checkChunks: after a previous
// chunk up to prevMaxT if hasPrev.
func checkChunk(lset labels.Labels, enc arguspb.ChunkEncoding, size int, minT, maxT int64, hasPrev bool, prevMaxT int64) error {
	if !knownEncoding(enc) {
		return fmt.Errorf("%w: series %s has a chunk with encoding %s", ErrProtocol, lset, enc)
	}
	if size < 2 { // The sample count.
		return fmt.Errorf("%w: series %s has a chunk of %d bytes", ErrProtocol, lset, size)
	}
	if minT > maxT {
		return fmt.Errorf("%w: series %s has a chunk from %d to %d", ErrProtocol, lset, minT, maxT)
	}
	if hasPrev && minT <= prevMaxT {
		return fmt.Errorf("%w: series %s has a chunk from %d after one up to %d: chunks out of order or overlapping",
			ErrProtocol, lset, minT, prevMaxT)
	}
	return nil
}

// decodeLabel decodes an encoded Label. The strings alias b.
func decodeLabel(b []byte) (name, value string, err error) {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return "", "", fmt.Errorf("%w: malformed label: %w", ErrProtocol, err)
		}
		b = rest
		switch f.num {
		case fieldLabelName, fieldLabelValue:
			if f.typ != protowire.BytesType {
				return "", "", wrongType("Label", f.typ)
			}
			if f.num == fieldLabelName {
				name = yoloString(f.bytes)
			} else {
				value = yoloString(f.bytes)
			}
		}
	}
	return name, value, nil
}

// decodeChunk decodes an encoded Chunk. Its data aliases b.
func decodeChunk(b []byte) (wireChunk, error) {
	var c wireChunk
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return c, fmt.Errorf("%w: malformed chunk: %w", ErrProtocol, err)
		}
		b = rest
		want := protowire.VarintType
		switch f.num {
		case fieldChunkMinTime:
			c.minT = int64(f.varint)
		case fieldChunkMaxTime:
			c.maxT = int64(f.varint)
		case fieldChunkEncoding:
			c.enc = arguspb.ChunkEncoding(int32(f.varint))
		case fieldChunkData:
			want, c.data = protowire.BytesType, f.bytes
		default:
			continue
		}
		if f.typ != want {
			return c, wrongType("Chunk", f.typ)
		}
	}
	return c, nil
}

// field is one decoded field of a message: bytes is the value of a
// BytesType field, varint that of a VarintType one.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	bytes  []byte
	varint uint64
}

// nextField decodes the field at the start of b and returns the rest of b.
func nextField(b []byte) (field, []byte, error) {
	var f field
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, nil, protowire.ParseError(n)
	}
	f.num, f.typ, b = num, typ, b[n:]
	switch typ {
	case protowire.BytesType:
		f.bytes, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.varint, n = protowire.ConsumeVarint(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return f, nil, protowire.ParseError(n)
	}
	return f, b[n:], nil
}

func wrongType(field string, typ protowire.Type) error {
	return fmt.Errorf("%w: %s has wire type %d", ErrProtocol, field, typ)
}

// yoloString views b as a string without copying; b must never change.
func yoloString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// carveBlock is the first block size of slab.Take here, in elements.
const carveBlock = 64
