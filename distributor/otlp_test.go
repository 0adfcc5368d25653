package distributor

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// captureAppendable records, as sampleString lines, what Prometheus's own
// OTLP write handler appends.
type captureAppendable struct {
	mu  sync.Mutex
	got []string // guarded by mu
}

func (c *captureAppendable) AppenderV2(context.Context) storage.AppenderV2 {
	return &captureAppender{c: c}
}

type captureAppender struct {
	c   *captureAppendable
	got []string
}

func (a *captureAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AOptions) (storage.SeriesRef, error) {
	switch {
	case h != nil:
		a.got = append(a.got, sampleString(ls.String(), t, h.ToFloat(nil).String()))
	case fh != nil:
		a.got = append(a.got, sampleString(ls.String(), t, fh.String()))
	default:
		a.got = append(a.got, sampleString(ls.String(), t, fmt.Sprint(v)))
	}
	return 1, nil
}

func (a *captureAppender) Commit() error {
	a.c.mu.Lock()
	a.c.got = append(a.c.got, a.got...)
	a.c.mu.Unlock()
	return nil
}

func (a *captureAppender) Rollback() error { return nil }

func sampleString(ls string, t int64, v string) string { return fmt.Sprintf("%s %d %s", ls, t, v) }

// samplesOf renders the remote-write 1.0 request raw as sampleString lines.
func samplesOf(t testing.TB, raw []byte) []string {
	t.Helper()
	var req prompb.WriteRequest
	require.NoError(t, req.Unmarshal(raw))
	var out []string
	b := labels.NewScratchBuilder(0)
	for _, ts := range req.Timeseries {
		ls := ts.ToLabels(&b, nil).String()
		for _, s := range ts.Samples {
			out = append(out, sampleString(ls, s.Timestamp, fmt.Sprint(s.Value)))
		}
		for _, h := range ts.Histograms {
			out = append(out, sampleString(ls, h.Timestamp, h.ToFloatHistogram().String()))
		}
	}
	return out
}

// otlpTestMetrics returns one export of every kind: a cumulative sum, a gauge,
// an explicit-bucket histogram, an exponential histogram, a summary, a
// delta sum, and resource attributes for target_info, at ts.
func otlpTestMetrics(ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "prod")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("test-scope")
	pts := pcommon.NewTimestampFromTime(ts)
	start := pcommon.NewTimestampFromTime(ts.Add(-time.Minute))

	m := sm.Metrics().AppendEmpty()
	m.SetName("http.server.requests")
	m.SetUnit("{request}")
	m.SetDescription("Requests served.")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, route := range []string{"/a", "/b"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("http.route", route)
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(pts)
		dp.SetIntValue(int64(10 * (i + 1)))
	}

	m = sm.Metrics().AppendEmpty()
	m.SetName("queue.depth")
	g := m.SetEmptyGauge()
	dp := g.DataPoints().AppendEmpty()
	dp.SetTimestamp(pts)
	dp.SetDoubleValue(3.25)

	m = sm.Metrics().AppendEmpty()
	m.SetName("http.server.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := h.DataPoints().AppendEmpty()
	hdp.SetStartTimestamp(start)
	hdp.SetTimestamp(pts)
	hdp.SetCount(6)
	hdp.SetSum(4.5)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 1, 5})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 2, 1})

	m = sm.Metrics().AppendEmpty()
	m.SetName("rpc.latency")
	m.SetUnit("ms")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := eh.DataPoints().AppendEmpty()
	edp.SetStartTimestamp(start)
	edp.SetTimestamp(pts)
	edp.SetScale(2)
	edp.SetCount(7)
	edp.SetSum(21)
	edp.SetZeroCount(1)
	edp.Positive().SetOffset(3)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3})

	m = sm.Metrics().AppendEmpty()
	m.SetName("gc.pause")
	s := m.SetEmptySummary()
	sdp := s.DataPoints().AppendEmpty()
	sdp.SetTimestamp(pts)
	sdp.SetCount(4)
	sdp.SetSum(2)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.4)

	m = sm.Metrics().AppendEmpty()
	m.SetName("bytes.sent")
	ds := m.SetEmptySum()
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ddp := ds.DataPoints().AppendEmpty()
	ddp.SetTimestamp(pts)
	ddp.SetIntValue(100)
	return md
}

// prometheusOTLP returns what Prometheus's own OTLP receiver appends for md.
func prometheusOTLP(t testing.TB, md pmetric.Metrics, otlpCfg config.OTLPConfig) []string {
	t.Helper()
	capt := &captureAppendable{}
	h := remote.NewOTLPWriteHandler(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), capt,
		func() config.Config { return config.Config{OTLPConfig: otlpCfg} }, remote.OTLPOptions{LookbackDelta: 5 * time.Minute})
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/otlp/v1/metrics", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return capt.got
}

// TestTranslateOTLP_LikePrometheus checks the translation of every metric
// kind, under several tenant settings, against what Prometheus's own OTLP
// receiver appends from the same export: the same series, samples and
// histograms (the refused delta sum aside, which Prometheus refuses too).
func TestTranslateOTLP_LikePrometheus(t *testing.T) {
	ts := time.Now().Truncate(time.Millisecond)
	for name, c := range map[string]struct {
		lim func(*limits.Limits)
		cfg config.OTLPConfig
	}{
		"defaults": {},
		"promoted attributes, no suffixes, NHCB, scope": {
			lim: func(l *limits.Limits) {
				l.PromoteOTelResourceAttributes = []string{"k8s.namespace.name"}
				l.OTelTranslationStrategy = "UnderscoreEscapingWithoutSuffixes"
				l.OTelConvertHistogramsToNHCB = true
				l.OTelPromoteScopeMetadata = true
				l.OTelKeepIdentifyingResourceAttributes = true
			},
			cfg: config.OTLPConfig{PromoteResourceAttributes: []string{"k8s.namespace.name"}, TranslationStrategy: "UnderscoreEscapingWithoutSuffixes",
				ConvertHistogramsToNHCB: true, PromoteScopeMetadata: true, KeepIdentifyingResourceAttributes: true},
		},
		"UTF-8 names": {
			lim: func(l *limits.Limits) { l.OTelTranslationStrategy = "NoUTF8EscapingWithSuffixes" },
			cfg: config.OTLPConfig{TranslationStrategy: "NoUTF8EscapingWithSuffixes"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			lim := defaultLimits(t)
			if c.lim != nil {
				c.lim(lim)
			}
			cfg := config.DefaultOTLPConfig
			if c.lim != nil {
				cfg = c.cfg
				cfg.LabelNameUnderscoreSanitization, cfg.LabelNamePreserveMultipleUnderscores = true, true
			}
			// Prometheus refuses a whole request with a delta sum (500).
			md := otlpTestMetrics(ts)
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().RemoveIf(func(m pmetric.Metric) bool { return m.Name() == "bytes.sent" })
			want := prometheusOTLP(t, md, cfg)
			wc := getWriteCtx()
			defer putWriteCtx(wc)
			require.NoError(t, wc.translateOTLP(t.Context(), otlpTestMetrics(ts), lim))
			got := samplesOf(t, wc.decoded)
			slices.Sort(want)
			slices.Sort(got)
			require.Equal(t, want, got)
			require.NotEmpty(t, got)
		})
	}
}

// TestOTLPHandler checks the answers of the OTLP endpoint: the partial
// success of a push with a refused delta sum and an invalid series, protobuf
// and JSON, gzip, and the refusals of a whole request.
func TestOTLPHandler(t *testing.T) {
	ts := testNow.Add(-time.Minute)
	t.Run("partial success, protobuf and gzip", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		_, err := zw.Write(otlpBody(t, otlpTestMetrics(ts), otlpProtobuf))
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		r := newOTLPRequest(zipped.Bytes(), "application/x-protobuf")
		r.Header.Set("Content-Encoding", "gzip")
		w := serve(d.OTLPHandler(), r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, "application/x-protobuf", w.Header().Get("Content-Type"))
		resp := pmetricotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalProto(w.Body.Bytes()))
		// The delta sum's data point only: the exponential histogram is stored.
		require.Equal(t, int64(1), resp.PartialSuccess().RejectedDataPoints())
		msg := resp.PartialSuccess().ErrorMessage()
		require.Contains(t, msg, "err-argus-otlp-delta-temporality: tenant \"tenant-a\": 1 data points refused for their temporality\n"+
			`err-argus-otlp-delta-temporality: "bytes.sent": delta temporality refused under -distributor.otel-native-delta-ingestion=false: send cumulative temporality, or ingest delta as it comes`)
		require.NotContains(t, msg, "rpc_latency_milliseconds")
		pushed := strings.Join(ing.pushed(), "\n")
		tsMs := ts.UnixMilli()
		for _, want := range []string{
			fmt.Sprintf(`{__name__="http_server_requests_total", http_route="/a", instance="pod-1", job="checkout"} 10@%d`, tsMs),
			fmt.Sprintf(`{__name__="queue_depth", instance="pod-1", job="checkout"} 3.25@%d`, tsMs),
			fmt.Sprintf(`{__name__="http_server_duration_seconds_bucket", instance="pod-1", job="checkout", le="+Inf"} 6@%d`, tsMs),
			fmt.Sprintf(`{__name__="target_info", instance="pod-1", job="checkout", k8s_namespace_name="prod"} 1@%d`, tsMs),
			`{__name__="rpc_latency_milliseconds", instance="pod-1", job="checkout"} exemplars=0 histograms=1`,
		} {
			require.Contains(t, pushed, want)
		}
	})
	t.Run("JSON, everything stored", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("up")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(1)
		w := serve(d.OTLPHandler(), newOTLPRequest(otlpBody(t, md, otlpJSON), "application/json"))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.JSONEq(t, `{"partialSuccess":{}}`, w.Body.String())
		require.Equal(t, []string{fmt.Sprintf(`{__name__="up"} 1@%d`, ts.UnixMilli())}, ing.pushed())
	})
	for name, c := range map[string]struct {
		body        []byte
		contentType string
		encoding    string
		method      string
		wantStatus  int
		wantMsg     string
	}{
		"not OTLP":          {body: []byte("garbage"), contentType: "application/x-protobuf", wantStatus: 400, wantMsg: "err-argus-malformed-request: tenant \"tenant-a\": decode OTLP request: "},
		"bad JSON":          {body: []byte("{"), contentType: "application/json", wantStatus: 400, wantMsg: "err-argus-malformed-request"},
		"bad gzip":          {body: []byte("x"), contentType: "application/x-protobuf", encoding: "gzip", wantStatus: 400, wantMsg: "decode OTLP request: gzip: "},
		"snappy":            {body: []byte("x"), contentType: "application/x-protobuf", encoding: "snappy", wantStatus: 415, wantMsg: "err-argus-unsupported-media-type"},
		"text":              {body: []byte("x"), contentType: "text/plain", wantStatus: 415, wantMsg: "expected application/x-protobuf or application/json"},
		"GET":               {contentType: "application/x-protobuf", method: http.MethodGet, wantStatus: 405, wantMsg: "err-argus-method-not-allowed"},
		"over the size cap": {body: make([]byte, 2<<20), contentType: "application/x-protobuf", wantStatus: 400, wantMsg: "err-argus-request-too-large"},
	} {
		t.Run(name, func(t *testing.T) {
			d, ing := newSingleIngester(t, testConfig(t), nil)
			l := defaultLimits(t)
			l.MaxRecvMsgSize = 1 << 20
			d.limits = tenantLimitsMap{def: l}
			r := newOTLPRequest(c.body, c.contentType)
			if c.encoding != "" {
				r.Header.Set("Content-Encoding", c.encoding)
			}
			if c.method != "" {
				r.Method = c.method
			}
			w := serve(d.OTLPHandler(), r)
			require.Equal(t, c.wantStatus, w.Code)
			var st spb.Status
			if c.contentType != "application/json" {
				require.NoError(t, proto.Unmarshal(w.Body.Bytes(), &st))
				require.Contains(t, st.Message, c.wantMsg)
			} else {
				require.Contains(t, w.Body.String(), c.wantMsg)
			}
			require.Empty(t, ing.pushed())
		})
	}
	t.Run("delta ingested natively when the tenant says so", func(t *testing.T) {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		l := defaultLimits(t)
		l.OTelNativeDeltaIngestion = true
		d.limits = tenantLimitsMap{def: l}
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("bytes.sent")
		s := m.SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetIntValue(100)
		w := serve(d.OTLPHandler(), newOTLPRequest(otlpBody(t, md, otlpProtobuf), "application/x-protobuf"))
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, []string{fmt.Sprintf(`{__name__="bytes_sent"} 100@%d`, ts.UnixMilli())}, ing.pushed())
	})
}

// TestOTLPHandler_IngesterRejections checks that samples an ingester refuses
// are counted in the partial success.
func TestOTLPHandler_IngesterRejections(t *testing.T) {
	d, ing := newSingleIngester(t, testConfig(t), nil)
	ing.pushFunc = func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		return &arguspb.PushResponse{RejectedSamples: 1, Rejected: []*arguspb.RejectedSeries{{
			Labels: req.Timeseries[0].Labels, Reason: arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, RejectedSamples: 1, Message: "out of order",
		}}}, nil
	}
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("up")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(testNow))
	dp.SetDoubleValue(1)
	w := serve(d.OTLPHandler(), newOTLPRequest(otlpBody(t, md, otlpProtobuf), "application/x-protobuf"))
	require.Equal(t, http.StatusOK, w.Code)
	resp := pmetricotlp.NewExportResponse()
	require.NoError(t, resp.UnmarshalProto(w.Body.Bytes()))
	require.Equal(t, int64(1), resp.PartialSuccess().RejectedDataPoints())
	require.Equal(t, "err-argus-sample-out-of-order: tenant \"tenant-a\": 1 series (1 samples) rejected, 0 samples accepted\nerr-argus-sample-out-of-order: {__name__=\"up\"}: out of order sample: out of order",
		resp.PartialSuccess().ErrorMessage())
}

func otlpBody(t testing.TB, md pmetric.Metrics, f otlpFormat) []byte {
	t.Helper()
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	var b []byte
	var err error
	if f == otlpJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	require.NoError(t, err)
	return b
}

// newOTLPRequest returns an OTLP push of body with the tenant in its
// context.
func newOTLPRequest(body []byte, contentType string) *http.Request {
	r := newPushRequest(body)
	r.URL.Path = "/otlp/v1/metrics"
	r.Header.Del("Content-Encoding")
	r.Header.Del("X-Prometheus-Remote-Write-Version")
	r.Header.Set("Content-Type", contentType)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// FuzzOTLP feeds raw OTLP bodies, protobuf or JSON, to the OTLP handler: it
// must never panic, must answer 200 or 4xx (its fake ingester never fails),
// and every series that reaches the ingester must hold the invariants of
// checkPushed.
//
// Run it with:
//
//	go test -run=^$ -fuzz=FuzzOTLP -fuzztime=20s ./distributor/
func FuzzOTLP(f *testing.F) {
	md := otlpTestMetrics(testNow)
	f.Add(otlpBody(f, md, otlpProtobuf), false)
	f.Add(otlpBody(f, md, otlpJSON), true)
	f.Add([]byte{}, false)
	cfg := testConfig(f)
	lim := defaultLimits(f)
	lim.MaxRecvMsgSize = 1 << 16

	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		d, violation := newCheckingDistributor(t, cfg, lim)
		ct := "application/x-protobuf"
		if json {
			ct = "application/json"
		}
		w := serve(d.OTLPHandler(), newOTLPRequest(body, ct))
		if w.Code != http.StatusOK && w.Code/100 != 4 {
			t.Fatalf("status %d, want 200 or 4xx; body: %s", w.Code, w.Body.String())
		}
		if err := violation(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOTLPHandler_TargetInfoSpan checks that data points of one resource
// far apart in time, from which Prometheus's translator would make a
// target_info sample every 2.5 minutes between them (200,000 a year), are
// refused at once instead of filling memory (without the bound this test
// takes minutes and gigabytes: 12 million target_info samples).
func TestOTLPHandler_TargetInfoSpan(t *testing.T) {
	d, ing := newSingleIngester(t, testConfig(t), nil)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	rm.Resource().Attributes().PutStr("host.name", "h")
	dps := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
	for _, ts := range []time.Time{time.Unix(0, 0), testNow} {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(1)
	}
	rm.ScopeMetrics().At(0).Metrics().At(0).SetName("up")
	w := serve(d.OTLPHandler(), newOTLPRequest(otlpBody(t, md, otlpProtobuf), "application/x-protobuf"))
	require.Equal(t, http.StatusBadRequest, w.Code)
	var st spb.Status
	require.NoError(t, proto.Unmarshal(w.Body.Bytes(), &st))
	require.Contains(t, st.Message, "err-argus-request-too-large: tenant \"tenant-a\": decoded request too large: its translation makes more than 1002 samples")
	require.Empty(t, ing.pushed())
}

// TestTranslateOTLP_Metadata checks the metadata entries of a translation:
// one per metric family, with Prometheus's type, help and unit.
func TestTranslateOTLP_Metadata(t *testing.T) {
	wc := getWriteCtx()
	defer putWriteCtx(wc)
	require.NoError(t, wc.translateOTLP(t.Context(), otlpTestMetrics(testNow), defaultLimits(t)))
	var req prompb.WriteRequest
	require.NoError(t, req.Unmarshal(wc.decoded))
	var got []string
	for _, m := range req.Metadata {
		got = append(got, fmt.Sprintf("%s %s %q %q", m.MetricFamilyName, m.Type, m.Help, m.Unit))
	}
	require.Equal(t, []string{
		`http_server_requests_total COUNTER "Requests served." ""`,
		`queue_depth GAUGE "" ""`,
		`http_server_duration_seconds HISTOGRAM "" "seconds"`,
		`rpc_latency_milliseconds HISTOGRAM "" "milliseconds"`,
		`gc_pause SUMMARY "" ""`,
		`target_info GAUGE "Target metadata" ""`,
	}, got)
	require.Equal(t, len(got), wc.metadataReceived)
}
