package distributor

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Pushing to the ingester of the same process. In the all-in-one process
// (-target=all) every push went from the distributor to its own ingester
// through a gRPC client, a loopback TCP connection and the gRPC server: a
// quarter to a third of the process's CPU, of which the ingester's Push was
// under half. LocalClients hands the distributor, for the local ingester's
// address only, a Pusher that calls the ingester's push handler directly.
//
// It answers as the gRPC path does, so that nothing above it (quorum,
// rejections, errors and their err-argus IDs, metrics) can tell them
// apart:
//   - the request is the same bytes the gRPC path would send (rawBatch),
//     decoded by the ingester's own decoder into a buffer the ingester owns:
//     the distributor's buffers are reused once the push is answered, and
//     the ingester keeps no string of a request it has not copied, but a
//     fresh buffer makes that the ingester's business, as over gRPC;
//   - the tenant reaches the ingester as gRPC metadata, the incoming
//     metadata of its context, as the gRPC server would set it;
//   - the size limit of a gRPC message, a context already done, an
//     undecodable request and an error that is no gRPC status give the
//     status codes and messages gRPC gives;
//   - the ingester's instance limits and metrics are in Push itself.

// LocalIngester is the push handler of an ingester in this process;
// *ingester.Ingester satisfies it. The request is Push's: its series, labels
// and samples are in pooled arrays leased to it (UnmarshalWriteRequestOwned),
// which Push hands back (grpccodec.ReleaseWriteRequest) when it returns.
type LocalIngester interface {
	Push(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error)
}

// LocalClients is a ClientFactory that gives the in-process Pusher of the
// local ingester for its address, and the clients of another factory for
// every other address. It is safe for concurrent use.
type LocalClients struct {
	remote ClientFactory
	addr   string
	local  *localPusher
}

// NewLocalClients returns the clients of remote, but for addr (the address
// under which the ring lists the local ingester), pushed to in-process. A
// request is refused, as gRPC refuses it, when its encoding is over
// maxMsgSize bytes (-server.grpc-max-msg-size). The in-process pushes are
// counted in argus_distributor_local_ingester_pushes_total, on reg.
func NewLocalClients(remote ClientFactory, addr string, ing LocalIngester, maxMsgSize int, reg prometheus.Registerer) *LocalClients {
	return &LocalClients{remote: remote, addr: addr, local: &localPusher{
		ing: ing, maxMsgSize: maxMsgSize, remote: remote, addr: addr,
		pushes: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "argus_distributor_local_ingester_pushes_total",
			Help: "Pushes to the ingester of this process made through an in-process call rather than gRPC (-distributor.local-ingester-pushes).",
		}),
	}}
}

// Get returns the local Pusher for the local ingester's address, else the
// remote factory's client.
func (c *LocalClients) Get(addr string) (Pusher, error) {
	if addr == c.addr {
		return c.local, nil
	}
	return c.remote.Get(addr)
}

// localPusher pushes to a LocalIngester; it is a rawPusher. Its other
// calls (UserStats) go over gRPC, to the same ingester.
type localPusher struct {
	ing        LocalIngester
	maxMsgSize int
	pushes     prometheus.Counter
	remote     ClientFactory
	addr       string
}

// UserStats asks the remote factory's client of the local ingester: it is
// rare, and not on the write path.
func (p *localPusher) UserStats(ctx context.Context, in *arguspb.UserStatsRequest, opts ...grpc.CallOption) (*arguspb.UserStatsResponse, error) {
	c, err := p.remote.Get(p.addr)
	if err != nil {
		return nil, err
	}
	s, ok := c.(userStatser)
	if !ok {
		return nil, apierror.Errorf(apierror.Internal, "the client of ingester %s has no UserStats", p.addr)
	}
	return s.UserStats(ctx, in, opts...)
}

type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}

// PushRaw pushes the encoding of the batch in.
func (p *localPusher) PushRaw(ctx context.Context, in *rawBatch, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	return p.push(ctx, in)
}

// Push pushes in, encoded and decoded again so that the ingester shares no
// memory with the caller.
func (p *localPusher) Push(ctx context.Context, in *arguspb.WriteRequest, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	return p.push(ctx, in)
}

func (p *localPusher) push(ctx context.Context, m vtMarshaler) (*arguspb.PushResponse, error) {
	if err := ctx.Err(); err != nil { // As a gRPC call would not start.
		return nil, status.FromContextError(err).Err()
	}
	size := m.SizeVT()
	if size > p.maxMsgSize { // The client's check of MaxCallSendMsgSize.
		return nil, status.Errorf(codes.ResourceExhausted, "trying to send message larger than max (%d vs. %d)", size, p.maxMsgSize)
	}
	// A buffer of its own, never pooled: the request's strings alias it.
	buf := make([]byte, size)
	if n, err := m.MarshalToSizedBufferVT(buf); err != nil || n != size {
		if err == nil {
			err = errors.New("encoded size differs from SizeVT")
		}
		return nil, status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	req := &arguspb.WriteRequest{}
	if err := grpccodec.UnmarshalWriteRequestOwned(buf, req); err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	p.pushes.Inc()
	resp, err := p.ing.Push(metadata.NewIncomingContext(ctx, md), req)
	if err != nil {
		return nil, statusOf(err)
	}
	return resp, nil
}

// statusOf is err as a gRPC client receives a handler's error: a status as
// is, a context error as its code, anything else as codes.Unknown.
func statusOf(err error) error {
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.FromContextError(err).Err()
}
