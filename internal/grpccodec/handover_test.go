package grpccodec

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// handOver builds got from the series of src as the all-in-one distributor
// does: every label as a string, then the series' encoding for its
// samples, with the counts of src (shifted by extra labels and samples, to
// declare wrong ones).
func handOver(t *testing.T, src *arguspb.WriteRequest, got *arguspb.WriteRequest, extraLabels, extraSamples int) bool {
	t.Helper()
	labels, samples := extraLabels, extraSamples
	for _, ts := range src.Timeseries {
		labels += len(ts.Labels)
		samples += len(ts.Samples)
	}
	var h Handover
	require.True(t, StartHandover(&h, got, len(src.Timeseries), labels, samples))
	for _, ts := range src.Timeseries {
		enc, err := ts.MarshalVT()
		require.NoError(t, err)
		for _, l := range ts.Labels {
			h.Label(l.Name, l.Value)
		}
		h.Samples(enc)
		h.EndSeries()
	}
	return h.Finish()
}

// TestHandover_LikeGenerated: the series of random requests, handed over,
// make what the generated decoder makes of the request; a series with
// anything but labels and samples (exemplars, histograms), or counts
// declared wrong, are refused, leasing nothing.
func TestHandover_LikeGenerated(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	refused := 0
	for k := range 600 {
		src := randomWriteRequest(rnd, 1+rnd.IntN(20))
		src.Metadata = nil
		plain := true // Labels and samples only: the labels are the caller's to check.
		for _, ts := range src.Timeseries {
			plain = plain && len(ts.Exemplars) == 0 && len(ts.Histograms) == 0
		}
		data, err := src.MarshalVT()
		require.NoError(t, err)
		var want arguspb.WriteRequest
		require.NoError(t, want.UnmarshalVTUnsafe(data))

		extraLabels, extraSamples := 0, 0
		switch k % 6 {
		case 4:
			extraLabels = 1 - 2*(k%2)
		case 5:
			extraSamples = 1
		}
		before := leasedCount()
		got := &arguspb.WriteRequest{}
		ok := handOver(t, src, got, extraLabels, extraSamples)
		require.Equal(t, plain && extraLabels == 0 && extraSamples == 0, ok)
		if !ok {
			refused++
			require.Equal(t, before, leasedCount(), "a refused hand-over leases nothing")
			require.Empty(t, got.Timeseries)
			continue
		}
		require.True(t, want.EqualVT(got), "want %v\ngot  %v", &want, got)
		ReleaseWriteRequest(got)
		require.Equal(t, before, leasedCount())
	}
	require.Greater(t, refused, 100)
	var h Handover
	require.False(t, StartHandover(&h, &arguspb.WriteRequest{}, 0, 0, 0), "no series: nothing to hand over")
}
