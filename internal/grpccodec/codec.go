// Package grpccodec installs the gRPC codec every Argus process uses: the
// vtprotobuf codec, which marshals generated messages with their fast
// MarshalVT/UnmarshalVT methods instead of protobuf reflection.
package grpccodec

import (
	vtgrpc "github.com/planetscale/vtprotobuf/codec/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // Registered first, so that ours replaces it.
)

func init() {
	encoding.RegisterCodec(vtgrpc.Codec{})
}
