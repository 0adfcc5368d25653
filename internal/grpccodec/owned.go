package grpccodec

import "github.com/argus-tsdb/argus/proto/arguspb"

// UnmarshalWriteRequestOwned decodes data into m, which must be empty, as
// Codec.Unmarshal decodes a received WriteRequest, but without copying data
// first: the caller hands data over. Every string of m aliases data, so
// nothing may write to data afterwards; the distributor's in-process push to
// its own ingester encodes each request into a fresh buffer for this. The
// series, labels and samples are in pooled arrays, leased to m until
// ReleaseWriteRequest(m) as for Codec.Unmarshal; data stays the caller's.
func UnmarshalWriteRequestOwned(data []byte, m *arguspb.WriteRequest) error {
	return decodeLeased(data, nil, m)
}
