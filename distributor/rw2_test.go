package distributor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// rw2Series is one series of a test remote-write 2.0 request.
type testRW2Series struct {
	labels     labels.Labels
	samples    []writev2.Sample
	histograms []writev2.Histogram
	exemplars  []testExemplar
	meta       *testMeta
}

type testExemplar struct {
	labels labels.Labels
	value  float64
	ts     int64
}

type testMeta struct {
	typ        model.MetricType
	help, unit string
}

// buildRW2 encodes series as Prometheus's sender does: one symbol table,
// the empty string first.
func buildRW2(t testing.TB, series ...testRW2Series) *writev2.Request {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, s := range series {
		ts := writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(s.labels, nil),
			Samples:    s.samples,
			Histograms: s.histograms,
		}
		for _, e := range s.exemplars {
			ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: st.SymbolizeLabels(e.labels, nil), Value: e.value, Timestamp: e.ts})
		}
		if m := s.meta; m != nil {
			ts.Metadata = writev2.Metadata{Type: writev2.FromMetadataType(m.typ), HelpRef: st.Symbolize(m.help), UnitRef: st.Symbolize(m.unit)}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	return req
}

func marshalRW2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return raw
}

// rw1Of is the remote-write 1.0 request that req means, built with
// Prometheus's own decoding of remote write 2.0 (ToLabels, ToExemplar,
// ToIntHistogram, ToMetadata) and its 1.0 encoders: what translateRW2 must
// produce, metadata once per family.
func rw1Of(t testing.TB, req *writev2.Request) *prompb.WriteRequest {
	t.Helper()
	out := &prompb.WriteRequest{}
	b := labels.NewScratchBuilder(0)
	seen := map[string]bool{}
	for _, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&b, req.Symbols)
		require.NoError(t, err)
		pts := prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}
		for _, s := range ts.Samples {
			pts.Samples = append(pts.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
		}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&b, req.Symbols)
			require.NoError(t, err)
			pts.Exemplars = append(pts.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(ex.Labels, nil), Value: ex.Value, Timestamp: ex.Ts})
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				pts.Histograms = append(pts.Histograms, prompb.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram()))
			} else {
				pts.Histograms = append(pts.Histograms, prompb.FromIntHistogram(h.Timestamp, h.ToIntHistogram()))
			}
		}
		out.Timeseries = append(out.Timeseries, pts)
		m, err := ts.ToMetadata(req.Symbols)
		if err != nil {
			continue // Only with an empty symbol table: reference 0 is then "" for Argus.
		}
		if m.Type == model.MetricTypeUnknown && m.Help == "" && m.Unit == "" {
			continue
		}
		family := familyName(ls.Get(model.MetricNameLabel), uint64(writev2.FromMetadataType(m.Type)))
		if seen[family] {
			continue
		}
		seen[family] = true
		out.Metadata = append(out.Metadata, prompb.MetricMetadata{
			Type: prompb.FromMetadataType(m.Type), MetricFamilyName: family, Help: m.Help, Unit: m.Unit,
		})
	}
	return out
}

// randomRW2 returns n random series of every kind: float samples with and
// without start timestamps, integer and float histograms (custom buckets
// included), exemplars and metadata of every type.
func randomRW2(rng *rand.Rand, n int) []testRW2Series {
	types := []model.MetricType{model.MetricTypeCounter, model.MetricTypeGauge, model.MetricTypeHistogram, model.MetricTypeSummary, model.MetricTypeUnknown, model.MetricTypeInfo}
	suffixes := []string{"", "_bucket", "_sum", "_count", "_total"}
	out := make([]testRW2Series, 0, n)
	for i := range n {
		name := fmt.Sprintf("metric_%d%s", rng.IntN(5), suffixes[rng.IntN(len(suffixes))])
		s := testRW2Series{labels: labels.FromStrings("__name__", name, "job", "j"+strconv.Itoa(rng.IntN(3)), "instance", strconv.Itoa(i), "zone", "ü-"+strconv.Itoa(rng.IntN(2)))}
		for j := range rng.IntN(4) {
			s.samples = append(s.samples, writev2.Sample{Value: rng.NormFloat64() * float64(rng.IntN(3)), Timestamp: int64(1000 + j*15000), StartTimestamp: int64(rng.IntN(2) * 500)})
		}
		for j := range rng.IntN(3) {
			h := &histogram.Histogram{Schema: int32(rng.IntN(4)), Count: 10, Sum: rng.Float64(), ZeroThreshold: 0.001, ZeroCount: 2,
				PositiveSpans: []histogram.Span{{Offset: int32(rng.IntN(3)) - 1, Length: 2}}, PositiveBuckets: []int64{3, 2}}
			switch rng.IntN(3) {
			case 0:
				s.histograms = append(s.histograms, writev2.FromIntHistogram(int64(rng.IntN(2)*100), int64(2000+j*15000), h))
			case 1:
				s.histograms = append(s.histograms, writev2.FromFloatHistogram(0, int64(2000+j*15000), h.ToFloat(nil)))
			default:
				nhcb := &histogram.Histogram{Schema: histogram.CustomBucketsSchema, Count: 4, Sum: 3.5, CustomValues: []float64{0.5, 1, 5},
					PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []int64{1, 1, -1}}
				s.histograms = append(s.histograms, writev2.FromIntHistogram(0, int64(2000+j*15000), nhcb))
			}
		}
		for j := range rng.IntN(3) {
			s.exemplars = append(s.exemplars, testExemplar{labels: labels.FromStrings("trace_id", strconv.Itoa(rng.IntN(1000))), value: float64(j), ts: int64(1000 + j)})
		}
		if rng.IntN(3) > 0 {
			s.meta = &testMeta{typ: types[rng.IntN(len(types))], help: "help of " + name, unit: []string{"", "seconds"}[rng.IntN(2)]}
		}
		out = append(out, s)
	}
	return out
}

// TestTranslateRW2_LikePrometheus checks translateRW2 against Prometheus's
// own decoding of remote write 2.0 over random requests of every kind.
func TestTranslateRW2_LikePrometheus(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	wc := getWriteCtx()
	defer putWriteCtx(wc)
	for range 200 {
		req := buildRW2(t, randomRW2(rng, 1+rng.IntN(20))...)
		wc.reset()
		out, err := wc.translateRW2(marshalRW2(t, req), nil, 1<<30)
		require.NoError(t, err)
		wc.decoded = out
		var got prompb.WriteRequest
		require.NoError(t, got.Unmarshal(out))
		require.Equal(t, wireOf(t, rw1Of(t, req)), wireOf(t, &got))
		require.Zero(t, wc.rej.series)
		requireSeriesLikeUnmarshal(t, wc, out)
	}
}

// requireSeriesLikeUnmarshal checks that the series translateRW2 placed in
// wc are those unmarshalRequest reads from its output out.
func requireSeriesLikeUnmarshal(t testing.TB, wc *writeCtx, out []byte) {
	t.Helper()
	ref := getWriteCtx()
	defer putWriteCtx(ref)
	ref.decoded = append(ref.decoded[:0], out...)
	require.NoError(t, ref.unmarshalRequest(ref.decoded))
	require.Len(t, wc.series, len(ref.series))
	require.Equal(t, ref.metadataReceived, wc.metadataReceived)
	for i := range ref.series {
		w, g := ref.series[i], wc.series[i]
		require.Equal(t, w.raw, g.raw, "series %d", i)
		require.Equal(t, w.ts == nil, g.ts == nil, "series %d: decoded", i)
		if w.ts != nil {
			require.Equal(t, w.ts.String(), g.ts.String())
		} else {
			require.Equal(t, [4]int64{int64(w.hi - w.lo), int64(w.labelsEnd), int64(w.samples), w.maxT},
				[4]int64{int64(g.hi - g.lo), int64(g.labelsEnd), int64(g.samples), g.maxT}, "series %d", i)
		}
		require.Equal(t, formatLabels(ref.labelsOf(i)), formatLabels(wc.labelsOf(i)), "series %d", i)
	}
}

// TestPushHandler_RW2 pushes remote write 2.0 through the handler: what
// reaches the ingester equals the remote-write 1.0 push of the same series,
// and the written headers count what was stored.
func TestPushHandler_RW2(t *testing.T) {
	ls := func(kv ...string) labels.Labels { return labels.FromStrings(kv...) }
	good := testRW2Series{labels: ls("__name__", "up", "job", "x"), samples: []writev2.Sample{{Value: 1, Timestamp: int64(ms(-time.Minute))}, {Value: 0, Timestamp: int64(ms(0)), StartTimestamp: 5}}}
	withExemplar := testRW2Series{labels: ls("__name__", "req_total", "job", "x"), samples: []writev2.Sample{{Value: 7, Timestamp: int64(ms(0))}},
		exemplars: []testExemplar{{labels: ls("trace_id", "abc"), value: 7, ts: int64(ms(0))}}, meta: &testMeta{typ: model.MetricTypeCounter, help: "Requests."}}
	hist := testRW2Series{labels: ls("__name__", "latency", "job", "x"), samples: []writev2.Sample{{Value: 1, Timestamp: int64(ms(0))}},
		histograms: []writev2.Histogram{writev2.FromIntHistogram(0, int64(ms(0)), &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}})}}

	t.Run("valid series, like remote write 1.0", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		w := serve(d.PushHandler(), newRW2Request(t, buildRW2(t, good, withExemplar)))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		requireWritten(t, w, 3, 0, 1)
		d1, ing1 := newSingleIngester(t, testConfig(t), nil)
		reqTotal := series([]string{"__name__", "req_total", "job", "x"}, 7, ms(0))
		reqTotal.Exemplars = [][]byte{marshalExemplar(t, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 7, Timestamp: int64(ms(0))})}
		rw1 := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
			series([]string{"__name__", "up", "job", "x"}, 1, ms(-time.Minute), 0, ms(0)),
			reqTotal,
		}})
		require.Equal(t, http.StatusNoContent, serve(d1.PushHandler(), newPushRequest(rw1)).Code)
		require.Equal(t, ing1.pushed(), ing.pushed())
		require.Empty(t, w.Header().Get("X-Prometheus-Remote-Write-Version"))
	})
	t.Run("remote write 1.0 answers without the headers", func(t *testing.T) {
		d, _ := newSingleIngester(t, testConfig(t), nil)
		w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(0))}})))
		require.Equal(t, http.StatusNoContent, w.Code)
		require.Empty(t, w.Header().Get(headerSamplesWritten))
	})
	t.Run("bad references reject their series only", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		req := buildRW2(t, good, good, good, good)
		req.Timeseries[1].LabelsRefs = append(req.Timeseries[1].LabelsRefs, 1)                    // odd
		req.Timeseries[2].LabelsRefs[3] = 99                                                      // past the table
		req.Timeseries[3].Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{1, 77}, Value: 1}} // exemplar past the table
		w := serve(d.PushHandler(), newRW2Request(t, req))
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "err-argus-rw2-invalid-symbol-reference: tenant \"tenant-a\": 3 series (6 samples) rejected, 2 samples accepted\n"+
			`err-argus-rw2-invalid-symbol-reference: {__name__="up", job="x", __name__=""}: invalid remote write 2.0 symbol reference: 5 label references, an odd number: each label is a name and a value reference`+"\n"+
			`err-argus-rw2-invalid-symbol-reference: {__name__="up", job="<ref 99>"}: invalid remote write 2.0 symbol reference: label reference 99 is past the symbol table of 5 symbols`+"\n"+
			`err-argus-rw2-invalid-symbol-reference: {__name__="up", job="x"}: invalid remote write 2.0 symbol reference: exemplar label reference 77 is past the symbol table of 5 symbols`+"\n",
			w.Body.String())
		requireWritten(t, w, 2, 0, 0)
		require.Equal(t, []string{`{__name__="up", job="x"} 1@1767322985000 0@1767323045000`}, ing.pushed())
	})
	t.Run("a histogram series is stored like remote write 1.0, an invalid one refused", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		w := serve(d.PushHandler(), newRW2Request(t, buildRW2(t, hist, good)))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		requireWritten(t, w, 3, 1, 0)
		d1, ing1 := newSingleIngester(t, testConfig(t), nil)
		latency := series([]string{"__name__", "latency", "job", "x"}, 1, ms(0))
		ph := prompb.FromIntHistogram(int64(ms(0)), &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}})
		hb, err := ph.Marshal()
		require.NoError(t, err)
		latency.Histograms = [][]byte{hb}
		rw1 := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{latency, series([]string{"__name__", "up", "job", "x"}, 1, ms(-time.Minute), 0, ms(0))}})
		require.Equal(t, http.StatusNoContent, serve(d1.PushHandler(), newPushRequest(rw1)).Code)
		require.Equal(t, ing1.pushed(), ing.pushed())
		require.Contains(t, ing.pushed(), `{__name__="latency", job="x"} 1@1767323045000 exemplars=0 histograms=1`)

		// A count that is not the sum of the buckets: the histogram sample is
		// refused, the series' float sample stored.
		bad := hist
		bad.histograms = []writev2.Histogram{writev2.FromIntHistogram(0, int64(ms(0)), &histogram.Histogram{Count: 5, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}})}
		d2, ing2 := newSingleIngester(t, testConfig(t), nil)
		w = serve(d2.PushHandler(), newRW2Request(t, buildRW2(t, bad, good)))
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Contains(t, w.Body.String(), "err-argus-invalid-native-histogram")
		requireWritten(t, w, 3, 0, 0)
		require.Equal(t, []string{`{__name__="latency", job="x"} 1@1767323045000`, `{__name__="up", job="x"} 1@1767322985000 0@1767323045000`}, ing2.pushed())
	})
	for _, c := range []struct {
		rejected                       string
		hist                           bool // the rejected sample is a histogram
		samples, histograms, exemplars int
	}{
		{rejected: "up", samples: 2, exemplars: 1},        // 1 of up's 2 samples, and req_total's with its exemplar.
		{rejected: "req_total", samples: 2, exemplars: 1}, // up's 2; req_total's exemplar was stored (none reported dropped).
		{rejected: "latency", hist: true, samples: 3},     // up's 2 and latency's float; its histogram was refused.
		{rejected: "latency", samples: 2, histograms: 1},  // up's 2 and latency's histogram; its float was refused.
	} {
		t.Run("ingester rejections are not counted written: "+c.rejected, func(t *testing.T) {
			d, ing := newSingleIngester(t, testConfig(t), nil)
			ing.pushFunc = func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
				for _, ts := range req.Timeseries {
					if formatLabels(ts.Labels) == `{__name__="`+c.rejected+`", job="x"}` {
						rs := &arguspb.RejectedSeries{Labels: ts.Labels, Reason: arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, RejectedSamples: 1}
						if c.hist {
							rs.RejectedHistograms = 1
						}
						return &arguspb.PushResponse{RejectedSamples: 1, Rejected: []*arguspb.RejectedSeries{rs}}, nil
					}
				}
				t.Fatalf("%s not pushed", c.rejected)
				return nil, nil
			}
			other := withExemplar
			if c.rejected == "latency" {
				other = hist
			}
			w := serve(d.PushHandler(), newRW2Request(t, buildRW2(t, good, other)))
			require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			requireWritten(t, w, c.samples, c.histograms, c.exemplars)
		})
	}
	t.Run("exemplars an ingester did not store are not counted written", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		ing.pushFunc = func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
			for k, ts := range req.Timeseries {
				if len(ts.Exemplars) > 0 {
					return &arguspb.PushResponse{DroppedExemplars: []*arguspb.ExemplarDrops{{SeriesIndex: int32(k), Dropped: 1}}}, nil
				}
			}
			return &arguspb.PushResponse{}, nil
		}
		w := serve(d.PushHandler(), newRW2Request(t, buildRW2(t, good, withExemplar)))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		requireWritten(t, w, 3, 0, 0)
	})
	t.Run("a first symbol that is not empty fails the request", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		req := buildRW2(t, good)
		req.Symbols[0] = "x"
		w := serve(d.PushHandler(), newRW2Request(t, req))
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Contains(t, w.Body.String(), `err-argus-malformed-request: tenant "tenant-a": decode protobuf: remote write 2.0: the first symbol is "x", the specification requires the empty string`)
		requireWritten(t, w, 0, 0, 0)
		require.Empty(t, ing.pushed())
	})
	t.Run("metadata reaches the ingester once per family", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		var got *arguspb.WriteRequest
		ing.pushFunc = func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
			got = req.CloneVT()
			return &arguspb.PushResponse{}, nil
		}
		b1 := testRW2Series{labels: ls("__name__", "rt_bucket", "le", "1"), samples: []writev2.Sample{{Value: 1, Timestamp: int64(ms(0))}}, meta: &testMeta{typ: model.MetricTypeHistogram, help: "RT.", unit: "seconds"}}
		b2 := b1
		b2.labels = ls("__name__", "rt_count")
		w := serve(d.PushHandler(), newRW2Request(t, buildRW2(t, b1, b2)))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		require.NotNil(t, got)
		require.Len(t, got.Metadata, 1, "one entry for the family rt, not one per series")
		var m prompb.MetricMetadata
		require.NoError(t, m.Unmarshal(got.Metadata[0]))
		require.Equal(t, prompb.MetricMetadata{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "rt", Help: "RT.", Unit: "seconds"}, m)
	})
}

func requireWritten(t *testing.T, w interface{ Header() http.Header }, samples, histograms, exemplars int) {
	t.Helper()
	h := w.Header()
	require.Equal(t, []string{strconv.Itoa(samples), strconv.Itoa(histograms), strconv.Itoa(exemplars)},
		[]string{h.Get(headerSamplesWritten), h.Get(headerHistogramsWritten), h.Get(headerExemplarsWritten)})
}

// newRW2Request returns a remote-write 2.0 push of req.
func newRW2Request(t testing.TB, req *writev2.Request) *http.Request {
	t.Helper()
	return newRW2RequestBody(snappy.Encode(nil, marshalRW2(t, req)))
}

func newRW2RequestBody(body []byte) *http.Request {
	r := newPushRequest(body)
	r.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	r.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	return r
}

// FuzzRW2 feeds raw remote-write 2.0 bodies (before snappy) to the
// translation and to the push handler:
//   - the handler never panics and answers 2xx or 4xx (its fake ingester
//     never fails), and what reaches the ingester holds the invariants of
//     checkPushed;
//   - the translation fails exactly when Prometheus's generated decoder
//     (gogo) fails, but for the empty-first-symbol rule it adds;
//   - when it succeeds without rejecting a series, its output decodes, as
//     remote write 1.0, to what Prometheus's own decoding of the request
//     means (rw1Of), labels compared sorted.
//
// Run it with:
//
//	go test -run=^$ -fuzz=FuzzRW2 -fuzztime=20s ./distributor/
func FuzzRW2(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		f.Add(marshalRW2(f, buildRW2(f, randomRW2(rng, 3)...)))
	}
	f.Add([]byte{})
	cfg := testConfig(f)
	lim := defaultLimits(f)
	lim.MaxRecvMsgSize = 1 << 16

	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > lim.MaxRecvMsgSize {
			return
		}
		d, violation := newCheckingDistributor(t, cfg, lim)
		w := serve(d.PushHandler(), newRW2RequestBody(snappy.Encode(nil, raw)))
		if w.Code/100 != 2 && w.Code/100 != 4 {
			t.Fatalf("status %d, want 2xx or 4xx; body: %s", w.Code, w.Body.String())
		}
		if err := violation(); err != nil {
			t.Fatal(err)
		}

		var req writev2.Request
		gogoErr := req.Unmarshal(raw)
		wc := getWriteCtx()
		defer putWriteCtx(wc)
		wc.rej.reset(10)
		out, err := wc.translateRW2(raw, nil, 1<<30)
		wc.decoded = out
		badFirst := gogoErr == nil && len(req.Symbols) > 0 && req.Symbols[0] != ""
		switch {
		case err == nil && (gogoErr != nil || badFirst):
			t.Fatalf("translation accepted what the generated decoder refuses: %v", gogoErr)
		case err != nil && gogoErr == nil && !badFirst:
			// Stricter than gogo, which reads a packed varint past the end
			// of its field: the canonical encoding of what gogo read must
			// translate.
			wc.reset()
			wc.rej.reset(10)
			if _, err := wc.translateRW2(marshalRW2(t, &req), nil, 1<<30); err != nil {
				t.Fatalf("translation of the canonical encoding failed: %v", err)
			}
			return
		case err != nil:
			return
		}
		requireSeriesLikeUnmarshal(t, wc, out)
		requireSymbolisedLikeTranslated(t, raw, 2, 2)
		if wc.rej.series > 0 {
			return
		}
		var got prompb.WriteRequest
		require.NoError(t, got.Unmarshal(out))
		want := rw1Of(t, &req)
		require.Equal(t, wireOf(t, sortRW1Labels(want)), wireOf(t, sortRW1Labels(&got)))
	})
}

// sortRW1Labels sorts the labels of every series and exemplar of req by name,
// then value, and rebuilds its histograms from their meaning.
func sortRW1Labels(req *prompb.WriteRequest) *prompb.WriteRequest {
	cmp := func(a, b prompb.Label) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		slices.SortFunc(ts.Labels, cmp)
		for j := range ts.Exemplars {
			slices.SortFunc(ts.Exemplars[j].Labels, cmp)
		}
		// A histogram is forwarded as its bytes came, unknown fields
		// included, which decoders skip; compared as what it means.
		for j, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				ts.Histograms[j] = prompb.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram())
			} else {
				ts.Histograms[j] = prompb.FromIntHistogram(h.Timestamp, h.ToIntHistogram())
			}
		}
	}
	return req
}

func wireOf(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return raw
}

// TestTranslateRW2_LongTags translates a request whose symbol fields have
// tags and lengths in more bytes than they need, which protobuf allows: the
// labels, copied with the symbols' length varints, must come out the same.
func TestTranslateRW2_LongTags(t *testing.T) {
	var raw []byte
	for i, sym := range []string{"", "__name__", "up", "job", "x"} {
		switch i % 2 {
		case 1:
			raw = append(raw, 0x22|0x80, 0x00, byte(len(sym))|0x80, 0x00) // tag and length in two bytes each
		default:
			raw = append(raw, 0x22, byte(len(sym)))
		}
		raw = append(raw, sym...)
	}
	series := []byte{0x0a, 4, 1, 2, 3, 4, 0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05}
	raw = append(append(raw, 0x2a, byte(len(series))), series...)
	var req writev2.Request
	require.NoError(t, req.Unmarshal(raw))
	require.Equal(t, []string{"", "__name__", "up", "job", "x"}, req.Symbols)

	wc := getWriteCtx()
	defer putWriteCtx(wc)
	out, err := wc.translateRW2(raw, nil, 1<<20)
	require.NoError(t, err)
	wc.decoded = out
	var got prompb.WriteRequest
	require.NoError(t, got.Unmarshal(out))
	require.Equal(t, wireOf(t, rw1Of(t, &req)), wireOf(t, &got))
	requireSeriesLikeUnmarshal(t, wc, out)
	require.Equal(t, `{__name__="up", job="x"}`, formatLabels(wc.labelsOf(0)))
}
