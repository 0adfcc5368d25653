package grpccodec

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestDecodeSeriesLeased_LikeGenerated: the series of random requests,
// handed over one encoding per series, decode to what the generated decoder
// makes of the request, or are refused (leasing nothing) when a series is
// not in the plain encoding (as the request's decoder would leave it to
// the generated one).
func TestDecodeSeriesLeased_LikeGenerated(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	for range 500 {
		src := randomWriteRequest(rnd, 1+rnd.IntN(20))
		src.Metadata = nil
		var series [][]byte
		var plain = true
		for _, ts := range src.Timeseries {
			b, err := ts.MarshalVT()
			require.NoError(t, err)
			series = append(series, b)
			var n counts // The plain encoding: no exemplar, histogram or empty label value.
			plain = plain && n.countSeries(b)
		}
		data, err := src.MarshalVT()
		require.NoError(t, err)
		var want arguspb.WriteRequest
		require.NoError(t, want.UnmarshalVTUnsafe(data))

		before := leasedCount()
		got := &arguspb.WriteRequest{}
		ok := DecodeSeriesLeased(series, got)
		require.Equal(t, plain, ok)
		if !ok {
			require.Equal(t, before, leasedCount(), "a refused hand-over leases nothing")
			require.Empty(t, got.Timeseries)
			continue
		}
		require.True(t, want.EqualVT(got), "want %v\ngot  %v", &want, got)
		ReleaseWriteRequest(got)
		require.Equal(t, before, leasedCount())
	}
	require.False(t, DecodeSeriesLeased(nil, &arguspb.WriteRequest{}), "no series: nothing to hand over")
}
