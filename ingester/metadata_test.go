package ingester

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func marshalMetadata(t testing.TB, ms ...prompb.MetricMetadata) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range ms {
		b, err := m.Marshal()
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func queryMetadata(t testing.TB, ing *Ingester, tenantID string, req *arguspb.MetricsMetadataRequest) []string {
	t.Helper()
	resp, err := ing.MetricsMetadata(tenantCtx(tenantID), req)
	require.NoError(t, err)
	var out []string
	for _, m := range resp.GetMetadata() {
		out = append(out, m.GetMetricFamilyName()+"|"+m.GetType()+"|"+m.GetHelp()+"|"+m.GetUnit())
	}
	return out
}

func TestMetadata_PushQueryRestartTruncate(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	md := marshalMetadata(t,
		prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req", Help: "Requests.", Unit: ""},
		prompb.MetricMetadata{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat", Help: "Latency.", Unit: "seconds"},
		prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGEHISTOGRAM, MetricFamilyName: "gh", Help: "G."},
		prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req", Help: "Requests, v2."},
		prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req", Help: "Requests."}, // repeated
	)
	_, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Metadata: md})
	require.NoError(t, err)
	want := []string{"gh|gaugehistogram|G.|", "lat|histogram|Latency.|seconds", "req|counter|Requests, v2.|", "req|counter|Requests.|"}
	require.Equal(t, want, queryMetadata(t, ing, "t1", &arguspb.MetricsMetadataRequest{}))
	require.Equal(t, want[2:], queryMetadata(t, ing, "t1", &arguspb.MetricsMetadataRequest{Metric: "req"}))
	require.Equal(t, want[:2], queryMetadata(t, ing, "t1", &arguspb.MetricsMetadataRequest{Limit: 2}))
	require.Equal(t, want[:3], queryMetadata(t, ing, "t1", &arguspb.MetricsMetadataRequest{LimitPerMetric: 1}))
	require.Empty(t, queryMetadata(t, ing, "t2", &arguspb.MetricsMetadataRequest{}))

	ing2 := restart(t, ing, withClock)
	require.Equal(t, want, queryMetadata(t, ing2, "t1", &arguspb.MetricsMetadataRequest{}), "after kill -9")
	// A series of the tenant, so that its head is not closed as idle.
	push(t, ing2, "t1", ts([]string{"__name__", "req_total"}, sample{clock.ms, 1}))
	truncateTenants(t, ing2)
	truncateTenants(t, ing2) // the second checkpoint reads the first one's records
	ing3 := restart(t, ing2, withClock)
	require.Equal(t, want, queryMetadata(t, ing3, "t1", &arguspb.MetricsMetadataRequest{}), "after truncations")

	// Past the retain period an entry is no longer served, and the next
	// truncation drops it; one pushed again is back.
	clock.ms += metadataRetainPeriod.Milliseconds() / 2
	_, err = ing3.Push(tenantCtx("t1"), &arguspb.WriteRequest{Metadata: md[1:2]})
	require.NoError(t, err)
	clock.ms += metadataRetainPeriod.Milliseconds()/2 + 1
	require.Equal(t, want[1:2], queryMetadata(t, ing3, "t1", &arguspb.MetricsMetadataRequest{}))
	push(t, ing3, "t1", ts([]string{"__name__", "req_total"}, sample{clock.ms, 1}))
	truncateTenants(t, ing3)
	ing4 := restart(t, ing3, withClock)
	require.Equal(t, want[1:2], queryMetadata(t, ing4, "t1", &arguspb.MetricsMetadataRequest{}))
}
