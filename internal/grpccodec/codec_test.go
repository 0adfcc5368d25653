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
