package distributor

import (
	"bytes"
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The fast path of a push: most series arrive valid and in the form the
// ingesters want (labels sorted, no empty value, no exemplar, no histogram,
// no sample in the future), and need nothing but a check of their label
// bytes, a token and their raw bytes copied into each replica's request.
// Such a series is read here in place, from the decoded body: its labels
// become byte ranges (labelRef) and its samples a count and a latest
// timestamp, and nothing is allocated for it.
//
// Any series this path does not take, because its encoding holds anything
// but the plain fields below, or because a check fails, is decoded by the
// generated TimeSeries.UnmarshalVTUnsafe and validated by seriesValidator
// as before: errors, their messages and every fix-up come from that one
// path. The fast path must therefore accept only series that path would
// accept unchanged; TestScanSeries_LikeGenerated, TestValid_*,
// FuzzScanSeries and FuzzDecodeWriteRequest compare the two.

// labelRef is one label of a series read in place: the offsets of its name
// and value in writeCtx.decoded. Offsets rather than slices, so that the
// pooled slice of them holds no pointer for the garbage collector to scan.
type labelRef struct {
	nameOff, nameEnd, valueOff, valueEnd uint32
}

// seriesRef is one series of a push: its bytes in the request and either
// the result of the fast scan (ts nil) or the generated decoding (ts).
type seriesRef struct {
	// raw is the series' encoding, aliasing writeCtx.decoded, or nil once
	// validation changed the series (it is then marshalled from ts).
	raw []byte
	// ts is the decoded series, or nil for a series the fast path took.
	ts *arguspb.TimeSeries
	// Fast path only: the series' labels are writeCtx.labels[lo:hi];
	// raw[:labelsEnd] holds every label field.
	lo, hi    int32
	labelsEnd int32
	// samples is the number of samples, float and histogram.
	samples int32
	// token is the shard token of a series valid passed (ts nil after
	// validate), computed in the same pass, or of a known series, from the
	// stream refs' dictionary (streamrefs.go).
	token uint32
	// ref is the series' ref in the stream refs' dictionary when validate
	// found it there checked under the push's limits, else 0.
	ref uint32
	// maxT is the latest sample timestamp (fast path; MinInt64 if none).
	maxT int64
	// symbolised is set for a remote-write 2.0 series forwarded as it came
	// (symbolise.go): raw is that series, its labels' offsets are into the
	// request's symbols, and labelsEnd is 0.
	symbolised bool
}

// Wire bytes of the fields the fast path reads: the tag of each, with its
// field number and wire type, encoded in one byte.
const (
	tagLabels      = 1<<3 | 2 // TimeSeries.labels, length-delimited
	tagSamples     = 2<<3 | 2 // TimeSeries.samples, length-delimited
	tagLabelName   = 1<<3 | 2 // Label.name, length-delimited
	tagLabelValue  = 2<<3 | 2 // Label.value, length-delimited
	tagSampleValue = 1<<3 | 1 // Sample.value, fixed64
	tagSampleTime  = 2<<3 | 0 // Sample.timestamp_ms, varint
)

// scanSeries reads the series encoded in b, which starts at offset base of
// the decoded body, appending its labels to ls. It returns ok false, and ls
// as it was, unless b holds only label fields of exactly one name and one
// value, in that order, and sample fields of at most one value and one
// timestamp each: anything else is left to the generated decoder.
func scanSeries(b []byte, base uint32, ls []labelRef) (_ []labelRef, s seriesRef, ok bool) {
	s.maxT = math.MinInt64
	n0 := len(ls)
	for i := 0; i < len(b); {
		tag := b[i]
		start, end, ok := fieldAt(b, i+1)
		if !ok {
			return ls[:n0], s, false
		}
		i = end
		switch tag {
		case tagLabels:
			l, ok := scanLabel(b[start:end], base+uint32(start))
			if !ok {
				return ls[:n0], s, false
			}
			ls = append(ls, l)
			s.labelsEnd = int32(end)
		case tagSamples:
			t, ok := scanSample(b[start:end])
			if !ok {
				return ls[:n0], s, false
			}
			s.samples++
			s.maxT = max(s.maxT, t)
		default:
			return ls[:n0], s, false
		}
	}
	s.raw, s.lo, s.hi = b, int32(n0), int32(len(ls))
	return ls, s, true
}

// fieldAt reads the length of a length-delimited field at b[i:] and returns
// where its value starts and ends in b. A length under 128, one byte, is
// read inline; longer ones as the generated code reads them.
func fieldAt(b []byte, i int) (start, end int, ok bool) {
	if i < len(b) && b[i] < 0x80 {
		start, end = i+1, i+1+int(b[i])
		return start, end, end <= len(b)
	}
	if i > len(b) {
		return 0, 0, false
	}
	v, n, err := readBytes(b[i:])
	if err != nil {
		return 0, 0, false
	}
	return i + n - len(v), i + n, true
}

// scanLabel reads a Label encoded in b, at offset base of the decoded body:
// a name field then a value field, nothing else.
func scanLabel(b []byte, base uint32) (labelRef, bool) {
	if len(b) < 2 || b[0] != tagLabelName {
		return labelRef{}, false
	}
	ns, ne, ok := fieldAt(b, 1)
	if !ok || ne >= len(b) || b[ne] != tagLabelValue {
		return labelRef{}, false
	}
	vs, ve, ok := fieldAt(b, ne+1)
	if !ok || ve != len(b) {
		return labelRef{}, false
	}
	return labelRef{base + uint32(ns), base + uint32(ne), base + uint32(vs), base + uint32(ve)}, true
}

// scanSample reads a Sample encoded in b and returns its timestamp: at most
// one value field and one timestamp field, in any order (either may be
// absent, as proto3 leaves out zeros).
func scanSample(b []byte) (t int64, ok bool) {
	var seenValue, seenTime bool
	for i := 0; i < len(b); {
		switch b[i] {
		case tagSampleValue:
			if seenValue || i+9 > len(b) {
				return 0, false
			}
			seenValue = true
			i += 9
		case tagSampleTime:
			v, n, err := readVarint(b[i+1:])
			if seenTime || err != nil {
				return 0, false
			}
			seenTime, t = true, int64(v)
			i += 1 + n
		default:
			return 0, false
		}
	}
	return t, true
}

// valid reports whether the series s, read by scanSeries, passes every check
// of seriesValidator.validate unchanged: labels strictly sorted by name (so
// no duplicate), names and values non-empty valid UTF-8 within the tenant's
// length limits, no more labels than the limit, a metric name, and no sample
// after the grace period. buf is the decoded body, ls the push's labels.
//
// In the same pass it appends the series' labels to key as appendLabels
// does, so that a valid series' shard token needs no second pass.
func (v seriesValidator) valid(buf []byte, ls []labelRef, s *seriesRef, key []byte) (_ []byte, ok bool) {
	labels := ls[s.lo:s.hi]
	if len(labels) > v.lim.MaxLabelNamesPerSeries || s.maxT > v.maxT {
		return key, false
	}
	// Tags and lengths under 128 are single bytes under 0x80, so the label
	// fields are all ASCII when their names and values are, and then valid
	// UTF-8 without a look at each.
	ascii := v.symbolsASCII
	if !s.symbolised {
		ascii = isASCII(s.raw[:s.labelsEnd])
	}
	hasName := false
	var prev []byte
	for i, l := range labels {
		name, value := buf[l.nameOff:l.nameEnd], buf[l.valueOff:l.valueEnd]
		switch {
		case len(name) == 0 || len(name) > v.lim.MaxLabelNameLength,
			len(value) == 0 || len(value) > v.lim.MaxLabelValueLength,
			i > 0 && !nameLess(prev, name),
			!ascii && !(utf8.Valid(name) && utf8.Valid(value)):
			return key, false
		}
		if string(name) == metricName {
			hasName = true
		}
		prev = name
		key = append(key, name...)
		key = append(key, 0xff)
		key = append(key, value...)
		key = append(key, 0xff)
	}
	return key, hasName
}

// nameLess reports whether the non-empty name a sorts before b; most
// neighbouring label names differ in their first byte.
func nameLess(a, b []byte) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	return bytes.Compare(a, b) < 0
}

// isASCII reports whether every byte of b is under 0x80, eight at a time.
func isASCII(b []byte) bool {
	const high = 0x8080808080808080
	var acc uint64
	for len(b) >= 8 {
		acc |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&high == 0
}

// shardToken is ring.ShardToken of the series whose labels, each as name,
// 0xff, value, 0xff, follow the tenant and 0xff in key: xxhash over the
// whole key at once, folded to 32 bits. TestShardToken_MatchesRing keeps it
// equal to ring.ShardTokenProto, which hashes the same bytes piece by piece.
func shardToken(key []byte) uint32 {
	h := xxhash.Sum64(key)
	return uint32(h) ^ uint32(h>>32)
}
