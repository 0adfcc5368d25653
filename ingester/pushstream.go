package ingester

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// PushStream serves Ingester/PushStream: every request it receives is one
// Push (with the request's tenant), run in a goroutine of its own as a
// unary Push would be, so that a stream's pushes share the tenant's WAL
// fsyncs as concurrent calls do; each answer is sent as soon as its Push
// returns, under sendMu (gRPC allows one sender at a time).
//
// It returns once the client closes its side (io.EOF) or the stream fails,
// after the answers of every push in flight: a push whose answer cannot be
// sent any more is, to the client, a failed push (it retries it).
func (i *Ingester) PushStream(stream arguspb.Ingester_PushStreamServer) error {
	ctx := stream.Context()
	var (
		sendMu  sync.Mutex
		sendErr error // guarded by sendMu: the first failed Send
		wg      sync.WaitGroup
	)
	defer wg.Wait()
	for {
		req := new(arguspb.PushStreamRequest)
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			// Push releases req.Request; the id and tenant are req's own.
			resp := &arguspb.PushStreamResponse{Id: req.Id}
			var err error
			resp.Response, err = i.Push(tenant.With(ctx, req.Tenant), req.Request)
			if err != nil {
				st := status.Convert(err) // grpcError made it a status.
				resp.Response, resp.ErrorCode, resp.ErrorMessage = nil, uint32(st.Code()), st.Message()
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			if sendErr == nil {
				sendErr = stream.Send(resp)
			}
		})
	}
}
