package arguspb

import (
	"context"

	"google.golang.org/grpc"
)

// IngesterSymbols is the service of an ingester that takes WriteRequests in
// the symbolised form (internal/grpccodec/symbols.go: remote write 2.0's
// symbol table and label references, resolved by the codec), with the same
// Push as the Ingester service. It is a service of its own rather than a
// field of WriteRequest so that an ingester that does not know the form
// answers Unimplemented: the generated decoder would skip the unknown
// fields and acknowledge a push without its series. Written by hand, not
// generated: it has no message of its own, and argus.proto does not list it
// so that protoc does not generate a second, unused, copy.
const IngesterSymbols_Push_FullMethodName = "/argus.v1.IngesterSymbols/Push"

// RegisterIngesterSymbolsServer registers srv's Push as the IngesterSymbols
// service's.
func RegisterIngesterSymbolsServer(s grpc.ServiceRegistrar, srv IngesterServer) {
	s.RegisterService(&ingesterSymbolsServiceDesc, srv)
}

var ingesterSymbolsServiceDesc = grpc.ServiceDesc{
	ServiceName: "argus.v1.IngesterSymbols",
	HandlerType: (*IngesterServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Push",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(WriteRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(IngesterServer).Push(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: IngesterSymbols_Push_FullMethodName}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(IngesterServer).Push(ctx, req.(*WriteRequest))
			})
		},
	}},
	Metadata: "argus.proto",
}
