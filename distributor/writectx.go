package distributor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/snappy"
	protohelpers "github.com/planetscale/vtprotobuf/protohelpers"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// maxPooledBuffer is the largest body buffer kept in the pool: a rare huge
// push must not pin its memory for the life of the process.
const maxPooledBuffer = 8 << 20

// smallBatchCount is the most batches batchFor searches in order rather than
// through byAddr.
const smallBatchCount = 8

// maxPooledSeries is the most decoded series a pooled request keeps for
// reuse; Prometheus sends at most 2000 (max_samples_per_send) by default.
const maxPooledSeries = 10_000

// writeCtx is the state of one push, pooled (getWriteCtx, putWriteCtx) after
// VictoriaMetrics's InsertCtx: the bodies, the series read from them, the
// batches per ingester and the rejections.
//
// # Ownership
//
// Every series of the request is read in place from decoded (see scan.go):
// its raw bytes, its label ranges and, for a series the fast path did not
// take, the strings of its decoded *TimeSeries all alias decoded, without a
// copy. decoded therefore stays alive, untouched, until every ingester push
// of the request has returned (all of them, the stragglers that finish after
// the answer included: see pushBatches) and the response body (which formats
// rejected labels eagerly) is built. refs counts those holders; the last
// one's release calls putWriteCtx. A writeCtx is used by one request at a
// time and is unusable after putWriteCtx.
type writeCtx struct {
	tenant  string // of the push, set by pushBatches
	body    []byte // compressed body as read
	decoded []byte // snappy-decoded body; every series aliases it
	// lbuf is the buffer the offsets of labels (labelRef) are into:
	// decoded, or for remote write 2.0 with symbolised series the request's
	// symbols in rw2buf (see symbolise.go).
	lbuf []byte
	// series are the series of the request in order, and after validate
	// the series to push; votes and batches index them.
	series []seriesRef
	labels []labelRef // of the fast-path series (seriesRef.lo, hi)
	// decodedTS are the series decoded by the generated code (seriesRef.ts),
	// kept with their slices' capacity for the next request.
	decodedTS []*arguspb.TimeSeries
	key       []byte // scratch: the shard key of a series (see shard)
	// meta are the metadata entries of the request, and after validate the
	// valid ones (exmeta.go); their votes follow the series' in votes.
	meta             []metadataRef
	metadataReceived int
	exemplars        int                       // exemplars of the request, for the received counter
	exInvalid        [numExemplarReasons]int64 // exemplars and metadata validation dropped, by reason
	// rw2buf is the snappy-decoded body of a remote-write 2.0 push, which
	// rw2 translates into decoded (see rw2.go).
	rw2buf []byte
	rw2    rw2Translator
	// otlp is the appender an OTLP push is translated into (see otlp.go).
	otlp *otlpAppender

	batches []batch // one per ingester, in order of first use
	// encodings are the batches' encodings, one per distinct batch (see
	// shareEncodings).
	encodings []sharedEncoding
	byAddr    map[string]int // ingester address to index in batches
	replicas  []ring.Instance
	rf        int // replication factor of the ring when the request was sharded
	quorum    int // acknowledgements each series needs: rf/2+1

	// refs are the holders of the writeCtx: the handler and each push still
	// running (see Distributor.release).
	refs atomic.Int32
	// answers gets the index of each batch whose push returned; the handler
	// reads them until every series is decided, release drains the rest.
	answers chan int32
	// streamRefs are the series' refs on PushStreams (streamrefs.go).
	streamRefs pushRefs

	// Written by the handler's goroutine only (shard, record, settle).
	votes          []seriesVotes         // by index in series
	undecided      int                   // series whose outcome is not final yet
	lost           int                   // series decided a quorum failure
	rejectedSeries int                   // series decided rejected
	keys           map[string]int32      // labels key (see appendLabels) to index in series
	listed         map[int32]listedCount // scratch of listedIn
	keyBuf         []byte

	rej rejections
	// invalid are the samples validation refused, by reason, counted in
	// argus_discarded_samples_total by countInvalid.
	invalid [numReasons]int64
}

// batch is what one ingester is sent and what it answered.
type batch struct {
	addr       string
	symbolised bool    // some series is symbolised: the batch carries the symbol table
	series     []int32 // index in writeCtx.series of each series sent
	meta       []int32 // index in writeCtx.meta of each metadata entry sent
	enc        int32   // its encoding in writeCtx.encodings
	resp       *arguspb.PushResponse
	err        *ingesterError // nil if the push succeeded
	// seen is set once the handler recorded the answer (see record); a batch
	// not seen when the push is answered is a straggler.
	seen bool

	// Set by listedIn: the series index of each of resp.Rejected (-1 when
	// it matches no series of the request), and the rejected samples the
	// response does not attribute to a series.
	rejIdx   []int32
	unlisted int64
}

var writeCtxPool = sync.Pool{New: func() any {
	return &writeCtx{byAddr: make(map[string]int)}
}}

// getWriteCtx returns a reset writeCtx with one reference, the caller's.
func getWriteCtx() *writeCtx {
	wc := writeCtxPool.Get().(*writeCtx)
	wc.refs.Store(1)
	return wc
}

// putWriteCtx resets wc and returns it to the pool. Every string decoded from
// wc is invalid afterwards.
func putWriteCtx(wc *writeCtx) {
	wc.reset()
	writeCtxPool.Put(wc)
}

// reset empties wc but keeps its capacity (the decoded series included, for
// reuse), dropping every reference into the previous request's body.
func (wc *writeCtx) reset() {
	wc.body = reuse(wc.body)
	wc.decoded = reuse(wc.decoded)
	wc.lbuf = nil
	clear(wc.series[:cap(wc.series)])
	wc.series = wc.series[:0]
	if cap(wc.series) > maxPooledSeries {
		wc.series = nil
	}
	if cap(wc.labels) > 16*maxPooledSeries {
		wc.labels = nil
	}
	wc.labels = wc.labels[:0]
	wc.decodedTS = resetDecoded(wc.decodedTS)
	clear(wc.meta)
	wc.meta = wc.meta[:0]
	wc.metadataReceived, wc.exemplars = 0, 0
	wc.exInvalid = [numExemplarReasons]int64{}
	wc.rw2buf = reuse(wc.rw2buf)
	wc.rw2.reset()
	wc.key = reuse(wc.key)
	wc.freeEncodings()
	all := wc.batches[:cap(wc.batches)]
	for i := range all {
		b := &all[i]
		*b = batch{series: reuseIndex(b.series), rejIdx: reuseIndex(b.rejIdx), meta: reuseIndex(b.meta)}
	}
	wc.batches = wc.batches[:0]
	clear(wc.byAddr)
	clear(wc.replicas[:cap(wc.replicas)])
	wc.replicas = wc.replicas[:0]
	wc.rf, wc.quorum = 0, 0
	if cap(wc.votes) > maxPooledSeries {
		wc.votes = nil
	}
	wc.votes = wc.votes[:0]
	wc.undecided, wc.lost, wc.rejectedSeries = 0, 0, 0
	if len(wc.keys) > maxPooledSeries {
		wc.keys = nil // A map does not shrink.
	}
	clear(wc.keys)
	clear(wc.listed)
	wc.keyBuf = reuse(wc.keyBuf)
	wc.rej.reset(0)
	wc.invalid = [numReasons]int64{}
}

// countInvalid adds the samples validation refused to the tenant's discard
// counters.
func (wc *writeCtx) countInvalid(tm *tenantMetrics) {
	for r, n := range wc.invalid {
		if n > 0 {
			tm.discarded[r].Add(float64(n))
		}
	}
}

func reuseIndex(s []int32) []int32 {
	if cap(s) > maxPooledSeries {
		return nil
	}
	return s[:0]
}

func reuse(b []byte) []byte {
	if cap(b) > maxPooledBuffer {
		return nil
	}
	return b[:0]
}

// resetDecoded empties the decoded series but keeps, for the next request,
// the first maxPooledSeries and the capacity of their slices. Pointers into
// the old body are cleared, so that nothing keeps it alive.
func resetDecoded(all []*arguspb.TimeSeries) []*arguspb.TimeSeries {
	all = all[:cap(all)]
	for i, ts := range all {
		if ts == nil {
			continue
		}
		if i >= maxPooledSeries {
			all[i] = nil
			continue
		}
		ls := ts.Labels[:cap(ts.Labels)]
		clear(ls)
		ss := ts.Samples[:cap(ts.Samples)]
		clear(ss)
		*ts = arguspb.TimeSeries{Labels: ls[:0], Samples: ss[:0]}
	}
	if len(all) > maxPooledSeries {
		kept := make([]*arguspb.TimeSeries, maxPooledSeries) // Lets the larger array go.
		copy(kept, all)
		all = kept
	}
	return all[:0]
}

// readBody reads the compressed body of r into wc.body, failing with
// ErrBodyTooLarge past limit bytes without reading much further.
func (wc *writeCtx) readBody(r *http.Request, limit int) error {
	if r.ContentLength > int64(limit) {
		return fmt.Errorf("%w: %d bytes, over -distributor.max-recv-msg-size=%d", ErrBodyTooLarge, r.ContentLength, limit)
	}
	buf := wc.body[:0]
	if r.ContentLength > 0 {
		// One byte more than announced, so that EOF is read without growing;
		// capped, because the announced length is not proof of a body.
		buf = slices.Grow(buf, int(min(r.ContentLength, maxPooledBuffer))+1)
	}
	lr := io.LimitReader(r.Body, int64(limit)+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, cap(buf)))
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			wc.body = buf
			return fmt.Errorf("%w: %w", ErrReadBody, err)
		}
	}
	wc.body = buf
	if len(buf) > limit {
		return fmt.Errorf("%w: more than -distributor.max-recv-msg-size=%d bytes", ErrBodyTooLarge, limit)
	}
	return nil
}

// decode snappy-decodes wc.body into wc.decoded and reads its series in
// place into wc.series (see unmarshalRequest). The decoded size announced by
// the snappy header is checked against limit before any memory is allocated
// for it.
func (wc *writeCtx) decode(limit int) error {
	n, err := snappy.DecodedLen(wc.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecodeSnappy, err)
	}
	if n > limit {
		return fmt.Errorf("%w: the snappy header announces %d bytes, over -distributor.max-recv-msg-size=%d", ErrDecodedTooLarge, n, limit)
	}
	if cap(wc.decoded) < n {
		wc.decoded = make([]byte, n)
	}
	out, err := snappy.Decode(wc.decoded[:cap(wc.decoded)], wc.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecodeSnappy, err)
	}
	wc.decoded = out
	if err := wc.unmarshalRequest(out); err != nil {
		return fmt.Errorf("%w: %w", ErrDecodeProtobuf, err)
	}
	return nil
}

// unmarshalRequest reads the WriteRequest in buf (wc.decoded) into
// wc.series, which must be empty. It walks the two fields of a WriteRequest
// itself; each series is read by the fast path (scanSeries) when it can, else
// decoded with the generated TimeSeries.UnmarshalVTUnsafe (strings alias
// buf) into a *TimeSeries kept from an earlier request, whose Labels and
// Samples slices keep their capacity.
//
// The framing is parsed exactly as the generated WriteRequest.UnmarshalVTUnsafe
// parses it, so that both accept and reject the same inputs (a differential
// test and the fuzz target check it); unknown fields are skipped, not kept.
// Metadata entries are kept as their raw bytes (validateMetadata reads
// them).
func (wc *writeCtx) unmarshalRequest(buf []byte) error {
	wc.lbuf = buf
	for i := 0; i < len(buf); {
		tag, n, err := readVarint(buf[i:])
		if err != nil {
			return err
		}
		fieldStart := i
		i += n
		// Truncated to int32 as the generated code does.
		fieldNum, wireType := int32(tag>>3), int(tag&0x7)
		switch {
		case wireType == 4:
			return errors.New("proto: WriteRequest: wiretype end group for non-group")
		case fieldNum <= 0:
			return fmt.Errorf("proto: WriteRequest: illegal tag %d (wire type %d)", fieldNum, tag)
		case fieldNum == 1 || fieldNum == 3:
			if wireType != 2 {
				return fmt.Errorf("proto: wrong wireType = %d for field %d of WriteRequest", wireType, fieldNum)
			}
			b, n, err := readBytes(buf[i:])
			if err != nil {
				return err
			}
			off := i + n - len(b)
			i += n
			if fieldNum == 3 {
				wc.meta = append(wc.meta, metadataRef{raw: b})
				wc.metadataReceived++
			} else if err := wc.addSeries(b, off); err != nil {
				return err
			}
		default:
			skip, err := protohelpers.Skip(buf[fieldStart:])
			if err != nil {
				return err
			}
			if skip < 0 || fieldStart+skip > len(buf) {
				return io.ErrUnexpectedEOF
			}
			i = fieldStart + skip
		}
	}
	return nil
}

// addSeries appends to wc.series the series encoded in b, at offset off of
// wc.decoded: read in place if scanSeries takes it, else decoded.
func (wc *writeCtx) addSeries(b []byte, off int) error {
	if off+len(b) <= math.MaxUint32 { // labelRef offsets are 32-bit
		var s seriesRef
		var ok bool
		if wc.labels, s, ok = scanSeries(b, uint32(off), wc.labels); ok {
			wc.series = append(wc.series, s)
			return nil
		}
	}
	ts, err := wc.decodeSeries(b)
	if err != nil {
		return err
	}
	wc.series = append(wc.series, seriesRef{raw: b, ts: ts, samples: int32(len(ts.Samples))})
	return nil
}

// decodeSeries decodes the series encoded in b with the generated code,
// into a *TimeSeries of wc's pool; its strings alias b.
func (wc *writeCtx) decodeSeries(b []byte) (*arguspb.TimeSeries, error) {
	n := len(wc.decodedTS)
	if n < cap(wc.decodedTS) {
		wc.decodedTS = wc.decodedTS[:n+1]
	} else {
		wc.decodedTS = append(wc.decodedTS, nil)
	}
	ts := wc.decodedTS[n]
	if ts == nil {
		ts = &arguspb.TimeSeries{}
		wc.decodedTS[n] = ts
	}
	return ts, ts.UnmarshalVTUnsafe(b)
}

// appendLabels appends to buf the labels of series i, each as name, 0xff,
// value, 0xff: the bytes the shard token hashes after the tenant, and a key
// that identifies the label set exactly (0xff never occurs in valid UTF-8,
// which validation requires of every name and value).
func (wc *writeCtx) appendLabels(buf []byte, i int) []byte {
	s := &wc.series[i]
	if s.ts != nil {
		return appendProtoLabels(buf, s.ts.Labels)
	}
	for _, l := range wc.labels[s.lo:s.hi] {
		buf = append(buf, wc.lbuf[l.nameOff:l.nameEnd]...)
		buf = append(buf, 0xff)
		buf = append(buf, wc.lbuf[l.valueOff:l.valueEnd]...)
		buf = append(buf, 0xff)
	}
	return buf
}

// appendProtoLabels is appendLabels of ls.
func appendProtoLabels(buf []byte, ls []*arguspb.Label) []byte {
	for _, l := range ls {
		buf = append(buf, l.Name...)
		buf = append(buf, 0xff)
		buf = append(buf, l.Value...)
		buf = append(buf, 0xff)
	}
	return buf
}

// labelsOf returns the labels of series i, for error messages and
// rejections only: a fast-path series' labels are copied out of the body
// (which allocates).
func (wc *writeCtx) labelsOf(i int) []*arguspb.Label {
	s := &wc.series[i]
	if s.ts != nil {
		return s.ts.Labels
	}
	ls := make([]*arguspb.Label, 0, s.hi-s.lo)
	for _, l := range wc.labels[s.lo:s.hi] {
		ls = append(ls, &arguspb.Label{
			Name:  string(wc.lbuf[l.nameOff:l.nameEnd]),
			Value: string(wc.lbuf[l.valueOff:l.valueEnd]),
		})
	}
	return ls
}

// readVarint reads a varint as the generated code does: at most ten bytes,
// bits past 64 dropped.
func readVarint(buf []byte) (v uint64, n int, err error) {
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, protohelpers.ErrIntOverflow
		}
		if n >= len(buf) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		b := buf[n]
		n++
		v |= uint64(b&0x7F) << shift
		if b < 0x80 {
			return v, n, nil
		}
	}
}

// readBytes reads a length-delimited field value; b aliases buf.
func readBytes(buf []byte) (b []byte, n int, err error) {
	l, n, err := readVarint(buf)
	if err != nil {
		return nil, 0, err
	}
	if int(l) < 0 || n+int(l) < 0 {
		return nil, 0, protohelpers.ErrInvalidLength
	}
	if n+int(l) > len(buf) {
		return nil, 0, io.ErrUnexpectedEOF
	}
	return buf[n : n+int(l)], n + int(l), nil
}

// batchFor returns the batch of the ingester at addr, starting one if needed.
// A push has few batches (one per ingester holding its series): up to
// smallBatchCount they are searched in order, past that through byAddr.
func (wc *writeCtx) batchFor(addr string) *batch {
	if len(wc.batches) <= smallBatchCount {
		for i := range wc.batches {
			if wc.batches[i].addr == addr {
				return &wc.batches[i]
			}
		}
	} else if i, ok := wc.byAddr[addr]; ok {
		return &wc.batches[i]
	}
	i := len(wc.batches)
	if i < cap(wc.batches) {
		wc.batches = wc.batches[:i+1]
	} else {
		wc.batches = append(wc.batches, batch{})
	}
	b := &wc.batches[i]
	b.addr = addr
	wc.byAddr[addr] = i // Every batch, so that byAddr is complete once searched.
	return b
}
