package distributor

import (
	"context"
	"errors"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Forwarding the raw bytes of each series. A push decodes every series (to
// validate it and hash its labels) but need not encode it again for each of
// its replicas: a series that validation left as it came is sent to the
// ingesters as the very bytes it arrived in (TimeSeries, field 1 of
// WriteRequest), and only a series validation changed (labels sorted or
// emptied, samples too far in the future or invalid exemplars dropped) is
// marshalled again. At replication factor 3 that saves three encodings of
// every label of nearly every series.
//
// The bytes alias the request's decoded body, like its strings (see
// writeCtx): a rawBatch is valid while its writeCtx is held.

// rawPusher is a Pusher that can send a pre-encoded WriteRequest; the
// clients of a ClientPool are.
type rawPusher interface {
	PushRaw(ctx context.Context, in *rawBatch, opts ...grpc.CallOption) (*arguspb.PushResponse, error)
}

// rawBatch is the WriteRequest of one batch, encoded from the raw bytes of
// its series where they are still valid. It implements the vtprotobuf
// marshalling methods the gRPC codec (internal/grpccodec) calls.
type rawBatch struct {
	wc *writeCtx
	b  *batch
	// rw1 writes symbolised series (symbolise.go) in the remote-write 1.0
	// form, for an ingester or a Pusher that does not take the other.
	rw1 bool
}

// symbolised reports whether the encoding carries the symbol table and
// symbolised series.
func (r rawBatch) symbolised() bool { return r.b.symbolised && !r.rw1 }

// sizeOfVarint is the length of the varint encoding of x.
func sizeOfVarint(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// SizeVT is the size of the encoded WriteRequest.
func (r rawBatch) SizeVT() int {
	n := r.metadataSize()
	if r.symbolised() {
		n += r.wc.rw2.symbolsSize()
	}
	for _, i := range r.b.series {
		l := r.seriesSize(i)
		n += 1 + sizeOfVarint(uint64(l)) + l
	}
	return n
}

func (r rawBatch) seriesSize(i int32) int {
	s := &r.wc.series[i]
	switch {
	case s.symbolised && r.rw1:
		return r.wc.rw1Size(s)
	case s.raw != nil:
		return len(s.raw)
	}
	return s.ts.SizeVT()
}

// MarshalToSizedBufferVT encodes the WriteRequest at the end of buf, as the
// generated code does (back to front), and returns its length.
func (r rawBatch) MarshalToSizedBufferVT(buf []byte) (int, error) {
	end := len(buf)
	p := r.marshalMetadata(buf, end)
	for k := len(r.b.series) - 1; k >= 0; k-- {
		i := r.b.series[k]
		var l int
		tag := byte(tagTimeSeries)
		if s := &r.wc.series[i]; s.symbolised && r.rw1 {
			l = r.wc.rw1Size(s)
			p -= l
			r.wc.appendRW1(buf[p:p], s)
		} else if s.raw != nil {
			l = len(s.raw)
			p -= l
			copy(buf[p:], s.raw)
			if s.symbolised {
				tag = tagSymbolisedSeries
			}
		} else {
			var err error
			if l, err = s.ts.MarshalToSizedBufferVT(buf[:p]); err != nil {
				return 0, err
			}
			p -= l
		}
		p -= sizeOfVarint(uint64(l))
		putVarint(buf[p:], uint64(l))
		p--
		buf[p] = tag
	}
	if r.symbolised() {
		p = r.wc.rw2.marshalSymbols(buf, p) // First: the ingester resolves each series as it reads it.
	}
	return end - p, nil
}

// request returns the WriteRequest of the batch, decoded from its encoding
// (copying every string), for a Pusher that cannot send raw bytes: it is
// sent exactly what the wire would carry.
func (r rawBatch) request() (*arguspb.WriteRequest, error) {
	r.rw1 = true
	buf := make([]byte, r.SizeVT())
	if _, err := r.MarshalToSizedBufferVT(buf); err != nil {
		return nil, err
	}
	req := &arguspb.WriteRequest{}
	return req, req.UnmarshalVT(buf)
}

// Encoded returns the encoding of the batch, shared with every batch of the
// push that holds the same series (see writeCtx.shareEncodings): the first
// push to need it encodes it, the others wait for it. The caller (gRPC)
// frees its reference once sent; writeCtx.reset frees the push's own.
func (r *rawBatch) Encoded() (mem.BufferSlice, error) {
	e := &r.wc.encodings[r.b.enc]
	e.once.Do(func() { e.data, e.err = grpccodec.Encode(r) })
	if e.err != nil {
		return nil, e.err
	}
	e.data.Ref()
	return e.data, nil
}

// sharedEncoding is the encoding of the batches of a push that hold the same
// series, made once.
type sharedEncoding struct {
	once sync.Once
	data mem.BufferSlice // one reference held by the writeCtx
	err  error
}

// shareEncodings gives the batches that hold the same series, in the same
// order, one sharedEncoding. With as many ingesters as the replication
// factor every batch holds every series, and the push encodes once instead
// of once per replica; with more ingesters batches differ and each has its
// own.
func (wc *writeCtx) shareEncodings() {
	for i := range wc.batches {
		b := &wc.batches[i]
		b.enc = -1
		for j := range i {
			if slices.Equal(wc.batches[j].series, b.series) && slices.Equal(wc.batches[j].meta, b.meta) {
				b.enc = wc.batches[j].enc
				break
			}
		}
		if b.enc < 0 {
			b.enc = int32(len(wc.encodings))
			wc.encodings = append(wc.encodings, sharedEncoding{})
		}
	}
}

// freeEncodings drops the push's references to its encodings, and its
// series refs (streamrefs.go).
func (wc *writeCtx) freeEncodings() {
	wc.streamRefs.reset()
	for i := range wc.encodings {
		if e := &wc.encodings[i]; e.data != nil {
			e.data.Free()
		}
		wc.encodings[i] = sharedEncoding{}
	}
	wc.encodings = wc.encodings[:0]
}

// UnmarshalVT is never called: a rawBatch is only sent.
func (rawBatch) UnmarshalVT([]byte) error { return errors.New("rawBatch is not decodable") }

func putVarint(b []byte, x uint64) {
	i := 0
	for x >= 0x80 {
		b[i] = byte(x) | 0x80
		x >>= 7
		i++
	}
	b[i] = byte(x)
}

// ingesterClient is the Pusher of a ClientPool: the generated client, plus
// PushRaw on the same connection.
type ingesterClient struct {
	arguspb.IngesterClient
	conn *grpc.ClientConn
	// noSymbols is set once the ingester answered that it has no
	// IngesterSymbols service: it is sent the remote-write 1.0 form.
	noSymbols atomic.Bool
	// noStream is set once the ingester answered that it has no
	// PushStream: it is sent unary Pushes (see pushstream.go).
	noStream   atomic.Bool
	maxMsgSize int // see ClientPool.SetMaxMsgSize
	// dict gives series their refs on the stream (streamrefs.go), shared
	// by the pool's clients; nil sends every series with its labels.
	dict     *seriesDict
	streamMu sync.Mutex
	stream   *pushStream // guarded by streamMu; nil until the first push
}

// PushRaw sends the pre-encoded request in on the ingester's PushStream
// (pushstream.go), or calls Ingester.Push with it if the ingester has no
// PushStream or in is symbolised. It forces
// Argus's codec, the one that knows how to encode a rawBatch, whatever the
// pool's dial options.
func (c *ingesterClient) PushRaw(ctx context.Context, in *rawBatch, opts ...grpc.CallOption) (*arguspb.PushResponse, error) {
	if in.symbolised() {
		return c.pushSymbolised(ctx, in, opts)
	}
	if !c.noStream.Load() && c.fitsStream(in) {
		if resp, fallback, err := c.pushStreamed(ctx, in.wc.tenant, in); !fallback {
			return resp, err
		}
	}
	out := new(arguspb.PushResponse)
	opts = append([]grpc.CallOption{grpc.ForceCodecV2(grpccodec.Codec{})}, opts...)
	if err := c.conn.Invoke(ctx, arguspb.Ingester_Push_FullMethodName, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
