package grpccodec

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// IngesterSymbols is the service of an ingester that takes WriteRequests in
// the symbolised form (symbols.go), with the same Push as the Ingester
// service. It is a service of its own rather than new fields on
// Ingester/Push so that an ingester that does not know the form answers
// Unimplemented: the generated decoder would skip the unknown fields and
// acknowledge a push without its series. Written by hand rather than
// generated from argus.proto, for the same reason its request is decoded
// into a symbolisedRequest: a server whose codec is not Codec (which alone
// resolves the symbols) fails to decode it instead of dropping its series.
const IngesterSymbols_Push_FullMethodName = "/argus.v1.IngesterSymbols/Push" //nolint:revive // named as the generated ones

// symbolisedRequest is what the IngesterSymbols handler asks the codec to
// decode: not a proto.Message, so that only Codec can.
type symbolisedRequest struct{ req *arguspb.WriteRequest }

// RegisterIngesterSymbolsServer registers srv's Push as the IngesterSymbols
// service's. The server must use Codec (ServerOption).
func RegisterIngesterSymbolsServer(s grpc.ServiceRegistrar, srv arguspb.IngesterServer) {
	s.RegisterService(&ingesterSymbolsServiceDesc, srv)
}

var ingesterSymbolsServiceDesc = grpc.ServiceDesc{
	ServiceName: "argus.v1.IngesterSymbols",
	HandlerType: (*arguspb.IngesterServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Push",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &symbolisedRequest{req: new(arguspb.WriteRequest)}
			if err := dec(in); err != nil {
				return nil, err
			}
			push := func(ctx context.Context, req any) (any, error) {
				return srv.(arguspb.IngesterServer).Push(ctx, req.(*arguspb.WriteRequest))
			}
			if interceptor == nil {
				return push(ctx, in.req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: IngesterSymbols_Push_FullMethodName}
			return interceptor(ctx, in.req, info, push)
		},
	}},
	Metadata: "argus.proto",
}

var errNotSymbolisedCodec = errors.New("grpccodec: a symbolisedRequest is only decoded by Codec")

// UnmarshalVT refuses: Codec.Unmarshal decodes a symbolisedRequest itself.
func (*symbolisedRequest) UnmarshalVT([]byte) error { return errNotSymbolisedCodec }
