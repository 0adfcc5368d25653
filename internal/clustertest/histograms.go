package clustertest

import (
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Native histogram test data, the same remote-write bytes for argus and
// for the real Prometheus's receiver, and queries to compare over it.

// histSteps is the number of 10s steps of NativeHistogramBodies: 30 minutes.
const histSteps = 180

// NativeHistogramBodies generates, for each of histSteps timestamps ending at
// end, one sample of each series: integer and float exponential counter
// histograms with growing buckets, negative buckets, a counter reset and a
// schema change; integer and float custom-bucket (NHCB) counters whose
// bounds change once; an integer gauge histogram; and a series that goes
// from floats to histograms and back. It returns remote-write 1.0 bodies
// of 20 steps each (every series in each), the same bytes for every
// receiver.
func NativeHistogramBodies(t testing.TB, end time.Time) [][]byte {
	t.Helper()
	rnd := rand.New(rand.NewPCG(7, 9))
	start := end.Add(-time.Duration(histSteps-1) * 10 * time.Second).UnixMilli()
	var (
		pos   = make([]uint64, 12)
		neg   = make([]uint64, 2)
		zero  uint64
		sum   float64
		cb    = make([]uint64, 5)
		cbSum float64
	)
	series := map[string]*arguspb.TimeSeries{}
	var order []string
	add := func(name, kind string, ts int64, v *float64, h *histogram.Histogram, fh *histogram.FloatHistogram) {
		key := name + kind
		s, ok := series[key]
		if !ok {
			s = &arguspb.TimeSeries{Labels: []*arguspb.Label{{Name: "__name__", Value: name}, {Name: "kind", Value: kind}}}
			series[key] = s
			order = append(order, key)
		}
		var ph prompb.Histogram
		switch {
		case v != nil:
			s.Samples = append(s.Samples, &arguspb.Sample{TimestampMs: ts, Value: *v})
			return
		case h != nil:
			ph = prompb.FromIntHistogram(ts, h)
		default:
			ph = prompb.FromFloatHistogram(ts, fh)
		}
		b, err := ph.Marshal()
		require.NoError(t, err)
		s.Histograms = append(s.Histograms, b)
	}
	var bodies [][]byte
	for i := range histSteps {
		ts := start + int64(i)*10_000
		if i == 100 { // A counter reset.
			clear(pos)
			clear(neg)
			zero, sum = 0, 0
		}
		if i == 120 { // New custom bounds: a new chunk.
			cb = make([]uint64, 4)
		}
		n := min(len(pos), 3+i/20) // Buckets appear over time: chunks are recoded.
		for j := range pos[:n] {
			pos[j] += uint64(rnd.IntN(4))
		}
		for j := range neg {
			neg[j] += uint64(rnd.IntN(2))
		}
		zero += uint64(rnd.IntN(2))
		sum += rnd.Float64() * 10
		schema := int32(2)
		if i >= 140 {
			schema = 1
		}
		exp := expHist(schema, zero, sum, pos[:n], neg)
		add("push_exp", "int", ts, nil, exp, nil)
		fexp := exp.ToFloat(nil).Mul(0.5)
		add("push_exp", "float", ts, nil, nil, fexp)

		for j := range cb {
			cb[j] += uint64(rnd.IntN(3))
		}
		cbSum += rnd.Float64() * 3
		bounds := []float64{0.1, 0.5, 1, 5}
		if len(cb) == 4 {
			bounds = []float64{0.1, 1, 10}
		}
		nhcb := customHist(cb, bounds, cbSum)
		add("push_nhcb", "int", ts, nil, nhcb, nil)
		add("push_nhcb", "float", ts, nil, nil, nhcb.ToFloat(nil).Mul(0.25))

		gauge := expHist(0, uint64(rnd.IntN(5)), rnd.Float64(), []uint64{uint64(rnd.IntN(9)), uint64(rnd.IntN(9))}, nil)
		gauge.CounterResetHint = histogram.GaugeType
		add("push_gauge", "int", ts, nil, gauge, nil)

		if i >= 60 && i < 120 {
			add("push_mixed", "int", ts, nil, exp, nil)
		} else {
			v := float64(i)
			add("push_mixed", "int", ts, &v, nil, nil)
		}

		if (i+1)%20 == 0 || i == histSteps-1 {
			req := &arguspb.WriteRequest{}
			for _, k := range order {
				req.Timeseries = append(req.Timeseries, series[k])
			}
			b, err := req.MarshalVT()
			require.NoError(t, err)
			bodies = append(bodies, snappy.Encode(nil, b))
			series, order = map[string]*arguspb.TimeSeries{}, nil
		}
	}
	return bodies
}

// expHist is an exponential histogram with cumulative bucket counts pos
// (from index -1) and neg (from index 0).
func expHist(schema int32, zero uint64, sum float64, pos, neg []uint64) *histogram.Histogram {
	h := &histogram.Histogram{Schema: schema, ZeroThreshold: 0.001, ZeroCount: zero, Sum: sum, Count: zero}
	h.PositiveSpans = []histogram.Span{{Offset: -1, Length: uint32(len(pos))}}
	h.PositiveBuckets, h.Count = deltas(pos, h.Count)
	if len(neg) > 0 {
		h.NegativeSpans = []histogram.Span{{Offset: 0, Length: uint32(len(neg))}}
		h.NegativeBuckets, h.Count = deltas(neg, h.Count)
	}
	return h
}

// customHist is a custom-buckets histogram with bucket counts cb (the last
// one +Inf) over bounds.
func customHist(cb []uint64, bounds []float64, sum float64) *histogram.Histogram {
	h := &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Sum: sum, CustomValues: bounds}
	h.PositiveSpans = []histogram.Span{{Offset: 0, Length: uint32(len(cb))}}
	h.PositiveBuckets, h.Count = deltas(cb, 0)
	return h
}

// deltas returns counts as the delta encoding of integer histograms, and
// total plus their sum.
func deltas(counts []uint64, total uint64) ([]int64, uint64) {
	out := make([]int64, len(counts))
	prev := int64(0)
	for i, c := range counts {
		out[i] = int64(c) - prev
		prev = int64(c)
		total += c
	}
	return out, total
}

// APIQuery is one GET of the Prometheus HTTP API: a path under /api/v1
// and its parameters.
type APIQuery struct {
	Path   string
	Params url.Values
}

// NativeHistogramQueries are PromQL queries over the series of
// NativeHistogramBodies ending at end, instant and range, whose answers
// hold histograms.
func NativeHistogramQueries(end time.Time) []APIQuery {
	at := FormatAPITime(end.UnixMilli())
	rng := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {FormatAPITime(end.Add(-24 * time.Minute).UnixMilli())}, "end": {at}, "step": {"60"}}
	}
	inst := func(q string) url.Values { return url.Values{"query": {q}, "time": {at}} }
	out := []APIQuery{
		{"/query", inst(`{__name__=~"push_.+"}[31m]`)},
		{"/query", inst(`{__name__=~"push_.+"}`)},
	}
	for _, q := range []string{
		`histogram_quantile(0.9, rate(push_exp[2m]))`,
		`histogram_quantile(0.5, rate(push_nhcb[2m]))`,
		`histogram_count(increase(push_exp[3m]))`,
		`histogram_sum(rate(push_nhcb[2m]))`,
		`histogram_fraction(0, 1, rate(push_nhcb[2m]))`,
		`histogram_stddev(push_exp)`,
		`sum by (kind) (rate(push_exp[2m]))`,
		`histogram_avg(push_gauge)`,
		`histogram_count(push_gauge)`,
		`rate(push_mixed[2m])`,
		`push_mixed`,
	} {
		out = append(out, APIQuery{"/query", inst(q)}, APIQuery{"/query_range", rng(q)})
	}
	return out
}
