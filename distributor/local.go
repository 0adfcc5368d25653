package distributor

import (
	"context"
	"errors"
	"unsafe"

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
//   - the request is the series the gRPC path would send (rawBatch), in
//     the pooled arrays the ingester's gRPC decoder gives it. A batch of
//     plain series validation left as they came, nearly every one, is
//     built from what the distributor's scan read (grpccodec.Handover: the
//     labels as strings aliasing the push's body, the samples from the
//     series' raw bytes), with no protobuf pass over the labels; the body
//     stays unchanged until every ingester push of the request has
//     returned, and the
//     ingester keeps no string of a request it has not copied. Any other
//     batch is encoded as gRPC would send it, into a fresh buffer, and
//     decoded by the ingester's own decoder (UnmarshalWriteRequestOwned).
//     Before 2026-12-05 every batch took that second path: an encoding and
//     a zeroed buffer per push for nothing;
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

// PushRaw pushes the batch in: handed over as it is held (handOver) when
// it can be, else encoded and decoded again.
func (p *localPusher) PushRaw(ctx context.Context, in *rawBatch, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	if err := ctx.Err(); err != nil { // As a gRPC call would not start.
		return nil, status.FromContextError(err).Err()
	}
	if req := p.handOver(in); req != nil {
		return p.pushDecoded(ctx, req)
	}
	return p.push(ctx, in)
}

// handOver returns the request of in built from what the distributor read
// of its series (grpccodec.Handover: the labels as the scan found them, the
// samples from the series' raw bytes), or nil when in holds anything but
// plain series validation left as they came (metadata, symbolised series,
// series validation changed, exemplars, histograms) or is over the size
// limit: those take the encode-and-decode path, which answers for them as
// gRPC does. The request's strings alias the push's decoded body, which the
// distributor keeps unchanged until every ingester push of the request has
// returned (writeCtx); the ingester keeps nothing of the request past Push
// (ingester/doc.go, "Request memory"), as over gRPC.
func (p *localPusher) handOver(in *rawBatch) *arguspb.WriteRequest {
	if len(in.b.meta) > 0 || in.symbolised() || len(in.b.series) == 0 {
		return nil
	}
	wc := in.wc
	size, labels, samples := 0, 0, 0
	for _, i := range in.b.series {
		s := &wc.series[i]
		if s.raw == nil || s.symbolised {
			return nil
		}
		size += 1 + sizeOfVarint(uint64(len(s.raw))) + len(s.raw)
		labels += s.numLabels()
		samples += int(s.samples)
	}
	if size > p.maxMsgSize {
		return nil
	}
	req := &arguspb.WriteRequest{}
	var h grpccodec.Handover
	if !grpccodec.StartHandover(&h, req, len(in.b.series), labels, samples) {
		return nil
	}
	for _, i := range in.b.series {
		s := &wc.series[i]
		if s.ts != nil { // Decoded by the generated code, unchanged: its labels alias raw.
			for _, l := range s.ts.Labels {
				h.Label(l.Name, l.Value)
			}
		} else {
			for _, l := range wc.labels[s.lo:s.hi] {
				h.Label(aliasString(wc.lbuf[l.nameOff:l.nameEnd]), aliasString(wc.lbuf[l.valueOff:l.valueEnd]))
			}
		}
		h.Samples(s.raw)
		h.EndSeries()
	}
	if !h.Finish() {
		return nil
	}
	return req
}

// numLabels is the number of labels of s.
func (s *seriesRef) numLabels() int {
	if s.ts != nil {
		return len(s.ts.Labels)
	}
	return int(s.hi - s.lo)
}

// aliasString returns b as a string sharing its memory: b must not change
// while the string is used.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
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
	return p.pushDecoded(ctx, req)
}

// pushDecoded pushes req, leased (grpccodec.ReleaseWriteRequest, which the
// ingester's Push calls), to the local ingester with the tenant of ctx.
func (p *localPusher) pushDecoded(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
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
