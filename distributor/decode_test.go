package distributor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// requireDecodesLikeGenerated checks writeCtx.unmarshalRequest against the
// generated UnmarshalVT on raw: the same error-ness and, on success, the
// same series (each fast-path series checked by requireScannedLikeGenerated)
// and as many metadata entries (unknown top-level fields are skipped by
// unmarshalRequest). wc is reset first, so that a reused one can be passed.
func requireDecodesLikeGenerated(t testing.TB, raw []byte, wc *writeCtx) {
	t.Helper()
	var want arguspb.WriteRequest
	wantErr := want.UnmarshalVT(raw)
	wc.reset()
	wc.decoded = raw // The label offsets of the fast path point into it.
	gotErr := wc.unmarshalRequest(raw)
	if wantErr != nil || gotErr != nil {
		require.Equal(t, wantErr != nil, gotErr != nil, "generated: %v, unmarshalRequest: %v", wantErr, gotErr)
		return
	}
	require.Len(t, wc.series, len(want.Timeseries))
	for i, w := range want.Timeseries {
		if s := &wc.series[i]; s.ts != nil {
			require.True(t, w.EqualVT(s.ts), "series %d: want %v, got %v", i, w, s.ts)
			continue
		}
		requireScannedLikeGenerated(t, wc, i, w)
	}
	require.Equal(t, len(want.Metadata), wc.metadataReceived)
}

func TestUnmarshalRequest(t *testing.T) {
	marshal := func(req *arguspb.WriteRequest) []byte {
		raw, err := req.MarshalVT()
		require.NoError(t, err)
		return raw
	}
	big := &arguspb.WriteRequest{Metadata: [][]byte{{1, 2}, {}}}
	for i := range 50 {
		ts := series([]string{"__name__", "m", "i", string(rune('a' + i%26))}, float64(i), float64(i))
		ts.Exemplars = [][]byte{{byte(i)}}
		big.Timeseries = append(big.Timeseries, ts)
	}
	small := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "x"}, 1, 2)}}
	unknown := protowire.AppendTag(marshal(small), 7, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 42)
	unknown = protowire.AppendTag(unknown, 8, protowire.Fixed32Type)
	unknown = protowire.AppendFixed32(unknown, 1)
	unknown = protowire.AppendTag(unknown, 9, protowire.StartGroupType)
	unknown = protowire.AppendTag(unknown, 9, protowire.EndGroupType)

	cases := map[string][]byte{
		"empty":               {},
		"big":                 marshal(big),
		"small":               marshal(small),
		"unknown fields":      unknown,
		"wrong wire type":     protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
		"truncated":           marshal(big)[:100],
		"field zero":          {0x00},
		"end group":           protowire.AppendTag(nil, 5, protowire.EndGroupType),
		"bad series inside":   protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0x0a, 0x05}),
		"bad metadata length": {0x1a, 0x05, 0x01},
		"metadata wrong type": protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1),
	}
	// One writeCtx for all, in a fixed order: big first, so that the small
	// ones reuse its series.
	wc := &writeCtx{byAddr: map[string]int{}}
	for _, name := range []string{"big", "small", "unknown fields", "empty", "wrong wire type", "truncated", "big",
		"field zero", "end group", "bad series inside", "bad metadata length", "metadata wrong type", "small"} {
		t.Run(name, func(t *testing.T) { requireDecodesLikeGenerated(t, cases[name], wc) })
	}
}

func TestResetDecoded_BoundsWhatThePoolKeeps(t *testing.T) {
	var all []*arguspb.TimeSeries
	for range maxPooledSeries + 5 {
		all = append(all, series([]string{"__name__", "x"}, 1, 2))
	}
	all = resetDecoded(all)
	require.Empty(t, all)
	require.LessOrEqual(t, cap(all), maxPooledSeries)
	kept := all[:cap(all)]
	require.NotNil(t, kept[0])
	require.Empty(t, kept[0].Labels, "reset")
	require.Positive(t, cap(kept[0].Labels), "capacity kept for reuse")
}
