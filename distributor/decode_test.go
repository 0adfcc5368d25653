package distributor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// requireDecodesLikeGenerated checks unmarshalRequest against the generated
// UnmarshalVT on raw: the same error-ness and, on success, the same series
// and metadata (unknown top-level fields are skipped by unmarshalRequest).
// req is reset first, so that a pooled request can be passed.
func requireDecodesLikeGenerated(t testing.TB, raw []byte, req *arguspb.WriteRequest) {
	t.Helper()
	var want arguspb.WriteRequest
	wantErr := want.UnmarshalVT(raw)
	resetDecoded(req)
	gotErr := unmarshalRequest(raw, req, nil)
	if wantErr != nil || gotErr != nil {
		require.Equal(t, wantErr != nil, gotErr != nil, "generated: %v, unmarshalRequest: %v", wantErr, gotErr)
		return
	}
	require.Len(t, req.Timeseries, len(want.Timeseries))
	for i := range want.Timeseries {
		require.True(t, want.Timeseries[i].EqualVT(req.Timeseries[i]), "series %d: want %v, got %v", i, want.Timeseries[i], req.Timeseries[i])
	}
	require.Equal(t, len(want.Metadata), len(req.Metadata))
	for i := range want.Metadata {
		require.Equal(t, want.Metadata[i], req.Metadata[i])
	}
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
	// One pooled request for all, in a fixed order: big first, so that the
	// small ones reuse its series.
	req := &arguspb.WriteRequest{}
	for _, name := range []string{"big", "small", "unknown fields", "empty", "wrong wire type", "truncated", "big",
		"field zero", "end group", "bad series inside", "bad metadata length", "metadata wrong type", "small"} {
		t.Run(name, func(t *testing.T) { requireDecodesLikeGenerated(t, cases[name], req) })
	}
}

func TestResetDecoded_BoundsWhatThePoolKeeps(t *testing.T) {
	req := &arguspb.WriteRequest{}
	for range maxPooledSeries + 5 {
		req.Timeseries = append(req.Timeseries, series([]string{"__name__", "x"}, 1, 2))
	}
	resetDecoded(req)
	require.Empty(t, req.Timeseries)
	require.LessOrEqual(t, cap(req.Timeseries), maxPooledSeries)
	kept := req.Timeseries[:cap(req.Timeseries)]
	require.NotNil(t, kept[0])
	require.Empty(t, kept[0].Labels, "reset")
	require.Positive(t, cap(kept[0].Labels), "capacity kept for reuse")
}
