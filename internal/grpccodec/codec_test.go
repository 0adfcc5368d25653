package grpccodec

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2000} { // below and above gRPC's pooling threshold
		in := &arguspb.WriteRequest{}
		for i := range n {
			in.Timeseries = append(in.Timeseries, &arguspb.TimeSeries{
				Labels:  []*arguspb.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: strings.Repeat("v", i%7)}},
				Samples: []*arguspb.Sample{{Value: float64(i), TimestampMs: int64(i)}},
			})
		}
		data, err := Codec{}.Marshal(in)
		require.NoError(t, err)
		want, err := in.MarshalVT()
		require.NoError(t, err)
		require.Equal(t, want, data.Materialize())

		out := &arguspb.WriteRequest{}
		require.NoError(t, Codec{}.Unmarshal(data, out))
		data.Free()
		require.True(t, in.EqualVT(out))
	}
}

func TestCodecFallsBackToProtoReflection(t *testing.T) {
	data, err := Codec{}.Marshal(wrapperspb.String("x"))
	require.NoError(t, err)
	var out wrapperspb.StringValue
	require.NoError(t, Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data.Materialize())}, &out))
	require.True(t, proto.Equal(wrapperspb.String("x"), &out))

	_, err = Codec{}.Marshal(42)
	require.ErrorContains(t, err, "cannot marshal int")
}

// TestCodecWriteRequestOutlivesData decodes a WriteRequest, which aliases
// its strings, from buffers of a pool (one, which a codec could alias as is,
// and two), then clobbers and frees those buffers, as gRPC may once
// Unmarshal returns: the request must not change.
func TestCodecWriteRequestOutlivesData(t *testing.T) {
	in := &arguspb.WriteRequest{}
	for i := range 50 {
		in.Timeseries = append(in.Timeseries, &arguspb.TimeSeries{
			Labels:  []*arguspb.Label{{Name: "__name__", Value: "metric_" + strings.Repeat("x", i)}, {Name: "job", Value: "node"}},
			Samples: []*arguspb.Sample{{Value: float64(i), TimestampMs: int64(i)}},
		})
	}
	raw, err := in.MarshalVT()
	require.NoError(t, err)
	pool := mem.NewTieredBufferPool(len(raw))
	for _, parts := range [][][]byte{{raw}, {raw[:len(raw)/2], raw[len(raw)/2:]}} {
		var data mem.BufferSlice
		var backing [][]byte
		for _, part := range parts {
			b := pool.Get(len(part))
			copy(*b, part)
			data = append(data, mem.NewBuffer(b, pool))
			backing = append(backing, *b)
		}

		out := &arguspb.WriteRequest{}
		require.NoError(t, Codec{}.Unmarshal(data, out))
		for _, b := range backing {
			for k := range b {
				b[k] = 'X'
			}
		}
		data.Free()
		require.True(t, in.EqualVT(out), "%d buffers: the decoded request changed with the buffers it was decoded from", len(parts))
	}
}
