package grpccodec

import (
	"encoding/binary"
	"errors"

	"google.golang.org/grpc/mem"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The messages of Ingester/PushStream (see argus.proto). A PushStreamRequest
// is sent as a few bytes of header (its id, its tenant and the tag and
// length of its request) followed by the request's own encoding, which the
// distributor made once for every replica (see PreEncoded): the header is
// the only per-replica encoding. It is decoded as Unmarshal decodes a
// WriteRequest: copied once into pooled memory, the request leased until
// the ingester's Push releases it (writerequest_pool.go).

// Wire bytes of the PushStreamRequest fields.
const (
	tagStreamID      = 1<<3 | 0 // PushStreamRequest.id, varint
	tagStreamTenant  = 2<<3 | 2 // PushStreamRequest.tenant
	tagStreamRequest = 3<<3 | 2 // PushStreamRequest.request
	tagStreamRefs    = 4<<3 | 2 // PushStreamRequest.series_refs, packed varints
)

// StreamPush is a PushStreamRequest whose request is pre-encoded: what the
// distributor sends on a PushStream. Only Codec can encode it.
type StreamPush struct {
	ID     uint64
	Tenant string
	// Refs are the request's series_refs (see argus.proto), or nil. They
	// are read by Encoded only.
	Refs []uint64
	// Request is the encoded WriteRequest with one reference, which the
	// StreamPush hands on to gRPC (Encoded): it is freed once sent, or by
	// Free if it is never sent.
	Request mem.BufferSlice
}

// Encoded returns the header then the request's buffers, and hands the
// request's reference to the caller (gRPC frees it once sent): Encoded is
// called at most once.
func (p *StreamPush) Encoded() (mem.BufferSlice, error) {
	n := p.Request.Len()
	refsLen := 0
	for _, r := range p.Refs {
		refsLen += varintLen(r)
	}
	hdr := make([]byte, 0, 1+binary.MaxVarintLen64+1+binary.MaxVarintLen64+len(p.Tenant)+1+binary.MaxVarintLen64+
		refsLen+1+binary.MaxVarintLen64)
	hdr = append(hdr, tagStreamID)
	hdr = binary.AppendUvarint(hdr, p.ID)
	hdr = append(hdr, tagStreamTenant)
	hdr = binary.AppendUvarint(hdr, uint64(len(p.Tenant)))
	hdr = append(hdr, p.Tenant...)
	if len(p.Refs) > 0 {
		hdr = append(hdr, tagStreamRefs)
		hdr = binary.AppendUvarint(hdr, uint64(refsLen))
		for _, r := range p.Refs {
			hdr = binary.AppendUvarint(hdr, r)
		}
	}
	hdr = append(hdr, tagStreamRequest)
	hdr = binary.AppendUvarint(hdr, uint64(n))
	out := make(mem.BufferSlice, 0, 1+len(p.Request))
	out = append(append(out, mem.SliceBuffer(hdr)), p.Request...)
	p.Request = nil
	return out, nil
}

// varintLen is the length of the varint encoding of x.
func varintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Free drops the request's reference if Encoded was not called.
func (p *StreamPush) Free() {
	if p.Request != nil {
		p.Request.Free()
		p.Request = nil
	}
}

var errStreamPushEncodeOnly = errors.New("grpccodec: a StreamPush is only encoded")

// UnmarshalVT refuses: a StreamPush is only sent.
func (*StreamPush) UnmarshalVT([]byte) error { return errStreamPushEncodeOnly }

// decodePushStream decodes data into m as m.UnmarshalVT would, except that
// m.Request is leased (see writerequest_pool.go): the ingester's Push
// releases it. The tenant is copied. m.Request is never nil.
func decodePushStream(data mem.BufferSlice, m *arguspb.PushStreamRequest) error {
	size := data.Len()
	if size == 0 {
		m.Request = &arguspb.WriteRequest{}
		return nil
	}
	buf := marshalPool.Get(size) // Not zeroed: CopyTo writes every byte.
	data.CopyTo(*buf)
	b := *buf
	reqStart, reqEnd, ok := -1, -1, true
	for i := 0; i < len(b) && ok; {
		switch b[i] {
		case tagStreamID:
			var n int
			if m.Id, n, ok = varintAt(b, i+1); ok {
				i += 1 + n
			}
		case tagStreamRefs:
			var start, end int
			if start, end, ok = lengthAt(b, i+1); ok {
				ok = m.SeriesRefs == nil // Twice would be appended: the generated decoder's job.
				m.SeriesRefs, ok = decodePacked(b[start:end], ok)
				i = end
			}
		case tagStreamTenant, tagStreamRequest:
			var start, end int
			if start, end, ok = lengthAt(b, i+1); ok {
				if b[i] == tagStreamTenant {
					m.Tenant = string(b[start:end])
				} else {
					ok = reqStart < 0 // Twice would be merged: the generated decoder's job.
					reqStart, reqEnd = start, end
				}
				i = end
			}
		default:
			ok = false // Not the encoding StreamPush writes: the generated decoder's job.
		}
	}
	if !ok {
		*m = arguspb.PushStreamRequest{}
		err := m.UnmarshalVT(b)
		marshalPool.Put(buf)
		if err == nil && m.Request == nil {
			m.Request = &arguspb.WriteRequest{}
		}
		return err
	}
	m.Request = &arguspb.WriteRequest{}
	if reqStart < 0 || reqEnd == reqStart {
		marshalPool.Put(buf)
		return nil
	}
	return decodeLeased(b[reqStart:reqEnd], buf, m.Request)
}

// decodePacked decodes b, packed varints, into one new slice, if ok; it
// returns ok false for a malformed b.
func decodePacked(b []byte, ok bool) ([]uint64, bool) {
	if !ok {
		return nil, false
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	out := make([]uint64, 0, n)
	for i := 0; i < len(b); {
		v, l, ok := varintAt(b, i)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		i += l
	}
	return out, true
}
