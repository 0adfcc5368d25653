package distributor

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Forwarding remote write 2.0 without translating it. A remote-write 2.0
// series of labels and float samples (most of them) is not written out in
// the remote-write 1.0 form: its labels are read where its symbols are in
// the request (labelRef offsets into wc.rw2buf, which wc.lbuf then is),
// checked and hashed there like a 1.0 series' labels, and the series is
// forwarded as the bytes it came in, with the request's symbol table, in
// the symbolised form of a WriteRequest (internal/grpccodec/symbols.go):
// the ingester's codec resolves each label reference into a string that
// aliases the symbol's bytes. No label byte is copied between the sender's
// request and the ingester's Push but the one copy of the symbol table per
// batch. Any other 2.0 series (histograms, exemplars, start timestamps, an
// encoding of its own) is translated and decoded as before (rw2.go), and
// so is a symbolised series that fails the fast checks (unsymbolise): every
// rejection still comes from seriesValidator.validate.
//
// Not with the HA tracker on for the tenant: cutting the replica label is
// done on 1.0 bytes (hatracker.go), so those pushes are translated whole.

// addSymbolised places the remote-write 2.0 series b, whose references
// t.readSeries read and t.checkRefs found good, as a symbolised series.
func (wc *writeCtx) addSymbolised(b []byte, s rw2Series) {
	t := &wc.rw2
	lo := len(wc.labels)
	for i := 0; i+1 < len(t.refs); i += 2 {
		n, v := t.symbols[t.refs[i]], t.symbols[t.refs[i+1]]
		wc.labels = append(wc.labels, labelRef{nameOff: uint32(n.start), nameEnd: uint32(n.end), valueOff: uint32(v.start), valueEnd: uint32(v.end)})
	}
	t.pos = append(t.pos, rw2Pos{symbolised: true})
	wc.series = append(wc.series, seriesRef{
		raw: b, symbolised: true, lo: int32(lo), hi: int32(len(wc.labels)), samples: int32(s.samples), maxT: t.maxT,
	})
}

// unsymbolise translates the symbolised series s into the remote-write 1.0
// form, appended to wc.decoded, and decodes it with the generated code, for
// seriesValidator.validate to check and fix.
func (wc *writeCtx) unsymbolise(s *seriesRef) error {
	t := &wc.rw2
	if _, err := t.readSeries(s.raw); err != nil {
		return err // Read without error before: a bug.
	}
	out := slices.Grow(wc.decoded, t.labelsSize()+len(t.data))
	start, n := len(out), len(wc.labels)
	out, wc.labels = t.appendLabels(out, wc.labels)
	wc.labels = wc.labels[:n] // The decoded series is read, not its label offsets.
	out = append(out, t.data...)
	wc.decoded = out
	s.raw, s.symbolised = out[start:len(out):len(out)], false
	var err error
	s.ts, err = wc.decodeSeries(s.raw)
	return err
}

// Wire bytes of the symbolised form (internal/grpccodec/symbols.go).
const (
	tagSymbol           = 4<<3 | 2 // WriteRequest field 4, a symbol
	tagSymbolisedSeries = 5<<3 | 2 // WriteRequest field 5, a remote-write 2.0 series
)

// symbolsSize is the size of the symbol fields of the request.
func (t *rw2Translator) symbolsSize() int {
	if t.symbolsAt[0] >= 0 {
		return int(t.symbolsAt[1] - t.symbolsAt[0])
	}
	n := 0
	for _, y := range t.symbols {
		n += 1 + int(y.end-y.lenStart)
	}
	return n
}

// marshalSymbols writes the symbol fields back to front ending at p of buf,
// and returns where they start.
func (t *rw2Translator) marshalSymbols(buf []byte, p int) int {
	if t.symbolsAt[0] >= 0 {
		p -= int(t.symbolsAt[1] - t.symbolsAt[0])
		copy(buf[p:], t.src[t.symbolsAt[0]:t.symbolsAt[1]])
		return p
	}
	for k := len(t.symbols) - 1; k >= 0; k-- {
		y := t.symbols[k]
		p -= int(y.end - y.lenStart)
		copy(buf[p:], t.src[y.lenStart:y.end])
		p--
		buf[p] = tagSymbol
	}
	return p
}

// rw1Size is the size of the remote-write 1.0 TimeSeries of the symbolised
// series s: its labels and its samples, without its metadata.
func (wc *writeCtx) rw1Size(s *seriesRef) int {
	n := 0
	for _, l := range wc.labels[s.lo:s.hi] {
		size := labelSize(int(l.nameEnd-l.nameOff), int(l.valueEnd-l.valueOff))
		n += 1 + sizeOfVarint(uint64(size)) + size
	}
	forEachPlainSample(s.raw, func(b []byte) { n += 2 + len(b) })
	return n
}

func labelSize(name, value int) int {
	return 2 + sizeOfVarint(uint64(name)) + name + sizeOfVarint(uint64(value)) + value
}

// appendRW1 appends the remote-write 1.0 TimeSeries of the symbolised series
// s, rw1Size bytes.
func (wc *writeCtx) appendRW1(buf []byte, s *seriesRef) []byte {
	for _, l := range wc.labels[s.lo:s.hi] {
		name, value := wc.lbuf[l.nameOff:l.nameEnd], wc.lbuf[l.valueOff:l.valueEnd]
		buf = appendVarint(append(buf, tagLabels), uint64(labelSize(len(name), len(value))))
		buf = append(appendVarint(append(buf, tagLabelName), uint64(len(name))), name...)
		buf = append(appendVarint(append(buf, tagLabelValue), uint64(len(value))), value...)
	}
	forEachPlainSample(s.raw, func(b []byte) { buf = append(append(buf, tagSamples, byte(len(b))), b...) })
	return buf
}

// forEachPlainSample calls fn with each Sample of the remote-write 2.0
// series b, which readSeries found plain (each sample at most 20 bytes).
func forEachPlainSample(b []byte, fn func([]byte)) {
	for i := 0; i < len(b); {
		f, next, _ := nextField(b, i)
		if f.num == rw2Samples {
			fn(f.b)
		}
		i = next
	}
}

// rw1Batch is a rawBatch encoded in the remote-write 1.0 form only, for an
// ingester that does not take the symbolised form (an older version).
type rw1Batch struct{ r rawBatch }

func (b rw1Batch) SizeVT() int { return b.r.SizeVT() }
func (b rw1Batch) MarshalToSizedBufferVT(buf []byte) (int, error) {
	return b.r.MarshalToSizedBufferVT(buf)
}
func (rw1Batch) UnmarshalVT([]byte) error { return errors.New("rw1Batch is not decodable") }

// pushSymbolised sends the batch in, which holds symbolised series, to the
// IngesterSymbols service, or in the remote-write 1.0 form to an ingester
// that answered it does not have that service (then remembered).
func (c *ingesterClient) pushSymbolised(ctx context.Context, in *rawBatch, opts []grpc.CallOption) (*arguspb.PushResponse, error) {
	out := new(arguspb.PushResponse)
	opts = append([]grpc.CallOption{grpc.ForceCodecV2(grpccodec.Codec{})}, opts...)
	if !c.noSymbols.Load() {
		err := c.conn.Invoke(ctx, arguspb.IngesterSymbols_Push_FullMethodName, in, out, opts...)
		if status.Code(err) != codes.Unimplemented {
			if err != nil {
				return nil, err
			}
			return out, nil
		}
		c.noSymbols.Store(true)
	}
	r := *in
	r.rw1 = true
	if err := c.conn.Invoke(ctx, arguspb.Ingester_Push_FullMethodName, rw1Batch{r}, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
