package distributor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Pushing on a long-lived stream. A unary Push costs the distributor a new
// HTTP/2 stream, its headers and trailers, and a response reader per call
// (about an eighth of its CPU under the cluster benchmark, docs/benchmarks.md
// "Cluster ingest"). An ingesterClient therefore keeps one PushStream per
// ingester and sends every plain batch on it as a PushStreamRequest with an
// id; a goroutine reads the answers and hands each to the push waiting for
// its id. Symbolised batches keep the unary IngesterSymbols/Push.
//
// # Exact acknowledgements
//
// A push succeeds only on its own answer. If the stream breaks (a send or a
// receive fails, the ingester restarts, the connection drops) every push
// waiting on it fails with the stream's error, as a unary call cut mid-way
// does, and the distributor answers or retries by its quorum as for any
// failed push; the next push opens a new stream. A push whose deadline
// passes fails with DeadlineExceeded; its answer, if it comes, is dropped.
// A send stuck on flow control past the push's deadline breaks the stream
// (the ingester is not reading): the pushes waiting on it fail too.
//
// # Mixed versions
//
// An ingester without PushStream answers Unimplemented before it reads a
// request: the push is sent again with the unary Push, and the client uses
// Push from then on (noStream).

// pushStream is one open PushStream to an ingester. It is safe for
// concurrent use.
type pushStream struct {
	cs     grpc.ClientStream
	cancel context.CancelFunc

	sendMu sync.Mutex // held by the one sender; taken before mu
	// refsOK is set once the ingester's headers say it takes series refs
	// (streamrefs.go).
	refsOK atomic.Bool
	// defined are the series refs sent with their labels on this stream,
	// a bit per ref; wire and definedLog are scratch of wireRefs. All
	// guarded by sendMu.
	defined    []uint64
	wire       []uint64
	definedLog []uint32

	mu      sync.Mutex
	nextID  uint64                       // guarded by mu
	pending map[uint64]chan streamAnswer // guarded by mu; each has room for its answer
	err     error                        // guarded by mu: why the stream broke, nil while it works
}

// streamAnswer is the answer to one push, or why it has none.
type streamAnswer struct {
	resp *arguspb.PushResponse
	err  error
	// broken is set when the stream failed rather than the push: with
	// Unimplemented, the ingester has no PushStream.
	broken bool
}

// openPushStream opens a PushStream on conn and starts its reader. The
// stream lives until it breaks or c's connection closes.
func openPushStream(conn *grpc.ClientConn) (*pushStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cs, err := conn.NewStream(ctx, &arguspb.Ingester_ServiceDesc.Streams[0], arguspb.Ingester_PushStream_FullMethodName,
		grpc.ForceCodecV2(grpccodec.Codec{}),
		grpc.MaxCallSendMsgSize(math.MaxInt32)) // fitsStream checked: a refusal here would break the stream for every push on it.
	if err != nil {
		cancel()
		return nil, err
	}
	s := &pushStream{cs: cs, cancel: cancel, pending: make(map[uint64]chan streamAnswer)}
	go s.read()
	return s, nil
}

// read hands each answer to the push waiting for its id, until the stream
// fails; then it fails every push still waiting. It first waits for the
// ingester's headers, which say whether it takes series refs: until then
// pushes are sent with their labels.
func (s *pushStream) read() {
	if md, err := s.cs.Header(); err == nil && slices.Contains(md.Get(ingesterSeriesRefsHeader), "1") {
		s.refsOK.Store(true)
	} // On an error, RecvMsg fails too.
	for {
		resp := new(arguspb.PushStreamResponse)
		if err := s.cs.RecvMsg(resp); err != nil {
			s.fail(err)
			return
		}
		a := streamAnswer{resp: resp.Response}
		if resp.ErrorCode != 0 {
			a = streamAnswer{err: status.Error(codes.Code(resp.ErrorCode), resp.ErrorMessage)}
		} else if a.resp == nil {
			a.resp = &arguspb.PushResponse{}
		}
		s.mu.Lock()
		ch, ok := s.pending[resp.Id]
		delete(s.pending, resp.Id)
		s.mu.Unlock()
		if ok {
			ch <- a // Never blocks: one slot, one answer.
		}
	}
}

// fail breaks the stream: every push waiting fails with err (a gRPC status
// error, the stream's), as will every push sent after.
func (s *pushStream) fail(err error) {
	if _, ok := status.FromError(err); !ok {
		err = status.Error(codes.Unavailable, fmt.Sprintf("push stream: %v", err))
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	pending := s.pending
	s.pending = map[uint64]chan streamAnswer{}
	s.mu.Unlock()
	for _, ch := range pending {
		ch <- streamAnswer{err: err, broken: true}
	}
	s.cancel()
}

// broken reports whether the stream failed.
func (s *pushStream) broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// push sends in for tenantID and waits for its answer, ctx's deadline or
// the stream's failure. dict gives the series refs, if not nil.
func (s *pushStream) push(ctx context.Context, tenantID string, in *rawBatch, dict *seriesDict) streamAnswer {
	msg := &grpccodec.StreamPush{Tenant: tenantID}
	defer msg.Free()
	ch := make(chan streamAnswer, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return streamAnswer{err: err, broken: true}
	}
	s.nextID++
	msg.ID = s.nextID
	s.pending[msg.ID] = ch
	s.mu.Unlock()

	encErr, err := s.send(ctx, msg, in, dict)
	if encErr != nil {
		s.mu.Lock()
		delete(s.pending, msg.ID)
		s.mu.Unlock()
		return streamAnswer{err: status.Errorf(codes.Internal, "grpc: error while marshaling: %v", encErr)}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		s.fail(err)
	} // On io.EOF the stream ended: read fails the pushes with its status.
	select {
	case a := <-ch:
		return a
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, msg.ID)
		s.mu.Unlock()
		return streamAnswer{err: status.FromContextError(ctx.Err()).Err()}
	}
}

// send encodes in into msg and sends it, breaking the stream if ctx ends
// while gRPC blocks on flow control (the ingester does not read): SendMsg
// itself cannot be cancelled any other way. It encodes under sendMu, with
// series refs if the ingester takes them and dict is not nil, so that refs
// are defined in the order the ingester receives them. encErr is set if in
// could not be encoded: nothing was sent, and the stream is fine.
func (s *pushStream) send(ctx context.Context, msg *grpccodec.StreamPush, in *rawBatch, dict *seriesDict) (encErr, err error) {
	var refs []uint32
	useRefs := dict != nil && s.refsOK.Load() && !in.b.symbolised
	if useRefs {
		refs = dict.refsOf(in.wc) // Before sendMu: the first push of a request looks them up for all.
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if ctx.Err() != nil {
		return nil, nil // The push fails by its deadline; the stream is fine.
	}
	if useRefs {
		msg.Request, encErr = s.encodeWithRefs(in, refs)
		msg.Refs = s.wire
	} else {
		msg.Request, encErr = in.Encoded()
	}
	if encErr != nil {
		return encErr, nil
	}
	stop := context.AfterFunc(ctx, func() { s.fail(status.FromContextError(ctx.Err()).Err()) })
	err = s.cs.SendMsg(msg)
	stop()
	if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		s.mu.Lock()
		if s.err != nil {
			err = s.err // Broken by fail: say why.
		}
		s.mu.Unlock()
	}
	return nil, err
}

// pushStreamed sends in on c's PushStream, opening it if needed. It
// reports fallback true, with nothing sent, if the ingester has no
// PushStream: the caller then uses the unary Push.
func (c *ingesterClient) pushStreamed(ctx context.Context, tenantID string, in *rawBatch) (resp *arguspb.PushResponse, fallback bool, err error) {
	s, err := c.openStream()
	if err != nil {
		return nil, false, err
	}
	a := s.push(ctx, tenantID, in, c.dict)
	if a.broken && status.Code(a.err) == codes.Unimplemented {
		c.noStream.Store(true)
		return nil, true, nil
	}
	return a.resp, false, a.err
}

// streamHeaderRoom bounds the bytes a PushStreamRequest adds to its
// WriteRequest: the id, the tenant (at most 150 bytes, tenant.Validate) and
// the request's tag and length.
const streamHeaderRoom = 256

// fitsStream reports whether in, sent on the stream, stays within the
// message size both ends accept (see ClientPool.SetMaxMsgSize).
func (c *ingesterClient) fitsStream(in *rawBatch) bool {
	limit := c.maxMsgSize
	if limit <= 0 {
		limit = 4 << 20
	}
	return in.SizeVT()+streamHeaderRoom <= limit
}

// openStream returns c's PushStream, opening a new one if there is none or
// it broke.
func (c *ingesterClient) openStream() (*pushStream, error) {
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	if c.stream != nil && !c.stream.broken() {
		return c.stream, nil
	}
	s, err := openPushStream(c.conn)
	if err != nil {
		return nil, err
	}
	c.stream = s
	return s, nil
}
