package distributor

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/snappy"
	protohelpers "github.com/planetscale/vtprotobuf/protohelpers"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Remote write 2.0 (io.prometheus.write.v2.Request) is translated here,
// series by series and without a decoded message, into the remote-write 1.0
// shape the rest of the push path and the ingesters take
// (arguspb.WriteRequest): each series' label references resolved into
// Label messages, its samples without their start timestamps, its
// histograms as prompb.Histogram bytes (field 17, the start timestamp,
// dropped), its exemplars as prompb.Exemplar bytes, and its metadata as
// one prompb.MetricMetadata per metric family of the request. Each
// translated series is placed in writeCtx.series as a remote-write 1.0
// push's series are (scan.go), so both versions share every check, the raw
// forwarding and the answer.
//
// A series whose references are bad (an odd number of label references, a
// reference past the symbol table, in its labels, exemplars or metadata) is
// left out and reported under reasonRW2InvalidReference; the rest of the
// request is pushed. A body that is not a valid Request protobuf, or whose
// symbol table does not start with the empty string the specification
// requires, fails whole.

// maxRW2Expansion bounds the remote-write 1.0 form of a remote-write 2.0
// request, as a multiple of the tenant's -distributor.max-recv-msg-size: a
// symbol is stored once and may be referenced by every series, so a small
// request can name gigabytes of labels. Prometheus's requests expand 3 to 6
// times.
const maxRW2Expansion = 8

// Wire bytes of the remote-write 2.0 fields read here (field number << 3 |
// wire type); see prompb/io/prometheus/write/v2/types.proto.
const (
	rw2Symbols    = 4
	rw2TimeSeries = 5

	rw2LabelsRefs = 1
	rw2Samples    = 2
	rw2Histograms = 3
	rw2Exemplars  = 4
	rw2Metadata   = 5

	rw2HistogramStartTimestamp = 17
)

// rw2Translator is the scratch state of one translation, kept in the pooled
// writeCtx with its capacity.
type rw2Translator struct {
	src []byte // the snappy-decoded remote-write 2.0 body
	// symbols are the symbols of src: where the length of each starts, where
	// its bytes start and where they end. A symbol's length and bytes are
	// the length and bytes of a Label's name or value as they are written.
	symbols []rw2Symbol
	// series are the start and end in src of each series, in order.
	series [][2]int32
	refs   []uint32 // label references of the series being translated
	data   []byte   // the RW1 samples, histograms and exemplars of the series being translated
	ex     []byte   // scratch: one RW1 exemplar
	meta   []byte   // the RW1 metadata entries (WriteRequest field 3), appended last
	// families are the metric families whose metadata is in meta.
	families map[string]struct{}
	// pos are where the translation of each series of writeCtx.series is
	// in the output, whose buffer may move while it grows: their raw bytes
	// are set once it is complete.
	pos []rw2Pos
	// Of the series being translated: its float samples and their latest
	// timestamp.
	samples int32
	maxT    int64
	// rejectedSamples counts the samples of series left out.
	rejectedSamples int64

	// symbolise is set when the series of labels and float samples are
	// forwarded as they are, with the symbol table (see symbolise.go),
	// rather than translated.
	symbolise bool
	// ascii is set when every symbol is ASCII, so that every label of a
	// symbolised series is valid UTF-8.
	ascii bool
	// symbolsAt are where the symbol fields start and end in src, when they
	// are adjacent with one-byte tags (then copied at once), else -1.
	symbolsAt [2]int32
	// wideRef is set when a label reference of the series being read does
	// not fit 32 bits.
	wideRef bool
}

// rw2Pos is the place of one translated series in the output.
type rw2Pos struct {
	start, end int
	// decode is set for a series the fast path of scan.go does not read
	// (exemplars, histograms): it is decoded by the generated code.
	decode bool
	// symbolised is set for a series forwarded as it came (symbolise.go):
	// nothing of it is in the output.
	symbolised bool
}

func (t *rw2Translator) reset() {
	t.src = nil
	if cap(t.pos) > maxPooledSeries {
		t.pos = nil
	}
	t.pos = t.pos[:0]
	t.symbols = t.symbols[:0]
	t.series = t.series[:0]
	t.refs = t.refs[:0]
	t.data = reuse(t.data)
	t.ex = reuse(t.ex)
	t.meta = reuse(t.meta)
	if len(t.families) > maxPooledSeries {
		t.families = nil
	}
	clear(t.families)
	t.rejectedSamples = 0
	t.symbolise, t.ascii, t.wideRef = false, false, false
}

// decodeRW2 snappy-decodes wc.body as a remote-write 2.0 request into
// wc.rw2.src, translates it into wc.decoded and reads that in place into
// wc.series, as decode does for remote write 1.0. Series with bad
// references are recorded in wc.rej and wc.invalid.
func (wc *writeCtx) decodeRW2(limit int, symbolise bool) error {
	n, err := snappy.DecodedLen(wc.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecodeSnappy, err)
	}
	if n > limit || n > math.MaxInt32 { // rw2Symbol offsets are 32-bit
		return fmt.Errorf("%w: the snappy header announces %d bytes, over -distributor.max-recv-msg-size=%d", ErrDecodedTooLarge, n, limit)
	}
	if cap(wc.rw2buf) < n {
		wc.rw2buf = make([]byte, n)
	}
	src, err := snappy.Decode(wc.rw2buf[:cap(wc.rw2buf)], wc.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecodeSnappy, err)
	}
	wc.rw2buf = src
	wc.rw2.symbolise = symbolise
	out, err := wc.translateRW2(src, wc.decoded[:0], maxRW2Expansion*limit)
	wc.decoded = out
	return err
}

// translateRW2 appends to out the remote-write 1.0 form of the remote-write
// 2.0 request in src, failing past limit bytes, and reads its series into
// wc.series (which must be empty) as unmarshalRequest would read out: a
// series of labels and float samples only is placed as scanSeries places
// it, from what the translation wrote (so that it is not read again), any
// other is decoded by the generated code.
func (wc *writeCtx) translateRW2(src, out []byte, limit int) ([]byte, error) {
	t := &wc.rw2
	t.src = src
	if err := t.readSymbols(); err != nil {
		return out, fmt.Errorf("%w: %w", ErrDecodeProtobuf, err)
	}
	for _, span := range t.series {
		var err error
		if out, err = wc.translateSeries(src[span[0]:span[1]], out); err != nil {
			return out, err
		}
		if len(out)+len(t.meta) > limit {
			return out, fmt.Errorf("%w: the remote write 2.0 request expands to more than %d bytes of series (%d times -distributor.max-recv-msg-size)",
				ErrDecodedTooLarge, limit, maxRW2Expansion)
		}
	}
	metaStart := len(out)
	out = append(out, t.meta...)
	for m := out[metaStart:]; len(m) > 0; { // tagMetadata then the entry, as addMetadata wrote them
		b, n, err := readBytes(m[1:])
		if err != nil {
			return out, fmt.Errorf("%w: translated remote write 2.0 metadata: %w", ErrDecodeProtobuf, err) // A bug: the translation is ours.
		}
		wc.meta = append(wc.meta, metadataRef{raw: b})
		m = m[1+n:]
	}
	wc.lbuf = out // where the labels of the series placed below are
	if t.symbolise {
		wc.lbuf = src // where the labels of symbolised series are; the others are decoded
	}
	for i, p := range t.pos {
		if p.symbolised {
			continue
		}
		s := &wc.series[i]
		s.raw = out[p.start:p.end]
		if p.decode {
			ts, err := wc.decodeSeries(s.raw)
			if err != nil {
				return out, fmt.Errorf("%w: translated remote write 2.0: %w", ErrDecodeProtobuf, err) // A bug: the translation is ours.
			}
			s.ts, s.samples = ts, int32(len(ts.Samples))
		}
	}
	return out, nil
}

// readSymbols reads the symbol table of t.src and where each series is,
// checking the framing of the whole request on the way: every top-level
// field, and the wire type of fields 4 and 5.
func (t *rw2Translator) readSymbols() error {
	t.ascii, t.symbolsAt = true, [2]int32{-1, -1}
	adjacent := true // the symbol fields so far are adjacent, with one-byte tags
	src := t.src
	for i := 0; i < len(src); {
		// Most fields: a symbol, or a series under 128 bytes, read inline.
		if c := src[i]; (c == rw2Symbols<<3|2 || c == rw2TimeSeries<<3|2) && i+1 < len(src) && src[i+1] < 0x80 {
			if end := i + 2 + int(src[i+1]); end <= len(src) {
				if c == rw2TimeSeries<<3|2 {
					t.series = append(t.series, [2]int32{int32(i + 2), int32(end)})
				} else {
					if n := len(t.symbols); n == 0 {
						t.symbolsAt[0] = int32(i)
					} else if t.symbols[n-1].end != int32(i) {
						adjacent = false
					}
					t.symbols = append(t.symbols, rw2Symbol{lenStart: int32(i + 1), start: int32(i + 2), end: int32(end)})
				}
				i = end
				continue
			}
		}
		f, next, err := nextField(t.src, i)
		if err != nil {
			return err
		}
		if (f.num == rw2Symbols || f.num == rw2TimeSeries) && f.wire != 2 {
			return fmt.Errorf("proto: wrong wireType = %d for field %d of Request", f.wire, f.num)
		}
		switch f.num {
		case rw2Symbols:
			tagLen := 1
			if t.src[i] >= 0x80 { // A tag in more bytes than it needs: valid protobuf.
				_, tagLen, _ = readVarint(t.src[i:])
			}
			if n := len(t.symbols); n == 0 {
				t.symbolsAt[0] = int32(i)
			} else if tagLen != 1 || t.symbols[n-1].end != int32(i) {
				adjacent = false
			}
			t.symbols = append(t.symbols, rw2Symbol{lenStart: int32(i + tagLen), start: int32(next - len(f.b)), end: int32(next)})
		case rw2TimeSeries:
			t.series = append(t.series, [2]int32{int32(next - len(f.b)), int32(next)})
		}
		i = next
	}
	if n := len(t.symbols); n > 0 && adjacent && t.symbols[0].lenStart == t.symbolsAt[0]+1 {
		t.symbolsAt[1] = t.symbols[n-1].end
		// One pass over the symbol fields: their tags are ASCII, and so are
		// lengths under 128; a longer one only costs the checks of valid.
		t.ascii = isASCII(t.src[t.symbolsAt[0]:t.symbolsAt[1]])
	} else {
		t.symbolsAt = [2]int32{-1, -1}
		for _, y := range t.symbols {
			t.ascii = t.ascii && isASCII(t.src[y.start:y.end])
		}
	}
	if len(t.symbols) > 0 && t.symbols[0].end > t.symbols[0].start {
		return fmt.Errorf("remote write 2.0: the first symbol is %q, the specification requires the empty string", t.symbol(0))
	}
	return nil
}

// rw2Symbol is the place of one symbol in the request: its length varint
// at src[lenStart:start], its bytes at src[start:end]. Offsets are 32-bit:
// a request is at most -distributor.max-recv-msg-size bytes, which
// decodeRW2 requires to be under 2 GiB.
type rw2Symbol struct{ lenStart, start, end int32 }

func (t *rw2Translator) symbol(ref uint32) string {
	return string(t.symbolBytes(ref))
}

func (t *rw2Translator) symbolBytes(ref uint32) []byte {
	s := t.symbols[ref]
	return t.src[s.start:s.end]
}

// rw2Series is what the first pass over a remote-write 2.0 series found.
type rw2Series struct {
	samples, histograms, exemplars int
	metaType                       uint64
	helpRef, unitRef               uint64
	hasMeta                        bool
	badRef                         string // why a reference is bad; "" if none
	// nonPlain is set when the series holds anything but packed label
	// references, samples of a value and a timestamp and metadata, each
	// under a one-byte tag: it cannot be forwarded as it came.
	nonPlain bool
}

// translateSeries appends to out the remote-write 1.0 TimeSeries field of the
// remote-write 2.0 series b, and its seriesRef to wc.series, or records its
// rejection and appends nothing. It reads b once: samples, histograms and
// exemplars are translated into t.data as they come, the label references
// gathered, and the labels written last, in front of them.
func (wc *writeCtx) translateSeries(b, out []byte) ([]byte, error) {
	t := &wc.rw2
	s, ok := rw2Series{}, false
	if t.symbolise {
		s, ok = t.readPlainSeries(b)
	}
	if !ok {
		var err error
		if s, err = t.readSeries(b); err != nil {
			return out, fmt.Errorf("%w: %w", ErrDecodeProtobuf, err)
		}
	}
	if s.badRef == "" {
		s.badRef = t.checkRefs(s)
	}
	if s.badRef != "" {
		n := int64(s.samples + s.histograms)
		t.rejectedSamples += n
		wc.invalid[reasonRW2InvalidReference] += n
		wc.rej.add(t.knownLabels(), reasonRW2InvalidReference, s.badRef, n)
		return out, nil
	}
	if s.hasMeta && t.addMetadata(s) {
		wc.metadataReceived++
	}
	if t.symbolise && !s.nonPlain && s.histograms == 0 && s.exemplars == 0 && !t.wideRef {
		wc.addSymbolised(b, s)
		return out, nil
	}
	size := t.labelsSize() + len(t.data)
	out = slices.Grow(out, 1+sizeOfVarint(uint64(size))+size)
	out = append(out, tagTimeSeries)
	out = appendVarint(out, uint64(size))
	base := len(out)
	lo := len(wc.labels)
	out, wc.labels = t.appendLabels(out, wc.labels)
	labelsEnd := len(out) - base
	out = append(out, t.data...)
	p := rw2Pos{start: base, end: len(out), decode: s.histograms > 0 || s.exemplars > 0 || len(out) > math.MaxUint32 || t.symbolise}
	if p.decode {
		wc.labels = wc.labels[:lo]
	}
	t.pos = append(t.pos, p)
	wc.series = append(wc.series, seriesRef{lo: int32(lo), hi: int32(len(wc.labels)), labelsEnd: int32(labelsEnd), samples: int32(s.samples), maxT: t.maxT})
	return out, nil
}

// tagTimeSeries is the wire byte of WriteRequest.timeseries (field 1, bytes).
const tagTimeSeries = 1<<3 | 2

// readSeries reads the remote-write 2.0 series b in one pass: its label
// references into t.refs, its samples, histograms and exemplars translated
// into t.data (exemplars only while their references are good), the latest
// sample timestamp into t.maxT, and the rest into the rw2Series it returns.
func (t *rw2Translator) readSeries(b []byte) (s rw2Series, err error) {
	t.refs, t.data, t.maxT, t.wideRef = t.refs[:0], t.data[:0], math.MinInt64, false
	for i := 0; i < len(b); {
		tag := b[i]
		f, next, err := nextField(b, i)
		if err != nil {
			return s, err
		}
		i = next
		if tag != byte(f.num<<3)|byte(f.wire) || f.wire != 2 {
			s.nonPlain = true // Not a one-byte tag of a length-delimited field.
		}
		if f.num == rw2LabelsRefs {
			if t.refs, err = t.appendRefs(t.refs, f); err != nil {
				return s, err
			}
			continue
		}
		if f.num < rw2Samples || f.num > rw2Metadata {
			s.nonPlain = true
			continue
		}
		if f.wire != 2 {
			return s, fmt.Errorf("proto: wrong wireType = %d for field %d of TimeSeries", f.wire, f.num)
		}
		switch f.num {
		case rw2Samples:
			var ts int64
			if !plainSample(f.b) {
				s.nonPlain = true
			}
			if t.data, ts, err = appendSample(t.data, f.b); err != nil {
				return s, err
			}
			s.samples++
			t.maxT = max(t.maxT, ts)
		case rw2Histograms:
			if t.data, err = appendHistogram(t.data, f.b); err != nil {
				return s, err
			}
			s.histograms++
		case rw2Exemplars:
			s.exemplars++
			if err := t.readExemplar(f.b, &s); err != nil {
				return s, err
			}
		case rw2Metadata:
			if err := t.readMetadata(f.b, &s); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// readPlainSeries reads the remote-write 2.0 series b as readSeries does
// when it holds only what a symbolised series may (one packed label
// references field, samples of a value and a timestamp, metadata, each
// under its one-byte tag and with a one-byte length), and reports whether
// it did; the samples are not translated. Any other series is left to
// readSeries.
func (t *rw2Translator) readPlainSeries(b []byte) (s rw2Series, ok bool) {
	t.refs, t.data, t.maxT, t.wideRef = t.refs[:0], t.data[:0], math.MinInt64, false
	refsSeen := false
	for i := 0; i < len(b); {
		if i+1 >= len(b) || b[i+1] >= 0x80 {
			return s, false
		}
		tag, start, end := b[i], i+2, i+2+int(b[i+1])
		if end > len(b) {
			return s, false
		}
		i = end
		switch tag {
		case rw2LabelsRefs<<3 | 2:
			if refsSeen {
				return s, false
			}
			refsSeen = true
			for j := start; j < end; {
				if c := b[j]; c < 0x80 {
					t.refs = append(t.refs, uint32(c))
					j++
					continue
				}
				v, n, err := readVarint(b[j:end])
				if err != nil || v > math.MaxUint32 {
					return s, false
				}
				t.refs = append(t.refs, uint32(v))
				j += n
			}
		case rw2Samples<<3 | 2:
			f := b[start:end]
			if !plainSample(f) {
				return s, false
			}
			ts, _, _ := readVarint(f[10:])
			s.samples++
			t.maxT = max(t.maxT, int64(ts))
		case rw2Metadata<<3 | 2:
			if err := t.readMetadata(b[start:end], &s); err != nil {
				return s, false
			}
		default:
			return s, false
		}
	}
	return s, true
}

// readExemplar checks the exemplar b and, while the series' references are
// good, appends its translation to t.data.
func (t *rw2Translator) readExemplar(b []byte, s *rw2Series) error {
	bad, err := t.checkExemplarRefs(b)
	if err != nil {
		return err
	}
	if s.badRef == "" {
		s.badRef = bad
	}
	if s.badRef != "" {
		return nil
	}
	if t.ex, err = t.appendExemplar(t.ex[:0], b); err != nil {
		return err
	}
	t.data = append(t.data, tagSeriesExemplar)
	t.data = appendVarint(t.data, uint64(len(t.ex)))
	t.data = append(t.data, t.ex...)
	return nil
}

// checkRefs returns why the references of s are bad, or "".
func (t *rw2Translator) checkRefs(s rw2Series) string {
	if len(t.refs)%2 != 0 {
		return fmt.Sprintf("%d label references, an odd number: each label is a name and a value reference", len(t.refs))
	}
	n := uint64(len(t.symbols))
	for _, r := range t.refs {
		if uint64(r) >= n {
			return fmt.Sprintf("label reference %d is past the symbol table of %d symbols", r, n)
		}
	}
	if s.helpRef >= n && s.helpRef > 0 {
		return fmt.Sprintf("metadata help reference %d is past the symbol table of %d symbols", s.helpRef, n)
	}
	if s.unitRef >= n && s.unitRef > 0 {
		return fmt.Sprintf("metadata unit reference %d is past the symbol table of %d symbols", s.unitRef, n)
	}
	return ""
}

// knownLabels returns the labels of the series in t.refs as far as they
// resolve, for its rejection: a bad reference shows as <ref N>.
func (t *rw2Translator) knownLabels() []*arguspb.Label {
	ls := make([]*arguspb.Label, 0, len(t.refs)/2+1)
	for i := 0; i < len(t.refs); i += 2 {
		l := &arguspb.Label{Name: t.resolve(t.refs[i])}
		if i+1 < len(t.refs) {
			l.Value = t.resolve(t.refs[i+1])
		}
		ls = append(ls, l)
	}
	return ls
}

func (t *rw2Translator) resolve(ref uint32) string {
	if int(ref) < len(t.symbols) {
		return t.symbol(ref)
	}
	return fmt.Sprintf("<ref %d>", ref)
}

// labelsSize is the size of the Label fields of the series in t.refs.
func (t *rw2Translator) labelsSize() int {
	n := 0
	for i := 0; i+1 < len(t.refs); i += 2 {
		size := 2 + t.symbols[t.refs[i]].encodedLen() + t.symbols[t.refs[i+1]].encodedLen()
		n += 1 + sizeOfVarint(uint64(size)) + size
	}
	return n
}

// encodedLen is the size of the symbol's length and bytes.
func (s rw2Symbol) encodedLen() int { return int(s.end - s.lenStart) }

// appendLabels appends the Label fields of the series in t.refs to buf,
// and their places in buf to ls. A name or a value is its symbol's length
// and bytes, copied as they are in the request. buf must have room for
// labelsSize more bytes.
func (t *rw2Translator) appendLabels(buf []byte, ls []labelRef) ([]byte, []labelRef) {
	src := t.src
	for i := 0; i+1 < len(t.refs); i += 2 {
		name, value := t.symbols[t.refs[i]], t.symbols[t.refs[i+1]]
		size := 2 + name.encodedLen() + value.encodedLen()
		if size < 0x80 {
			buf = append(buf, tagLabels, byte(size))
		} else {
			buf = appendVarint(append(buf, tagLabels), uint64(size))
		}
		n := len(buf)
		buf = buf[:n+size]
		l := labelRef{nameOff: uint32(n + 1 + int(name.start-name.lenStart))}
		l.nameEnd = l.nameOff + uint32(name.end-name.start)
		l.valueOff = l.nameEnd + 1 + uint32(value.start-value.lenStart)
		l.valueEnd = uint32(n + size)
		if value.lenStart == name.end+1 {
			// The value's symbol follows the name's in the table, as a
			// sender's table has them when the label was first seen: the
			// two symbol fields are the Label's fields but for their tags.
			copy(buf[n:], src[name.lenStart-1:value.end])
		} else {
			copy(buf[n+1:], src[name.lenStart:name.end])
			copy(buf[l.nameEnd+1:], src[value.lenStart:value.end])
		}
		buf[n], buf[l.nameEnd] = tagLabelName, tagLabelValue
		ls = append(ls, l)
	}
	return buf, ls
}

// appendLabel appends one Label field (tag, then a name and a value) of the
// symbols name and value.
func (t *rw2Translator) appendLabel(buf []byte, tag byte, name, value uint32) []byte {
	n, v := t.symbolBytes(name), t.symbolBytes(value)
	size := 1 + sizeOfVarint(uint64(len(n))) + len(n) + 1 + sizeOfVarint(uint64(len(v))) + len(v)
	buf = append(buf, tag)
	buf = appendVarint(buf, uint64(size))
	buf = append(buf, tagLabelName)
	buf = appendVarint(buf, uint64(len(n)))
	buf = append(buf, n...)
	buf = append(buf, tagLabelValue)
	buf = appendVarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// Wire bytes of the remote-write 1.0 fields written here.
const (
	tagSeriesExemplar  = 3<<3 | 2 // TimeSeries.exemplars
	tagSeriesHistogram = 4<<3 | 2 // TimeSeries.histograms
	tagMetadata        = 3<<3 | 2 // WriteRequest.metadata
)

// appendSample appends the Samples field of the remote-write 2.0 Sample b:
// its value and timestamp, without its start timestamp, zeros left out as
// proto3 does.
func appendSample(buf, b []byte) (_ []byte, t int64, _ error) {
	// Most samples are a value and a timestamp, in that order, and nothing
	// else: copied as they are.
	if plainSample(b) {
		ts, _, _ := readVarint(b[10:])
		buf = append(buf, tagSamples, byte(len(b))) // At most 20 bytes.
		return append(buf, b...), int64(ts), nil
	}
	var value, ts uint64
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return buf, 0, err
		}
		i = next
		switch {
		case f.num == 1 && f.wire == 1:
			value = f.v
		case f.num == 2 && f.wire == 0:
			ts = f.v
		case f.num == 1 || f.num == 2 || (f.num == 3 && f.wire != 0):
			return buf, 0, fmt.Errorf("proto: wrong wireType = %d for field %d of Sample", f.wire, f.num)
		}
	}
	return appendSampleFields(buf, value, ts), int64(ts), nil
}

// plainSample reports whether the Sample b is a value and a timestamp, in
// that order, and nothing else: its bytes are then those of a remote-write
// 1.0 Sample.
func plainSample(b []byte) bool {
	if len(b) > 10 && b[0] == tagSampleValue && b[9] == tagSampleTime {
		_, n, err := readVarint(b[10:])
		return err == nil && 10+n == len(b)
	}
	return false
}

// appendSampleFields appends one TimeSeries.samples field of the value (its
// bits) and timestamp given, zeros left out as proto3 does.
func appendSampleFields(buf []byte, value, ts uint64) []byte {
	size := 0
	if value != 0 {
		size += 9
	}
	if ts != 0 {
		size += 1 + sizeOfVarint(ts)
	}
	buf = append(buf, tagSamples, byte(size)) // At most 20.
	if value != 0 {
		buf = append(buf, tagSampleValue)
		buf = binary.LittleEndian.AppendUint64(buf, value)
	}
	if ts != 0 {
		buf = append(buf, tagSampleTime)
		buf = appendVarint(buf, ts)
	}
	return buf
}

// appendHistogram appends the Histograms field of the remote-write 2.0
// Histogram b: the remote-write 1.0 Histogram has the same fields but the
// start timestamp (17), which is dropped.
func appendHistogram(buf, b []byte) ([]byte, error) {
	keep := len(b)
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return buf, err
		}
		if err := checkHistogramField(f); err != nil {
			return buf, err
		}
		if f.num == rw2HistogramStartTimestamp {
			keep -= next - i
		}
		i = next
	}
	buf = append(buf, tagSeriesHistogram)
	buf = appendVarint(buf, uint64(keep))
	if keep == len(b) {
		return append(buf, b...), nil
	}
	for i := 0; i < len(b); {
		f, next, _ := nextField(b, i) // Read without error above.
		if f.num != rw2HistogramStartTimestamp {
			buf = append(buf, b[i:next]...)
		}
		i = next
	}
	return buf, nil
}

// checkHistogramField checks the wire type of a field of a Histogram, and
// the framing of its packed and nested fields, as the generated decoders of
// both versions do: the ingesters decode the bytes forwarded.
func checkHistogramField(f wireField) error {
	want := -1
	switch f.num {
	case 1, 4, 6, 14, 15, 17: // counts, schema, reset hint, timestamps
		want = 0
	case 2, 3, 5, 7: // float count, sum, zero threshold, float zero count
		want = 1
	case 8, 11: // spans
		want = 2
		if f.wire == 2 {
			return checkSpan(f.b)
		}
	case 9, 12: // deltas: packed or one varint
		if f.wire == 2 {
			return checkPackedVarints(f.b)
		}
		want = 0
	case 10, 13, 16: // counts, custom values: packed or one fixed64
		if f.wire == 2 {
			if len(f.b)%8 != 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		want = 1
	}
	if want >= 0 && f.wire != want {
		return fmt.Errorf("proto: wrong wireType = %d for field %d of Histogram", f.wire, f.num)
	}
	return nil
}

// checkSpan checks the fields of a BucketSpan: two varints.
func checkSpan(b []byte) error {
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return err
		}
		if (f.num == 1 || f.num == 2) && f.wire != 0 {
			return fmt.Errorf("proto: wrong wireType = %d for field %d of BucketSpan", f.wire, f.num)
		}
		i = next
	}
	return nil
}

// checkPackedVarints checks that b is a sequence of whole varints.
func checkPackedVarints(b []byte) error {
	for len(b) > 0 {
		_, n, err := readVarint(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// appendExemplar appends the remote-write 1.0 Exemplar of the remote-write
// 2.0 Exemplar b (whose references checkExemplarRefs passed): its labels
// resolved, its value and timestamp as they are.
func (t *rw2Translator) appendExemplar(buf, b []byte) ([]byte, error) {
	var refs [2]uint32
	n := 0
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return buf, err
		}
		switch f.num {
		case 1:
			err = forEachRef(f, func(r uint32) {
				refs[n%2] = r
				if n++; n%2 == 0 {
					buf = t.appendLabel(buf, 1<<3|2, refs[0], refs[1])
				}
			})
			if err != nil {
				return buf, err
			}
		case 2, 3:
			buf = append(buf, b[i:next]...) // Same field numbers and types in both versions.
		}
		i = next
	}
	return buf, nil
}

// checkExemplarRefs returns why the label references of exemplar b are bad,
// or "".
func (t *rw2Translator) checkExemplarRefs(b []byte) (string, error) {
	n, bad := 0, ""
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return "", err
		}
		i = next
		switch {
		case f.num == 1:
			err = forEachRef(f, func(r uint32) {
				n++
				if int(r) >= len(t.symbols) && bad == "" {
					bad = fmt.Sprintf("exemplar label reference %d is past the symbol table of %d symbols", r, len(t.symbols))
				}
			})
			if err != nil {
				return "", err
			}
		case f.num == 2 && f.wire != 1, f.num == 3 && f.wire != 0:
			return "", fmt.Errorf("proto: wrong wireType = %d for field %d of Exemplar", f.wire, f.num)
		}
	}
	if bad == "" && n%2 != 0 {
		bad = fmt.Sprintf("%d exemplar label references, an odd number", n)
	}
	return bad, nil
}

// readMetadata reads the Metadata b of a series into s.
func (t *rw2Translator) readMetadata(b []byte, s *rw2Series) error {
	s.hasMeta = true
	for i := 0; i < len(b); {
		f, next, err := nextField(b, i)
		if err != nil {
			return err
		}
		i = next
		if f.num != 1 && f.num != 3 && f.num != 4 {
			continue
		}
		if f.wire != 0 {
			return fmt.Errorf("proto: wrong wireType = %d for field %d of Metadata", f.wire, f.num)
		}
		switch f.num {
		case 1:
			s.metaType = f.v
			if s.metaType > rw2TypeStateset {
				s.metaType = 0 // An unknown type is unknown, as Prometheus reads it.
			}
		case 3:
			s.helpRef = f.v
		case 4:
			s.unitRef = f.v
		}
	}
	return nil
}

// addMetadata adds the metadata of the series in t.refs to t.meta, once per
// metric family of the request. The family is the metric name, without the
// suffix a histogram's or a summary's series add to it.
func (t *rw2Translator) addMetadata(s rw2Series) (added bool) {
	if s.metaType == 0 && s.helpRef == 0 && s.unitRef == 0 {
		return false
	}
	var name []byte
	for i := 0; i < len(t.refs); i += 2 {
		if string(t.symbolBytes(t.refs[i])) == metricName {
			name = t.symbolBytes(t.refs[i+1])
			break
		}
	}
	family := familyName(string(name), s.metaType)
	if family == "" {
		return false
	}
	if _, ok := t.families[family]; ok {
		return false
	}
	if t.families == nil {
		t.families = make(map[string]struct{})
	}
	t.families[family] = struct{}{}
	var help, unit []byte
	if s.helpRef > 0 {
		help = t.symbolBytes(uint32(s.helpRef))
	}
	if s.unitRef > 0 {
		unit = t.symbolBytes(uint32(s.unitRef))
	}
	size := sizeOfVarint(uint64(len(family))) + 1 + len(family)
	if s.metaType != 0 {
		size += 1 + sizeOfVarint(s.metaType)
	}
	if len(help) > 0 {
		size += 1 + sizeOfVarint(uint64(len(help))) + len(help)
	}
	if len(unit) > 0 {
		size += 1 + sizeOfVarint(uint64(len(unit))) + len(unit)
	}
	m := append(t.meta, tagMetadata)
	m = appendVarint(m, uint64(size))
	if s.metaType != 0 {
		m = appendVarint(append(m, 1<<3), s.metaType) // MetricMetadata.type: the same numbers in both versions
	}
	m = appendBytesField(m, 2<<3|2, []byte(family))
	if len(help) > 0 {
		m = appendBytesField(m, 4<<3|2, help)
	}
	if len(unit) > 0 {
		m = appendBytesField(m, 5<<3|2, unit)
	}
	t.meta = m
	return true
}

func appendBytesField(buf []byte, tag byte, v []byte) []byte {
	buf = append(buf, tag)
	buf = appendVarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// Remote-write 2.0 metric types whose series add a suffix to the family name.
const (
	rw2TypeHistogram      = 3
	rw2TypeGaugeHistogram = 4
	rw2TypeSummary        = 5
	rw2TypeStateset       = 7
)

// familyName returns the metric family of the series named name whose
// metadata has type typ: classic histograms and summaries expose one family
// as several series (_bucket, _sum, _count), and Prometheus's metadata names
// the family.
func familyName(name string, typ uint64) string {
	var suffixes []string
	switch typ {
	case rw2TypeHistogram, rw2TypeGaugeHistogram:
		suffixes = []string{"_bucket", "_sum", "_count"}
	case rw2TypeSummary:
		suffixes = []string{"_sum", "_count"}
	}
	for _, s := range suffixes {
		if f, ok := strings.CutSuffix(name, s); ok {
			return f
		}
	}
	return name
}

// wireField is one field read by nextField: its number and wire type, and
// its value (v for varint and fixed types, b for length-delimited ones).
type wireField struct {
	num  int32
	wire int
	v    uint64
	b    []byte
}

// nextField reads the field at buf[i:] as the generated code reads it, and
// returns where the next one starts. Groups are skipped.
func nextField(buf []byte, i int) (f wireField, next int, err error) {
	// Most fields have a one-byte tag and, if length-delimited, a one-byte
	// length: read inline.
	if i+1 < len(buf) && buf[i] < 0x80 && buf[i]&7 == 2 && buf[i] >= 8 && buf[i+1] < 0x80 {
		end := i + 2 + int(buf[i+1])
		if end <= len(buf) {
			return wireField{num: int32(buf[i] >> 3), wire: 2, b: buf[i+2 : end]}, end, nil
		}
	}
	tag, n, err := readVarint(buf[i:])
	if err != nil {
		return f, 0, err
	}
	f.num, f.wire = int32(tag>>3), int(tag&7)
	if f.num <= 0 {
		return f, 0, fmt.Errorf("proto: illegal tag %d (wire type %d)", f.num, tag)
	}
	j := i + n
	switch f.wire {
	case 0:
		f.v, n, err = readVarint(buf[j:])
		return f, j + n, err
	case 1:
		if j+8 > len(buf) {
			return f, 0, io.ErrUnexpectedEOF
		}
		f.v = binary.LittleEndian.Uint64(buf[j:])
		return f, j + 8, nil
	case 2:
		f.b, n, err = readBytes(buf[j:])
		return f, j + n, err
	case 5:
		if j+4 > len(buf) {
			return f, 0, io.ErrUnexpectedEOF
		}
		f.v = uint64(binary.LittleEndian.Uint32(buf[j:]))
		return f, j + 4, nil
	case 3:
		skip, err := protohelpers.Skip(buf[i:])
		if err != nil {
			return f, 0, err
		}
		if skip < 0 || i+skip > len(buf) {
			return f, 0, io.ErrUnexpectedEOF
		}
		return f, i + skip, nil
	default:
		return f, 0, fmt.Errorf("proto: illegal wireType %d", f.wire)
	}
}

// appendRefs appends the references of a repeated uint32 field, packed or
// not, to refs, as forEachRef reads them.
func (t *rw2Translator) appendRefs(refs []uint32, f wireField) ([]uint32, error) {
	if f.wire != 2 {
		err := forEachRef(f, func(r uint32) { refs = append(refs, r) })
		return refs, err
	}
	for b := f.b; len(b) > 0; {
		if b[0] < 0x80 {
			refs = append(refs, uint32(b[0]))
			b = b[1:]
			continue
		}
		if len(b) > 1 && b[1] < 0x80 {
			refs = append(refs, uint32(b[0]&0x7f)|uint32(b[1])<<7)
			b = b[2:]
			continue
		}
		v, n, err := readVarint(b)
		if err != nil {
			return refs, err
		}
		if v > math.MaxUint32 {
			t.wideRef = true // Truncated, as the generated decoder does; the ingesters' would refuse it.
		}
		refs = append(refs, uint32(v))
		b = b[n:]
	}
	return refs, nil
}

// forEachRef calls fn with each uint32 of the repeated field f, packed
// (bytes) or not (one varint).
func forEachRef(f wireField, fn func(uint32)) error {
	switch f.wire {
	case 0:
		fn(uint32(f.v)) // Truncated as the generated code does.
		return nil
	case 2:
		for b := f.b; len(b) > 0; {
			if b[0] < 0x80 {
				fn(uint32(b[0]))
				b = b[1:]
				continue
			}
			v, n, err := readVarint(b)
			if err != nil {
				return err
			}
			fn(uint32(v))
			b = b[n:]
		}
		return nil
	default:
		return fmt.Errorf("proto: wrong wireType = %d for a label reference field", f.wire)
	}
}

// The response headers of remote write 2.0 (specification, "Required
// Written Response Headers").
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// writtenStats counts what a push stored, for the remote-write 2.0 headers.
type writtenStats struct {
	rw2                            bool // the push is remote write 2.0: answer with the headers
	samples, histograms, exemplars int64
}

// setHeaders sets the written headers of an answer with status code. A 5xx
// or a 429 is retried whole, and the retry's answer counts what it stores:
// what this attempt stored is not counted, or the sender, which adds up the
// answers of every attempt, would count it twice. Prometheus's receiver
// answers the same.
func (st *writtenStats) setHeaders(w http.ResponseWriter, code int) {
	if code >= http.StatusInternalServerError || code == http.StatusTooManyRequests {
		*st = writtenStats{rw2: true}
	}
	h := w.Header()
	h.Set(headerSamplesWritten, strconv.FormatInt(st.samples, 10))
	h.Set(headerHistogramsWritten, strconv.FormatInt(st.histograms, 10))
	h.Set(headerExemplarsWritten, strconv.FormatInt(st.exemplars, 10))
}

// count adds what the settled push wc stored: every sample, histogram and
// exemplar of each series a quorum stored, less the exemplars a replica
// reported not storing (the most any replica did). Of a series an ingester
// rejected (every replica answered; none stored it whole), what the
// replica that rejected the most listed is taken off, floats and histograms
// apart, and so are the exemplars a replica reported not storing (all of
// them for a series no ingester holds). A rejected series no replica listed
// counts nothing: the headers may undercount then, never overcount.
func (st *writtenStats) count(wc *writeCtx) {
	for i := range wc.series {
		s := &wc.series[i]
		floats, hists, exs := int64(s.samples), int64(0), int64(0)
		if s.ts != nil {
			floats, hists, exs = int64(len(s.ts.Samples)), int64(len(s.ts.Histograms)), int64(len(s.ts.Exemplars))
		}
		v := &wc.votes[i]
		switch {
		case !v.decided:
			continue
		case v.outcome == outcomeStored:
			st.samples += floats
			st.histograms += hists
			st.exemplars += max(exs-v.exDropped, 0)
		case v.outcome == outcomeRejected && v.listedBy >= 0:
			st.samples += max(floats-(v.listed-v.listedHist), 0)
			st.histograms += max(hists-v.listedHist, 0)
			st.exemplars += max(exs-v.exDropped, 0)
		}
	}
}

// appendVarint appends v as a protobuf varint.
func appendVarint(buf []byte, v uint64) []byte {
	for v >= 0x80 {
		buf = append(buf, byte(v)|0x80)
		v >>= 7
	}
	return append(buf, byte(v))
}
