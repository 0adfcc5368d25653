package grpccodec

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Decoding a WriteRequest with a handful of allocations. The generated
// UnmarshalVTUnsafe allocates one object per series, label and sample: for
// a push of 1000 series of 10 labels, about 12,000 small objects, which
// made the ingester spend a third of its CPU decoding pushes and much of the
// rest collecting them. unmarshalWriteRequest counts the series, labels and
// samples first, then decodes into one array of each (and one array of
// pointers of each), which the request's pointers point into.
//
// It takes only the plain encoding the distributor sends (the sender's own
// series bytes, or vtprotobuf's): series of labels of exactly a name and a
// value, and samples of at most one value and one timestamp. Anything else,
// including every malformed input, is left to the generated decoder, so
// that both accept, reject and decode the same inputs
// (TestUnmarshalWriteRequest_LikeGenerated and FuzzUnmarshalWriteRequest
// compare them).
//
// Memory: every string aliases data, as with UnmarshalVTUnsafe, and a
// pointer kept to one label or sample keeps its whole array alive, as a
// kept string keeps data. A receiver that keeps anything beyond the request
// copies it (see Codec.Unmarshal).

// Wire bytes of the fields read here: the tag of each, with its field
// number and wire type, in one byte.
const (
	tagSeries      = 1<<3 | 2 // WriteRequest.timeseries
	tagMetadata    = 3<<3 | 2 // WriteRequest.metadata
	tagLabels      = 1<<3 | 2 // TimeSeries.labels
	tagSamples     = 2<<3 | 2 // TimeSeries.samples
	tagLabelName   = 1<<3 | 2 // Label.name
	tagLabelValue  = 2<<3 | 2 // Label.value
	tagSampleValue = 1<<3 | 1 // Sample.value, fixed64
	tagSampleTime  = 2<<3 | 0 // Sample.timestamp_ms, varint
)

// unmarshalWriteRequest decodes data into m, which must be empty, exactly
// as m.UnmarshalVTUnsafe(data) does, into arrays of its own.
func unmarshalWriteRequest(data []byte, m *arguspb.WriteRequest) error {
	_, err := decodeInto(data, m, &requestArrays{})
	return err
}

// decodeInto decodes data into m, which must be empty, as
// unmarshalWriteRequest does, taking the arrays from a, which it grows as
// needed. It reports whether m uses a's arrays (else the generated decoder
// decoded it, or it has no series).
func decodeInto(data []byte, m *arguspb.WriteRequest, a *requestArrays) (bool, error) {
	n := counts{others: a.others[:0]}
	ok := len(m.Timeseries) == 0 && len(m.Metadata) == 0 && n.count(data)
	a.others = n.others
	if !ok {
		if n.symbolised || hasSymbolisedFields(data) {
			return false, errSymbolised
		}
		return false, m.UnmarshalVTUnsafe(data)
	}
	if n.series == 0 && n.metadata == 0 {
		return false, nil
	}
	a.grow(n)
	d := decoder{data: data, requestArrays: a}
	if n.series > 0 {
		m.Timeseries = a.seriesPtrs[:n.series:n.series]
	}
	if n.metadata > 0 {
		m.Metadata = a.metadata[:n.metadata:n.metadata]
	}
	si, mi, yi, oi := 0, 0, 0, 0
	for i := 0; i < len(data); { // One field per iteration; count checked the framing.
		tag := data[i]
		start, end, _ := lengthAt(data, i+1)
		switch tag {
		case tagSeries:
			if oi < len(n.others) && n.others[oi] == int32(si) {
				oi++
				ts := &arguspb.TimeSeries{}
				if err := ts.UnmarshalVTUnsafe(data[start:end]); err != nil {
					return true, err
				}
				m.Timeseries[si] = ts
			} else {
				m.Timeseries[si] = d.decodeSeries(start, end)
			}
			si++
		case tagMetadata:
			m.Metadata[mi] = data[start:end:end]
			mi++
		case tagSymbol:
			d.symbols[yi] = d.str(start, end)
			yi++
		case tagSymbolisedSeries:
			m.Timeseries[si] = d.decodeSymbolisedSeries(start, end, d.symbols[:yi])
			si++
		}
		i = end
	}
	return true, nil
}

// requestArrays are the arrays a request is decoded into: one of each
// object, and one of pointers to each. Only their first elements, as many
// as the request has, are in use; the rest may hold a previous request's.
type requestArrays struct {
	others     []int32 // scratch of counts
	metadata   [][]byte
	symbols    []string
	series     []arguspb.TimeSeries
	labels     []arguspb.Label
	samples    []arguspb.Sample
	seriesPtrs []*arguspb.TimeSeries
	labelPtrs  []*arguspb.Label
	samplePtrs []*arguspb.Sample
}

// grow makes the arrays of a hold at least n objects. A pooled array that
// must grow is replaced by one with a quarter more room, so that requests
// of varying sizes settle on arrays that fit them all.
func (a *requestArrays) grow(n counts) {
	a.metadata = growTo(a.metadata, n.metadata)
	a.symbols = growTo(a.symbols, n.symbols)
	a.series = growTo(a.series, n.series)
	a.labels = growTo(a.labels, n.labels)
	a.samples = growTo(a.samples, n.samples)
	a.seriesPtrs = growTo(a.seriesPtrs, n.series)
	a.labelPtrs = growTo(a.labelPtrs, n.labels)
	a.samplePtrs = growTo(a.samplePtrs, n.samples)
}

func growTo[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:cap(s)]
	}
	if cap(s) == 0 {
		return make([]T, n) // A first request: exactly its size.
	}
	return make([]T, n+n/4)
}

// counts are the objects of a request in the plain encoding.
type counts struct {
	series, labels, samples, metadata, symbols, symbolisedSeries int
	// others are the indexes among the series of those that are not in
	// the plain encoding.
	others []int32
	// symbolised is set once a symbol or a symbolised series was seen (see
	// symbols.go): such a request has no generated decoder to fall back on.
	symbolised bool
}

// count walks data and reports whether it is a request in the plain
// encoding, counting its objects.
func (n *counts) count(data []byte) bool {
	for i := 0; i < len(data); {
		tag := data[i]
		start, end, ok := lengthAt(data, i+1)
		if !ok {
			return false
		}
		switch tag {
		case tagSeries:
			if !n.countSeries(data[start:end]) {
				// Exemplars, histograms or an encoding of its own: this
				// series alone is left to the generated decoder.
				n.others = append(n.others, int32(n.series))
			}
			n.series++
		case tagMetadata:
			n.metadata++
		case tagSymbol:
			n.symbolised = true
			if n.symbolisedSeries > 0 {
				return false // Symbols come first: a series resolves its labels as it is read.
			}
			n.symbols++
		case tagSymbolisedSeries:
			n.symbolised = true
			if !n.countSymbolisedSeries(data[start:end]) {
				return false
			}
			n.series++
			n.symbolisedSeries++
		default:
			return false
		}
		i = end
	}
	return true
}

func (n *counts) countSeries(b []byte) bool {
	for i := 0; i < len(b); {
		tag := b[i]
		start, end, ok := lengthAt(b, i+1)
		if !ok {
			return false
		}
		switch tag {
		case tagLabels:
			if _, _, _, _, ok := labelAt(b[start:end]); !ok {
				return false
			}
			n.labels++
		case tagSamples:
			if _, _, ok := sampleAt(b[start:end]); !ok {
				return false
			}
			n.samples++
		default:
			return false
		}
		i = end
	}
	return true
}

// decoder fills the arrays of a request that count accepted; si, li and ni
// are the next series, label and sample to fill.
type decoder struct {
	data []byte
	*requestArrays
	si, li, ni int
}

// decodeSeries decodes the series in data[start:end]. Each series' slices
// are capped at their length, so that appending to one cannot overwrite the
// next series' labels or samples. Every object is written whole: a pooled
// array holds a previous request's.
func (d *decoder) decodeSeries(start, end int) *arguspb.TimeSeries {
	ts := &d.series[d.si]
	*ts = arguspb.TimeSeries{}
	d.si++
	l0, n0 := d.li, d.ni
	for i := start; i < end; {
		tag := d.data[i]
		fs, fe, _ := lengthAt(d.data[:end], i+1)
		if tag == tagLabels {
			ns, ne, vs, ve, _ := labelAt(d.data[fs:fe])
			d.addLabel(d.str(fs+ns, fs+ne), d.str(fs+vs, fs+ve))
		} else {
			d.addSample(d.data[fs:fe])
		}
		i = fe
	}
	d.capSeries(ts, l0, n0)
	return ts
}

// addLabel fills the next label of the arrays.
func (d *decoder) addLabel(name, value string) {
	l := &d.labels[d.li]
	*l = arguspb.Label{Name: name, Value: value}
	d.labelPtrs[d.li] = l
	d.li++
}

// addSample fills the next sample of the arrays from its encoding b.
func (d *decoder) addSample(b []byte) {
	v, t, _ := sampleAt(b)
	d.putSample(v, t)
}

// putSample fills the next sample of the arrays.
func (d *decoder) putSample(v float64, t int64) {
	s := &d.samples[d.ni]
	*s = arguspb.Sample{Value: v, TimestampMs: t}
	d.samplePtrs[d.ni] = s
	d.ni++
}

// capSeries gives ts the labels and samples filled since l0 and n0, capped
// at their length.
func (d *decoder) capSeries(ts *arguspb.TimeSeries, l0, n0 int) {
	if d.li > l0 {
		ts.Labels = d.labelPtrs[l0:d.li:d.li]
	}
	if d.ni > n0 {
		ts.Samples = d.samplePtrs[n0:d.ni:d.ni]
	}
}

// str returns data[start:end] as a string aliasing data, as the generated
// UnmarshalVTUnsafe does.
func (d *decoder) str(start, end int) string {
	if start == end {
		return ""
	}
	return unsafe.String(&d.data[start], end-start)
}

// lengthAt reads the length of a length-delimited field at b[i:] and
// returns where its value starts and ends in b, or ok false if the length
// is malformed or overruns b. Lengths under 128 (one byte) are read inline.
func lengthAt(b []byte, i int) (start, end int, ok bool) {
	if i < len(b) && b[i] < 0x80 {
		start, end = i+1, i+1+int(b[i])
		return start, end, end <= len(b)
	}
	v, n, ok := varintAt(b, i)
	if !ok || v > uint64(len(b)) {
		return 0, 0, false
	}
	start, end = i+n, i+n+int(v)
	return start, end, end <= len(b)
}

// varintAt reads a varint at b[i:] as the generated code does (at most ten
// bytes, bits past 64 dropped) and returns it and its length.
func varintAt(b []byte, i int) (v uint64, n int, ok bool) {
	for shift := uint(0); shift < 64; shift += 7 {
		if i+n >= len(b) {
			return 0, 0, false
		}
		c := b[i+n]
		n++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, n, true
		}
	}
	return 0, 0, false
}

// labelAt reads a Label of exactly a name field then a value field.
func labelAt(b []byte) (ns, ne, vs, ve int, ok bool) {
	if len(b) < 2 || b[0] != tagLabelName {
		return 0, 0, 0, 0, false
	}
	ns, ne, ok = lengthAt(b, 1)
	if !ok || ne >= len(b) || b[ne] != tagLabelValue {
		return 0, 0, 0, 0, false
	}
	vs, ve, ok = lengthAt(b, ne+1)
	return ns, ne, vs, ve, ok && ve == len(b)
}

// sampleAt reads a Sample of at most one value field and one timestamp
// field, in any order (proto3 leaves out zeros).
func sampleAt(b []byte) (v float64, t int64, ok bool) {
	var seenValue, seenTime bool
	for i := 0; i < len(b); {
		switch b[i] {
		case tagSampleValue:
			if seenValue || i+9 > len(b) {
				return 0, 0, false
			}
			seenValue, v = true, math.Float64frombits(binary.LittleEndian.Uint64(b[i+1:]))
			i += 9
		case tagSampleTime:
			x, n, ok := varintAt(b, i+1)
			if seenTime || !ok {
				return 0, 0, false
			}
			seenTime, t = true, int64(x)
			i += 1 + n
		default:
			return 0, 0, false
		}
	}
	return v, t, true
}
