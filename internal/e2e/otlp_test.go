package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestOTLPAgainstPrometheus exports the same OpenTelemetry SDK collections,
// with the SDK's own OTLP/HTTP exporter (otlpmetrichttp), to argus (Mimir's
// path, gzip) and to the real Prometheus 3.16's OTLP receiver
// (--web.enable-otlp-receiver): a monotonic and an up-down sum, a gauge, an
// explicit-bucket histogram and an exponential histogram, from a resource
// with service and Kubernetes attributes. Argus stores every point (no
// partial success), and the series both store (classic histogram series,
// the exponential histogram as a native histogram, and target_info) must
// be identical, sample for sample.
func TestOTLPAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "otel"
	a := clustertest.StartArgus(t, clustertest.Options{})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, Flags: []string{"--web.enable-otlp-receiver"}})
	ctx := t.Context()

	reader := sdkmetric.NewManualReader()
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"), attribute.String("service.instance.id", "pod-1"),
		attribute.String("k8s.namespace.name", "prod"), attribute.String("host.name", "node-7"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.latency"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	meter := mp.Meter("test-scope")
	requests, err := meter.Int64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	require.NoError(t, err)
	inflight, err := meter.Float64UpDownCounter("http.server.active_requests")
	require.NoError(t, err)
	depth, err := meter.Float64Gauge("queue.depth", metric.WithUnit("By"))
	require.NoError(t, err)
	duration, err := meter.Float64Histogram("http.server.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.05, 0.5, 2))
	require.NoError(t, err)
	latency, err := meter.Float64Histogram("rpc.latency", metric.WithUnit("ms"))
	require.NoError(t, err)

	toArgus, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(a.URL()+"/otlp/v1/metrics"),
		otlpmetrichttp.WithHeaders(map[string]string{clustertest.TenantHeader: tenant}), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	require.NoError(t, err)
	toProm, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(p.URL()+"/api/v1/otlp/v1/metrics"))
	require.NoError(t, err)

	start := time.Now()
	const rounds = 6
	for i := range rounds {
		for j, route := range []string{"/", "/cart", "/pay"} {
			attrs := metric.WithAttributes(attribute.String("http.route", route))
			requests.Add(ctx, int64(1+i*j), attrs)
			duration.Record(ctx, 0.01*float64(1+(i*7+j)%300), attrs)
			latency.Record(ctx, float64(1+(i*13+j*5)%97), attrs)
		}
		inflight.Add(ctx, float64(i%3)-1)
		depth.Record(ctx, float64(i*i%11), metric.WithAttributes(attribute.String("queue", "orders")))
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(ctx, &rm))
		require.NoError(t, exportAll(ctx, toProm, &rm))
		require.NoError(t, exportAll(ctx, toArgus, &rm))
		time.Sleep(time.Second) // A new timestamp for each collection: the SDK stamps it now.
	}
	end := time.Now().Add(time.Second)

	at := clustertest.FormatAPITime(end.UnixMilli())
	window := int(end.Sub(start).Seconds()) + 2
	raw := url.Values{"query": {fmt.Sprintf(`{__name__=~".+"}[%ds]`, window)}, "time": {at}}
	var series, samples int
	clustertest.Eventually(t, func() string {
		var d string
		d, series, samples = clustertest.DiffRaw(t, p, a, tenant, raw)
		return d
	}, 30*time.Second)
	t.Logf("raw samples identical: %d series, %d samples", series, samples)
	// 3 request counters, 1 up-down sum, 1 gauge, 3 × (4 buckets + sum +
	// count) classic histogram series, target_info; and 3 native histogram
	// series, whose samples (compared above) samples does not count.
	require.Equal(t, 3+1+1+3*6+1+3, series)
	// One float sample per series and round, target_info aside: the OTLP
	// translation (Prometheus's, which Argus shares) stamps it at both the
	// earliest and the latest point time of a request, and a collection
	// that straddles a millisecond gives it one more, in both servers alike
	// (compared above).
	others := url.Values{"query": {fmt.Sprintf(`{__name__=~".+", __name__!="target_info"}[%ds]`, window)}, "time": {at}}
	d, otherSeries, otherSamples := clustertest.DiffRaw(t, p, a, tenant, others)
	require.Empty(t, d)
	require.Equal(t, series-1, otherSeries)
	require.Equal(t, (otherSeries-3)*rounds, otherSamples)
	t.Logf("target_info: %d samples for %d rounds", samples-otherSamples, rounds)

	for _, q := range []string{
		`sum by (http_route) (http_server_requests_total)`,
		`histogram_quantile(0.5, sum by (le) (http_server_duration_seconds_bucket))`,
		`target_info`,
		`queue_depth_bytes * on (job, instance) group_left (k8s_namespace_name) target_info`,
		`histogram_quantile(0.5, sum by (http_route) (rpc_latency_milliseconds))`,
		`histogram_count(rpc_latency_milliseconds)`,
		fmt.Sprintf(`count_over_time(rpc_latency_milliseconds[%ds]) == %d`, window, rounds),
	} {
		d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query", url.Values{"query": {q}, "time": {at}}, true)
		require.Empty(t, d, "%s (-prometheus +argus)", q)
		require.Positive(t, n, q)
	}
}

// exportAll exports rm with exp. An exporter keeps no state between
// exports: the two servers get the same requests.
func exportAll(ctx context.Context, exp sdkmetric.Exporter, rm *metricdata.ResourceMetrics) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exp.Export(ctx, rm)
}

// otlpPush returns a TestErrorContract request: md as OTLP protobuf to p's
// /otlp/v1/metrics for tenant.
func otlpPush(p *clustertest.Process, tenant string, md pmetric.Metrics) func(*testing.T) (int, string, http.Header) {
	return func(t *testing.T) (int, string, http.Header) {
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		require.NoError(t, err)
		return send(t, p, http.MethodPost, "/otlp/v1/metrics", tenant, map[string]string{
			"Content-Encoding": "", "X-Prometheus-Remote-Write-Version": "", "Content-Type": "application/x-protobuf",
		}, body)
	}
}

// otlpPartialMessage returns the error_message of an OTLP answer's
// partial_success.
func otlpPartialMessage(t testing.TB, body string) string {
	t.Helper()
	resp := pmetricotlp.NewExportResponse()
	require.NoError(t, resp.UnmarshalProto([]byte(body)))
	return resp.PartialSuccess().ErrorMessage()
}

// otlpOneMetric returns an export of one metric named name of kind (a gauge
// or a sum of the given temporality) with one point at ms; of another kind,
// one metric without data.
func otlpOneMetric(name string, ms int64, kind pmetric.MetricType, temporality pmetric.AggregationTemporality) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	var dps pmetric.NumberDataPointSlice
	switch kind {
	case pmetric.MetricTypeSum:
		s := m.SetEmptySum()
		s.SetAggregationTemporality(temporality)
		dps = s.DataPoints()
	case pmetric.MetricTypeGauge:
		dps = m.SetEmptyGauge().DataPoints()
	default:
		return md // A metric without data: a type the translator does not know.
	}
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(ms * int64(time.Millisecond)))
	dp.SetDoubleValue(1)
	return md
}
