package grpccodec

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The symbolised form of a WriteRequest: how the distributor forwards the
// series of a remote-write 2.0 push without writing their labels out.
// Besides the fields of arguspb.WriteRequest, a request may carry
//
//	4: repeated string symbols        (remote write 2.0's Request.symbols)
//	5: repeated Series symbolised     (remote write 2.0's Request.timeseries, restricted)
//
// where a symbolised series is a remote-write 2.0 TimeSeries of packed label
// references (field 1, name and value pairs, each an index into the
// symbols), float samples of at most a value and a timestamp (field 2, the
// Sample of remote write 1.0 and 2.0 alike) and, ignored here, its metadata
// (field 5: the distributor sends metadata as WriteRequest.metadata). Every
// symbol precedes the first symbolised series. The decoder resolves each
// symbolised series into an arguspb.TimeSeries among the others, in the
// order of the request, its label strings aliasing the symbols' bytes: no
// label is copied, and the receiver (Ingester.Push) sees a plain
// WriteRequest.
//
// Field numbers 4 and 5 are unknown to the generated decoder, which would
// skip them: a request that holds them and is not exactly this form is
// refused (errSymbolised) rather than decoded without those series, and
// the distributor sends the form only to the IngesterSymbols service
// (IngesterSymbols_Push_FullMethodName, symbols_service.go), which an ingester that
// does not know it answers Unimplemented instead of acknowledging a push
// it dropped.

// Wire bytes of the symbolised form's fields.
const (
	tagSymbol           = 4<<3 | 2 // symbols
	tagSymbolisedSeries = 5<<3 | 2 // symbolised series
	tagSeriesRefs       = 1<<3 | 2 // Series.labels_refs, packed
	tagSeriesMetadata   = 5<<3 | 2 // Series.metadata, skipped
)

// errSymbolised is the error of a request with symbols or symbolised series
// that is not in the form above.
var errSymbolised = errors.New("grpccodec: malformed symbolised WriteRequest: symbols (field 4) must precede symbolised series (field 5) of packed label references within the symbol table, in name and value pairs, and samples of a value and a timestamp")

// countSymbolisedSeries counts the labels and samples of the symbolised
// series b and reports whether it is in the form above, every reference
// within the n.symbols symbols read so far.
func (n *counts) countSymbolisedSeries(b []byte) bool {
	refs := 0
	for i := 0; i < len(b); {
		tag := b[i]
		start, end, ok := lengthAt(b, i+1)
		if !ok {
			return false
		}
		switch tag {
		case tagSeriesRefs:
			for j := start; j < end; {
				r, k, ok := varintAt(b[:end], j)
				if !ok || r >= uint64(n.symbols) {
					return false
				}
				refs++
				j += k
			}
		case tagSamples:
			if _, _, ok := sampleAt(b[start:end]); !ok {
				return false
			}
			n.samples++
		case tagSeriesMetadata:
		default:
			return false
		}
		i = end
	}
	if refs%2 != 0 {
		return false
	}
	n.labels += refs / 2
	return true
}

// decodeSymbolisedSeries decodes the symbolised series in data[start:end],
// which countSymbolisedSeries accepted, as decodeSeries decodes a plain one:
// each label's name and value are the symbols its references name.
func (d *decoder) decodeSymbolisedSeries(start, end int, symbols []string) *arguspb.TimeSeries {
	ts := &d.series[d.si]
	*ts = arguspb.TimeSeries{}
	d.si++
	l0, n0 := d.li, d.ni
	name := -1 // the name reference of a label whose value reference is still to come
	for i := start; i < end; {
		tag := d.data[i]
		fs, fe, _ := lengthAt(d.data[:end], i+1)
		switch tag {
		case tagSeriesRefs:
			for j := fs; j < fe; {
				r, k, _ := varintAt(d.data[:fe], j)
				j += k
				if name < 0 {
					name = int(r)
					continue
				}
				d.addLabel(symbols[name], symbols[r])
				name = -1
			}
		case tagSamples:
			d.addSample(d.data[fs:fe])
		}
		i = fe
	}
	d.capSeries(ts, l0, n0)
	return ts
}

// hasSymbolisedFields reports whether data, which count refused, has a
// top-level field 4 or 5 before any framing error: such a request is
// refused, not decoded by the generated code without those series.
func hasSymbolisedFields(data []byte) bool {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return false
		}
		if num == 4 || num == 5 {
			return true
		}
		m := protowire.ConsumeFieldValue(num, typ, data[n:])
		if m < 0 {
			return false
		}
		data = data[n+m:]
	}
	return false
}
