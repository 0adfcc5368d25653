package distributor

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// testHistogram is a valid integer histogram of 5 observations.
func testHistogram() *histogram.Histogram {
	return &histogram.Histogram{
		Schema: 1, Count: 5, Sum: 12.5, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveBuckets: []int64{1, 1, -1}, // 1, 2, 1
	}
}

// testNHCB is a valid custom-buckets histogram of 5 observations.
func testNHCB() *histogram.Histogram {
	return &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 5, Sum: 7,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []int64{1, 1, 0}, // 1, 2, 2
		CustomValues:    []float64{0.5, 1, 2},
	}
}

func marshalHistogram(t testing.TB, ph prompb.Histogram) []byte {
	t.Helper()
	b, err := ph.Marshal()
	require.NoError(t, err)
	return b
}

func intHist(t testing.TB, ts int64, h *histogram.Histogram) []byte {
	return marshalHistogram(t, prompb.FromIntHistogram(ts, h))
}

func floatHist(t testing.TB, ts int64, fh *histogram.FloatHistogram) []byte {
	return marshalHistogram(t, prompb.FromFloatHistogram(ts, fh))
}

func TestCheckHistograms(t *testing.T) {
	v := newSeriesValidator(testNow, defaultLimits(t))
	now := testNow.UnixMilli()
	mutate := func(f func(h *histogram.Histogram)) *histogram.Histogram {
		h := testHistogram()
		f(h)
		return h
	}
	nhcbWith := func(f func(h *histogram.Histogram)) *histogram.Histogram {
		h := testNHCB()
		f(h)
		return h
	}
	nanSum := mutate(func(h *histogram.Histogram) { h.Sum = math.NaN(); h.Count = 7 })
	highRes := &histogram.Histogram{ // Schema 10 (reserved): reduced to 8 first, as Prometheus does.
		Schema: 10, Count: 2, Sum: 3,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0},
	}
	cases := []struct {
		name        string
		hists       [][]byte
		floats      int // float samples of the series, all valid
		wantValid   int // histograms kept
		wantErr     error
		wantSamples int
		wantPartial bool
		wantDetail  string
	}{
		{name: "integer", hists: [][]byte{intHist(t, now, testHistogram())}, wantValid: 1},
		{name: "float", hists: [][]byte{floatHist(t, now, testHistogram().ToFloat(nil))}, wantValid: 1},
		{name: "custom buckets", hists: [][]byte{intHist(t, now, testNHCB()), floatHist(t, now+1, testNHCB().ToFloat(nil))}, wantValid: 2},
		{name: "NaN sum, count above the buckets", hists: [][]byte{intHist(t, now, nanSum)}, wantValid: 1},
		{name: "schema 10 reduced", hists: [][]byte{intHist(t, now, highRes)}, wantValid: 1},
		{
			name: "count not the sum of buckets", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.Count = 9 })), intHist(t, now+1, testHistogram())},
			wantValid: 1, wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantPartial: true, wantDetail: "5 observations found in buckets, but the Count field is 9",
		},
		{
			name: "spans do not match buckets", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.PositiveSpans[1].Length = 3 }))}, floats: 1,
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantPartial: true, wantDetail: "spans need 5 buckets, have 3 buckets",
		},
		{
			name: "negative bucket", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.PositiveBuckets = []int64{1, -2, 3} }))},
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantDetail: "negative",
		},
		{
			name: "invalid schema", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.Schema = -7 }))},
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantDetail: "invalid schema",
		},
		{
			name: "unknown schema", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.Schema = 60 }))},
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantDetail: "unknown schema",
		},
		{
			name: "custom bounds not increasing", hists: [][]byte{intHist(t, now, nhcbWith(func(h *histogram.Histogram) { h.CustomValues = []float64{1, 0.5, 2} }))},
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantDetail: "custom buckets",
		},
		{
			name: "custom bounds on an exponential schema", hists: [][]byte{intHist(t, now, mutate(func(h *histogram.Histogram) { h.CustomValues = []float64{1} }))},
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantDetail: "custom",
		},
		{
			name: "does not decode", hists: [][]byte{{0xff, 0xff}, intHist(t, now, testHistogram())},
			wantValid: 1, wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantPartial: true, wantDetail: "malformed histogram",
		},
		{
			name: "too far in the future", hists: [][]byte{intHist(t, now, testHistogram()), intHist(t, now+time.Hour.Milliseconds(), testHistogram())},
			wantValid: 1, wantErr: ErrTooFarInFuture, wantSamples: 1, wantPartial: true,
		},
		{
			name: "invalid and in the future", hists: [][]byte{{0xff}, intHist(t, now+time.Hour.Milliseconds(), testHistogram())}, floats: 1,
			wantErr: ErrInvalidNativeHistogram, wantSamples: 2, wantPartial: true, wantDetail: "too far in the future",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := series([]string{"__name__", "h"})
			for i := range c.floats {
				ts.Samples = append(ts.Samples, &arguspb.Sample{Value: 1, TimestampMs: now - int64(i) - 100})
			}
			ts.Histograms = c.hists
			valid := make([][]byte, 0, len(c.hists))
			serr := v.validate(ts)
			if c.wantErr == nil {
				require.Nil(t, serr)
				require.Len(t, ts.Histograms, c.wantValid)
				return
			}
			require.NotNil(t, serr)
			require.ErrorIs(t, serr, c.wantErr)
			require.Equal(t, c.wantSamples, serr.samples)
			require.Equal(t, c.wantPartial, serr.partial)
			require.Contains(t, serr.Error(), c.wantDetail)
			require.Len(t, ts.Histograms, c.wantValid)
			for _, b := range ts.Histograms {
				_, err := validateHistogram(b)
				require.NoError(t, err)
				valid = append(valid, b)
			}
			require.Len(t, valid, c.wantValid)
		})
	}
}
