package grpccodec

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestStreamPushRoundTrip encodes StreamPushes, with and without series
// refs, and checks that both the codec and the generated decoder read back
// exactly the message.
func TestStreamPushRoundTrip(t *testing.T) {
	req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		{Labels: []*arguspb.Label{{Name: "__name__", Value: "up"}}, Samples: []*arguspb.Sample{{Value: 1, TimestampMs: 1000}}},
		{Samples: []*arguspb.Sample{{Value: 2, TimestampMs: 2000}}},
	}}
	for _, refs := range [][]uint64{nil, {1<<1 | 1, 1 << 1}, {0, 300 << 1}} {
		want := &arguspb.PushStreamRequest{Id: 300, Tenant: "tenant-a", SeriesRefs: refs, Request: req}
		data, err := Encode(req)
		require.NoError(t, err)
		p := &StreamPush{ID: want.Id, Tenant: want.Tenant, Refs: refs, Request: data}
		enc, err := Codec{}.Marshal(p)
		require.NoError(t, err)
		raw := enc.Materialize()

		generated := &arguspb.PushStreamRequest{}
		require.NoError(t, generated.UnmarshalVT(raw))
		require.True(t, want.EqualVT(generated), "generated decoder, refs %v", refs)

		got := &arguspb.PushStreamRequest{}
		require.NoError(t, Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, got))
		require.True(t, want.EqualVT(got), "codec, refs %v: %v", refs, got)
		ReleaseWriteRequest(got.Request)
		enc.Free()
	}
}
