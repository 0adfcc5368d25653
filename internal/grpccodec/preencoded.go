package grpccodec

import (
	"errors"

	"google.golang.org/grpc/mem"
)

// PreEncoded is a message that brings its own encoding, which Marshal sends
// as is: the distributor encodes a batch of series once and sends the same
// bytes to every ingester whose batch holds the same series.
type PreEncoded interface {
	// Encoded returns the message's encoding with a reference for the
	// caller, which gRPC frees once sent.
	Encoded() (mem.BufferSlice, error)
}

// Encode returns m encoded as Marshal encodes it, with one reference, which
// the caller frees.
func Encode(m interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}) (mem.BufferSlice, error) {
	return Codec{}.Marshal(vtOnly{m})
}

// vtOnly hides every method of a message but its vtprotobuf marshalling.
type vtOnly struct {
	m interface {
		SizeVT() int
		MarshalToSizedBufferVT([]byte) (int, error)
	}
}

func (v vtOnly) SizeVT() int                                  { return v.m.SizeVT() }
func (v vtOnly) MarshalToSizedBufferVT(b []byte) (int, error) { return v.m.MarshalToSizedBufferVT(b) }
func (vtOnly) UnmarshalVT([]byte) error                       { return errors.New("grpccodec: vtOnly is only encoded") }
