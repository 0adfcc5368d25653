package querier

import (
	"bytes"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestSeriesDecoder_FieldNumbers(t *testing.T) {
	number := func(m interface{ ProtoReflect() protoreflect.Message }, name protoreflect.Name) protowire.Number {
		f := m.ProtoReflect().Descriptor().Fields().ByName(name)
		require.NotNil(t, f, "field %s", name)
		return f.Number()
	}
	require.Equal(t, number(&arguspb.SeriesResponse{}, "series"), fieldResponseSeries)
	require.Equal(t, number(&arguspb.StreamSeries{}, "labels"), fieldSeriesLabels)
	require.Equal(t, number(&arguspb.StreamSeries{}, "chunks"), fieldSeriesChunks)
	require.Equal(t, number(&arguspb.Label{}, "name"), fieldLabelName)
	require.Equal(t, number(&arguspb.Label{}, "value"), fieldLabelValue)
	require.Equal(t, number(&arguspb.Chunk{}, "min_time_ms"), fieldChunkMinTime)
	require.Equal(t, number(&arguspb.Chunk{}, "max_time_ms"), fieldChunkMaxTime)
	require.Equal(t, number(&arguspb.Chunk{}, "encoding"), fieldChunkEncoding)
	require.Equal(t, number(&arguspb.Chunk{}, "data"), fieldChunkData)
}

func TestSeriesDecoder_AcrossMessages(t *testing.T) {
	s := func(name string, chunks ...*arguspb.Chunk) *arguspb.StreamSeries {
		return &arguspb.StreamSeries{Labels: []*arguspb.Label{{Name: "job", Value: "x"}, {Name: "__name__", Value: name}}, Chunks: chunks}
	}
	msgs := []*arguspb.SeriesResponse{
		{Series: []*arguspb.StreamSeries{s("a", xorChunk(0, 10, emptyXOR), xorChunk(11, 20, []byte{0, 0, 7})), s("b")}},
		{},
		{Series: []*arguspb.StreamSeries{s("c", xorChunk(5, 5, emptyXOR))}},
	}
	var d seriesDecoder
	for _, m := range msgs {
		require.NoError(t, d.decodeResponse(marshal(t, m)))
	}
	require.Equal(t, referenceDecode(msgs), summarize(d.series.slice()))

	// A limit stops within a message.
	d = seriesDecoder{limit: 1}
	require.NoError(t, d.decodeResponse(marshal(t, msgs[0])))
	require.True(t, d.full())
	require.Equal(t, referenceDecode(msgs)[:1], summarize(d.series.slice()))
}

func marshal(t testing.TB, m *arguspb.SeriesResponse) []byte {
	t.Helper()
	b, err := m.MarshalVT()
	require.NoError(t, err)
	return b
}

// decodedSeries is a decoded series in a form to compare.
type decodedSeries struct {
	Labels string
	Chunks []decodedChunk
}

type decodedChunk struct {
	MinT, MaxT int64
	Data       []byte
}

func summarize(ss []fetchedSeries) []decodedSeries {
	var out []decodedSeries
	for _, s := range ss {
		ds := decodedSeries{Labels: s.labels.String()}
		for _, c := range s.chunks {
			ds.Chunks = append(ds.Chunks, decodedChunk{MinT: c.MinTime, MaxT: c.MaxTime, Data: c.Chunk.Bytes()})
		}
		out = append(out, ds)
	}
	return out
}

// referenceDecode is what the decoder must make of msgs, which UnmarshalVT
// decoded and which keep the protocol.
func referenceDecode(msgs []*arguspb.SeriesResponse) []decodedSeries {
	var out []decodedSeries
	for _, m := range msgs {
		for _, s := range m.GetSeries() {
			b := labels.NewScratchBuilder(len(s.GetLabels()))
			for _, l := range s.GetLabels() {
				b.Add(l.GetName(), l.GetValue())
			}
			b.Sort()
			ds := decodedSeries{Labels: b.Labels().String()}
			for _, c := range s.GetChunks() {
				ds.Chunks = append(ds.Chunks, decodedChunk{MinT: c.GetMinTimeMs(), MaxT: c.GetMaxTimeMs(), Data: c.GetData()})
			}
			out = append(out, ds)
		}
	}
	return out
}

// keepsProtocol reports whether msgs, decoded by UnmarshalVT, keep what
// seriesDecoder checks.
func keepsProtocol(msgs []*arguspb.SeriesResponse) bool {
	var prev labels.Labels
	first := true
	for _, m := range msgs {
		for _, s := range m.GetSeries() {
			b := labels.NewScratchBuilder(len(s.GetLabels()))
			for _, l := range s.GetLabels() {
				b.Add(l.GetName(), l.GetValue())
			}
			b.Sort()
			lset := b.Labels()
			if !first && labels.Compare(prev, lset) >= 0 {
				return false
			}
			prev, first = lset, false
			for i, c := range s.GetChunks() {
				if c.GetEncoding() != arguspb.ChunkEncoding_CHUNK_ENCODING_XOR || len(c.GetData()) < 2 ||
					c.GetMinTimeMs() > c.GetMaxTimeMs() || (i > 0 && c.GetMinTimeMs() <= s.GetChunks()[i-1].GetMaxTimeMs()) {
					return false
				}
			}
		}
	}
	return true
}

// FuzzSeriesDecoder checks seriesDecoder against the generated UnmarshalVT:
// what it accepts, UnmarshalVT accepts and decodes to the same series; what
// UnmarshalVT accepts and keeps the protocol, it accepts unless the wire
// format is malformed in a way UnmarshalVT overlooks. The input is split
// into two messages at a fuzzed offset, to cover the checks across messages.
func FuzzSeriesDecoder(f *testing.F) {
	valid := &arguspb.SeriesResponse{Series: []*arguspb.StreamSeries{
		{Labels: []*arguspb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}}, Chunks: []*arguspb.Chunk{
			xorChunk(-5, 10, emptyXOR), xorChunk(11, 1<<40, []byte{0, 1, 2, 3}),
		}},
		{Labels: []*arguspb.Label{{Name: "job", Value: "b"}, {Name: "__name__", Value: "up"}}},
	}}
	b, err := valid.MarshalVT()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, 0)
	f.Add(b, len(b)/2)
	// An unknown field in every message.
	f.Add(protowire.AppendVarint(protowire.AppendTag(bytes.Clone(b), 9, protowire.VarintType), 3), 0)
	f.Add([]byte{0x0a, 0x02, 0x10, 0x01}, 0) // StreamSeries.chunks of the wrong wire type.
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if len(data) > 1<<16 {
			t.Skip()
		}
		split = min(max(split, 0), len(data))
		parts := [][]byte{data[:split], data[split:]}

		var d seriesDecoder
		var ourErr error
		for _, p := range parts {
			if ourErr = d.decodeResponse(bytes.Clone(p)); ourErr != nil {
				require.ErrorIs(t, ourErr, ErrProtocol)
				break
			}
		}
		var msgs []*arguspb.SeriesResponse
		var refErr error
		for _, p := range parts {
			m := &arguspb.SeriesResponse{}
			if refErr = m.UnmarshalVT(p); refErr != nil {
				break
			}
			msgs = append(msgs, m)
		}
		if ourErr == nil {
			require.NoError(t, refErr, "the decoder accepted what UnmarshalVT rejects")
			require.True(t, keepsProtocol(msgs), "the decoder accepted a protocol violation")
			require.Equal(t, referenceDecode(msgs), summarize(d.series.slice()))
		} else if refErr == nil && keepsProtocol(msgs) {
			// protowire is stricter than vtprotobuf's skipping of unknown
			// fields (it checks that groups end with their own field
			// number): only the wire format may be why.
			require.Contains(t, ourErr.Error(), "malformed", "the decoder rejected what UnmarshalVT accepts")
		}
	})
}
