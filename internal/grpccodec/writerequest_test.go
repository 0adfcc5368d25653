package grpccodec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// requireLikeGenerated decodes data with unmarshalWriteRequest and with the
// generated UnmarshalVTUnsafe and requires the same error-ness and, on
// success, equal requests.
func requireLikeGenerated(t testing.TB, data []byte) {
	t.Helper()
	if hasSymbolFields(data) { // Unknown to the generated decoder (see symbols.go).
		requireLikeReference(t, data)
		return
	}
	var want, got arguspb.WriteRequest
	wantErr := want.UnmarshalVTUnsafe(data)
	gotErr := unmarshalWriteRequest(data, &got)
	require.Equal(t, wantErr != nil, gotErr != nil, "generated: %v, unmarshalWriteRequest: %v", wantErr, gotErr)
	if wantErr == nil {
		require.True(t, want.EqualVT(&got), "want %v\ngot  %v", &want, &got)
	}
}

// randomWriteRequest returns n series with 0 to 12 labels (some empty,
// which the encoding leaves out), 0 to 3 samples (some zero) and now and
// then an exemplar, a histogram or metadata.
func randomWriteRequest(rnd *rand.Rand, n int) *arguspb.WriteRequest {
	req := &arguspb.WriteRequest{}
	for i := range n {
		ts := &arguspb.TimeSeries{}
		for j := range rnd.IntN(13) {
			v := fmt.Sprintf("v%d", rnd.IntN(1000))
			if rnd.IntN(20) == 0 {
				v = ""
			}
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: fmt.Sprintf("l%d", j), Value: v})
		}
		for range rnd.IntN(4) {
			s := &arguspb.Sample{Value: float64(rnd.IntN(3)), TimestampMs: int64(rnd.IntN(3)) * 1e12}
			ts.Samples = append(ts.Samples, s)
		}
		switch rnd.IntN(30) {
		case 0:
			ts.Exemplars = [][]byte{{1}}
		case 1:
			ts.Histograms = [][]byte{{2}}
		case 2:
			req.Metadata = append(req.Metadata, []byte{3})
		}
		_ = i
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

func TestUnmarshalWriteRequest_LikeGenerated(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		data, err := randomWriteRequest(rnd, rnd.IntN(20)).MarshalVT()
		require.NoError(t, err)
		requireLikeGenerated(t, data)
		if len(data) > 0 {
			requireLikeGenerated(t, data[:rnd.IntN(len(data))]) // truncated
		}
	}
	label := func(fields ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), cat(fields...))
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	sample := func(fields ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), cat(fields...))
	}
	value := protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), math.Float64bits(2.5))
	ts := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1767323045000)
	wrap := func(series ...[]byte) []byte {
		var b []byte
		for _, s := range series {
			b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), s)
		}
		return b
	}
	name := label(str(1, "__name__"), str(2, "up"))
	for tc, data := range map[string][]byte{
		"empty":                {},
		"plain":                wrap(cat(name, sample(value, ts))),
		"empty series":         wrap(nil, cat(name, sample(value, ts))),
		"samples first":        wrap(cat(sample(ts), name, sample(value))),
		"timestamp first":      wrap(cat(name, sample(ts, value))),
		"value twice":          wrap(cat(name, sample(value, value))),
		"value before name":    wrap(cat(label(str(2, "x"), str(1, "a")), sample(value))),
		"ten-byte timestamp":   wrap(cat(name, sample([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}))),
		"eleven-byte varint":   wrap(cat(name, sample([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}))),
		"long value":           wrap(cat(label(str(1, "a"), str(2, string(make([]byte, 300)))), sample(value))),
		"huge length":          {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"non-minimal tag":      cat([]byte{0x8a, 0x00}, wrap(name)[1:]),
		"metadata":             cat(wrap(name), str(3, "m")),
		"unknown series field": wrap(cat(name, protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))),
		"truncated value":      wrap(cat(name, sample(value[:4]))),
	} {
		t.Run(tc, func(t *testing.T) { requireLikeGenerated(t, data) })
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestUnmarshalWriteRequest_SeriesDoNotShare checks that appending to one
// series' labels or samples cannot overwrite the next series'.
func TestUnmarshalWriteRequest_SeriesDoNotShare(t *testing.T) {
	in := &arguspb.WriteRequest{}
	for i := range 3 {
		in.Timeseries = append(in.Timeseries, &arguspb.TimeSeries{
			Labels:  []*arguspb.Label{{Name: "__name__", Value: fmt.Sprint("m", i)}},
			Samples: []*arguspb.Sample{{Value: float64(i), TimestampMs: int64(i)}},
		})
	}
	data, err := in.MarshalVT()
	require.NoError(t, err)
	var got arguspb.WriteRequest
	require.NoError(t, unmarshalWriteRequest(data, &got))
	got.Timeseries[0].Labels = append(got.Timeseries[0].Labels, &arguspb.Label{Name: "x"})
	got.Timeseries[0].Samples = append(got.Timeseries[0].Samples, &arguspb.Sample{Value: 9})
	require.Equal(t, "m1", got.Timeseries[1].Labels[0].Value)
	require.Equal(t, float64(1), got.Timeseries[1].Samples[0].Value)
}

// TestUnmarshalWriteRequest_Allocations checks that a push of 1000 series
// of 10 labels costs a handful of allocations, not one per object.
func TestUnmarshalWriteRequest_Allocations(t *testing.T) {
	in := &arguspb.WriteRequest{}
	for i := range 1000 {
		ts := &arguspb.TimeSeries{Samples: []*arguspb.Sample{{Value: 1, TimestampMs: int64(i)}}}
		for j := range 10 {
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: fmt.Sprint("l", j), Value: fmt.Sprint("v", i)})
		}
		in.Timeseries = append(in.Timeseries, ts)
	}
	data, err := in.MarshalVT()
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(10, func() {
		var got arguspb.WriteRequest
		if err := unmarshalWriteRequest(data, &got); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 8.0)
}

// FuzzUnmarshalWriteRequest compares unmarshalWriteRequest with the
// generated decoder on arbitrary bytes. Run it with:
//
//	go test -run=^$ -fuzz=FuzzUnmarshalWriteRequest -fuzztime=20s ./internal/grpccodec/
func FuzzUnmarshalWriteRequest(f *testing.F) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		data, err := randomWriteRequest(rnd, rnd.IntN(5)).MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(symbolise(f, randomWriteRequest(rnd, 4), func(i int) bool { return i%2 == 0 }))
	f.Fuzz(func(t *testing.T, data []byte) { requireLikeGenerated(t, data) })
}

// BenchmarkUnmarshalWriteRequest compares decoding a push of 1000 series of
// 10 labels and one sample with the generated decoder and with
// unmarshalWriteRequest:
//
//	go test -run=^$ -bench=UnmarshalWriteRequest -count=6 ./internal/grpccodec/
func BenchmarkUnmarshalWriteRequest(b *testing.B) {
	in := &arguspb.WriteRequest{}
	for i := range 1000 {
		ts := &arguspb.TimeSeries{Samples: []*arguspb.Sample{{Value: float64(i), TimestampMs: 1767323045000}}}
		for j := range 10 {
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: fmt.Sprintf("label_%d", j), Value: fmt.Sprintf("value-%d-%d", j, i)})
		}
		in.Timeseries = append(in.Timeseries, ts)
	}
	data, err := in.MarshalVT()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		decode func([]byte, *arguspb.WriteRequest) error
	}{
		{"generated", func(d []byte, m *arguspb.WriteRequest) error { return m.UnmarshalVTUnsafe(d) }},
		{"arrays", unmarshalWriteRequest},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m arguspb.WriteRequest
				if err := c.decode(data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCodecWriteRequest_Leased checks that a WriteRequest decoded by the
// codec holds a lease until ReleaseWriteRequest, which empties it, and that
// in steady state (decode, release, decode...) decoding allocates nothing:
// the encoded bytes and the arrays come back from their pools.
func TestCodecWriteRequest_Leased(t *testing.T) {
	in := &arguspb.WriteRequest{}
	for i := range 1000 {
		ts := &arguspb.TimeSeries{Samples: []*arguspb.Sample{{Value: 1, TimestampMs: int64(i)}}}
		for j := range 10 {
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: fmt.Sprint("l", j), Value: fmt.Sprint("v", i)})
		}
		in.Timeseries = append(in.Timeseries, ts)
	}
	data, err := in.MarshalVT()
	require.NoError(t, err)
	slice := mem.BufferSlice{mem.SliceBuffer(data)}
	before := leasedCount()

	var got arguspb.WriteRequest
	require.NoError(t, Codec{}.Unmarshal(slice, &got))
	require.True(t, in.EqualVT(&got))
	require.Equal(t, before+1, leasedCount())
	ReleaseWriteRequest(&got)
	require.Nil(t, got.Timeseries)
	require.Equal(t, before, leasedCount())
	ReleaseWriteRequest(&got) // Not leased any more: nothing to do.
	ReleaseWriteRequest(in)   // Never leased.
	require.Equal(t, before, leasedCount())

	allocs := testing.AllocsPerRun(20, func() {
		if err := (Codec{}).Unmarshal(slice, &got); err != nil {
			t.Fatal(err)
		}
		ReleaseWriteRequest(&got)
	})
	require.LessOrEqual(t, allocs, 0.5) // sync.Pool may drop an object at a GC.
	require.Equal(t, before, leasedCount())

	// A malformed request leases nothing.
	require.Error(t, Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x05, 0x01})}, &arguspb.WriteRequest{}))
	require.Equal(t, before, leasedCount())
}
