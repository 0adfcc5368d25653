// Package grpccodec is the gRPC codec of every Argus client and server: it
// marshals generated messages with their vtprotobuf MarshalVT/UnmarshalVT
// methods instead of protobuf reflection.
//
// It is passed explicitly (ServerOption, DialOption) rather than registered
// globally: dependencies register their own "proto" codecs in init functions
// (the OpenTelemetry collector's pdata does, via Prometheus's OTLP code), and
// the winner of that race would otherwise depend on import order.
package grpccodec

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Name is the content-subtype of the codec, the standard one for protobuf.
const Name = "proto"

type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// Codec implements encoding.CodecV2. It is safe for concurrent use.
type Codec struct{}

// Marshal encodes v into a pooled buffer (see pool.go), or returns the
// encoding a PreEncoded message brings.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(PreEncoded); ok {
		return p.Encoded()
	}
	if m, ok := v.(vtMessage); ok {
		size := m.SizeVT()
		if mem.IsBelowBufferPoolingThreshold(size) {
			buf := make([]byte, size)
			if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
				return nil, err
			}
			return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
		}
		buf := marshalPool.Get(size) // Not zeroed: every byte is written (see pool.go).
		if n, err := m.MarshalToSizedBufferVT(*buf); err != nil || n != size {
			marshalPool.Put(buf)
			return nil, marshalError(err, n, size)
		}
		return mem.BufferSlice{mem.NewBuffer(buf, marshalPool)}, nil
	}
	pm, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpccodec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(pm)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal decodes data into v. The message does not alias data, whose
// buffers gRPC reuses once Unmarshal returns.
//
// A WriteRequest (the ingester's Push) is decoded without copying its
// strings: data is copied once into a pooled buffer, and every label name
// and value aliases it, which saves an allocation per label of every push;
// its series, labels and samples are decoded into pooled arrays (see
// writerequest.go). The request is leased (and so is the request of a
// PushStreamRequest, see pushstream.go) that memory until its receiver
// calls ReleaseWriteRequest, after which nothing may read it (see
// writerequest_pool.go); a receiver that keeps a label beyond the request
// (the ingester when it creates a series) copies it.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if s, ok := v.(*symbolisedRequest); ok {
		v = s.req // The IngesterSymbols service's request (symbols_service.go).
	}
	if m, ok := v.(*arguspb.PushStreamRequest); ok {
		return decodePushStream(data, m)
	}
	if m, ok := v.(*arguspb.WriteRequest); ok {
		size := data.Len()
		if size == 0 {
			return nil
		}
		buf := marshalPool.Get(size) // Not zeroed: CopyTo writes every byte.
		data.CopyTo(*buf)
		return decodeLeased(*buf, buf, m)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if m, ok := v.(vtMessage); ok {
		return m.UnmarshalVT(buf.ReadOnlyData())
	}
	pm, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpccodec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(buf.ReadOnlyData(), pm)
}

// Name returns the content-subtype.
func (Codec) Name() string { return Name }

// ServerOption makes a gRPC server use Codec.
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(Codec{}) }

// DialOption makes a gRPC client use Codec.
func DialOption() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.ForceCodecV2(Codec{}))
}
