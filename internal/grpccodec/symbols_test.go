package grpccodec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// symbolise encodes req in the symbolised form, each series of labels and
// samples only symbolised when pick says so, the others as plain series.
func symbolise(t testing.TB, req *arguspb.WriteRequest, pick func(int) bool) []byte {
	t.Helper()
	index := map[string]uint64{"": 0}
	symbols := []string{""}
	ref := func(s string) uint64 {
		r, ok := index[s]
		if !ok {
			r = uint64(len(symbols))
			index[s] = r
			symbols = append(symbols, s)
		}
		return r
	}
	var series [][]byte
	for i, ts := range req.Timeseries {
		if len(ts.Exemplars) > 0 || len(ts.Histograms) > 0 || !pick(i) {
			b, err := ts.MarshalVT()
			require.NoError(t, err)
			series = append(series, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), b))
			continue
		}
		var refs, b []byte
		for _, l := range ts.Labels {
			refs = protowire.AppendVarint(protowire.AppendVarint(refs, ref(l.Name)), ref(l.Value))
		}
		if len(refs) > 0 {
			b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), refs)
		}
		for _, s := range ts.Samples {
			sb, err := s.MarshalVT()
			require.NoError(t, err)
			b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), sb)
		}
		series = append(series, protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), b))
	}
	var out []byte
	for _, s := range symbols {
		out = protowire.AppendString(protowire.AppendTag(out, 4, protowire.BytesType), s)
	}
	for _, s := range series {
		out = append(out, s...)
	}
	for _, m := range req.Metadata {
		out = protowire.AppendBytes(protowire.AppendTag(out, 3, protowire.BytesType), m)
	}
	return out
}

// TestUnmarshalWriteRequest_Symbolised checks that a request in the
// symbolised form decodes to the request it encodes, its series in order.
func TestUnmarshalWriteRequest_Symbolised(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		req := randomWriteRequest(rnd, rnd.IntN(20))
		for _, ts := range req.Timeseries { // Empty values are written as references to "".
			kept := ts.Labels[:0]
			for _, l := range ts.Labels {
				if l.Value != "" {
					kept = append(kept, l)
				}
			}
			ts.Labels = kept
		}
		data := symbolise(t, req, func(int) bool { return rnd.IntN(3) > 0 })
		var got arguspb.WriteRequest
		require.NoError(t, unmarshalWriteRequest(data, &got))
		if len(req.Timeseries) == 0 {
			req.Timeseries = nil
		}
		require.True(t, req.EqualVT(&got), "want %v\ngot  %v", req, &got)
		if len(data) > 0 { // Truncated: as the reference decodes it.
			requireLikeGenerated(t, data[:rnd.IntN(len(data))])
		}
	}
}

func TestUnmarshalWriteRequest_SymbolisedMalformed(t *testing.T) {
	sym := func(s string) []byte { return protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), s) }
	series := func(fields ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), cat(fields...))
	}
	refs := func(r ...uint64) []byte {
		var b []byte
		for _, x := range r {
			b = protowire.AppendVarint(b, x)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), b)
	}
	meta := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{0x08, 0x01})
	for tc, c := range map[string]struct {
		data []byte
		ok   bool
	}{
		"plain":              {cat(sym(""), sym("__name__"), sym("up"), series(refs(1, 2))), true},
		"with metadata":      {cat(sym(""), sym("__name__"), sym("up"), series(refs(1, 2), meta)), true},
		"ref past the table": {cat(sym(""), sym("__name__"), series(refs(1, 2))), false},
		"odd refs":           {cat(sym(""), sym("__name__"), sym("up"), series(refs(1, 2, 1))), false},
		"symbol after":       {cat(sym(""), sym("__name__"), series(refs(1, 0)), sym("up")), false},
		"histogram field":    {cat(sym(""), series(refs(0, 0), protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil))), false},
		"series first":       {cat(series(), sym("")), false},
		"refs split":         {cat(sym(""), sym("a"), sym("b"), series(refs(1), refs(2))), true},
	} {
		t.Run(tc, func(t *testing.T) {
			var got arguspb.WriteRequest
			err := unmarshalWriteRequest(c.data, &got)
			require.Equal(t, c.ok, err == nil, "%v", err)
			requireLikeReference(t, c.data)
		})
	}
}

// hasSymbolFields is the codec's own test of which requests are not the
// generated decoder's to decode.
func hasSymbolFields(data []byte) bool { return hasSymbolisedFields(data) }

// requireLikeReference decodes data, which has symbol fields, with
// unmarshalWriteRequest and with referenceSymbolised and requires the same
// error-ness and, on success, equal requests.
func requireLikeReference(t testing.TB, data []byte) {
	t.Helper()
	want, wantErr := referenceSymbolised(data)
	var got arguspb.WriteRequest
	gotErr := unmarshalWriteRequest(data, &got)
	require.Equal(t, wantErr != nil, gotErr != nil, "reference: %v, unmarshalWriteRequest: %v", wantErr, gotErr)
	if wantErr == nil {
		require.True(t, want.EqualVT(&got), "want %v\ngot  %v", want, &got)
	}
}

// referenceSymbolised decodes a request of the symbolised form with
// protowire and the generated decoders, field by field, as its doc
// (symbols.go) states the form: slow and plain, for comparison.
func referenceSymbolised(data []byte) (*arguspb.WriteRequest, error) {
	m := &arguspb.WriteRequest{}
	var symbols []string
	seenSeries := false
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 || n > 1 || typ != protowire.BytesType { // Fields of one-byte tags, length-delimited.
			return nil, errSymbolised
		}
		b, k := protowire.ConsumeBytes(data[n:])
		if k < 0 {
			return nil, errSymbolised
		}
		data = data[n+k:]
		switch num {
		case 1:
			ts := &arguspb.TimeSeries{}
			if err := ts.UnmarshalVT(b); err != nil {
				return nil, errSymbolised
			}
			m.Timeseries = append(m.Timeseries, ts)
		case 3:
			m.Metadata = append(m.Metadata, b)
		case 4:
			if seenSeries {
				return nil, errSymbolised
			}
			symbols = append(symbols, string(b))
		case 5:
			seenSeries = true
			ts, err := referenceSeries(b, symbols)
			if err != nil {
				return nil, err
			}
			m.Timeseries = append(m.Timeseries, ts)
		default:
			return nil, errSymbolised
		}
	}
	return m, nil
}

func referenceSeries(b []byte, symbols []string) (*arguspb.TimeSeries, error) {
	ts := &arguspb.TimeSeries{}
	var refs []uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n != 1 || typ != protowire.BytesType {
			return nil, errSymbolised
		}
		v, k := protowire.ConsumeBytes(b[n:])
		if k < 0 {
			return nil, errSymbolised
		}
		b = b[n+k:]
		switch num {
		case 1:
			for j := 0; j < len(v); {
				r, k, ok := varintAt(v, j) // The generated decoders' varints: 64 bits of at most ten bytes.
				if !ok || r >= uint64(len(symbols)) {
					return nil, errSymbolised
				}
				refs = append(refs, r)
				j += k
			}
		case 2:
			s, err := referenceSample(v)
			if err != nil {
				return nil, err
			}
			ts.Samples = append(ts.Samples, s)
		case 5:
		default:
			return nil, errSymbolised
		}
	}
	if len(refs)%2 != 0 {
		return nil, errSymbolised
	}
	for i := 0; i < len(refs); i += 2 {
		ts.Labels = append(ts.Labels, &arguspb.Label{Name: symbols[refs[i]], Value: symbols[refs[i+1]]})
	}
	return ts, nil
}

// referenceSample decodes a Sample of at most one value and one timestamp
// field, as the symbolised form requires.
func referenceSample(b []byte) (*arguspb.Sample, error) {
	s := &arguspb.Sample{}
	var seenValue, seenTime bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		switch {
		case n == 1 && num == 1 && typ == protowire.Fixed64Type && !seenValue:
			v, k := protowire.ConsumeFixed64(b[n:])
			if k < 0 {
				return nil, errSymbolised
			}
			s.Value, seenValue = math.Float64frombits(v), true
			b = b[n+k:]
		case n == 1 && num == 2 && typ == protowire.VarintType && !seenTime:
			v, k, ok := varintAt(b, n)
			if !ok {
				return nil, errSymbolised
			}
			s.TimestampMs, seenTime = int64(v), true
			b = b[n+k:]
		default:
			return nil, errSymbolised
		}
	}
	return s, nil
}
