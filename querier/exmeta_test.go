package querier

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// exmetaSource is a fake source of exemplars and metadata.
type fakeExmetaSource struct {
	arguspb.UnimplementedSeriesSourceServer
	exemplars *arguspb.ExemplarsResponse
	metadata  []*arguspb.MetricMetadata
}

func (f *fakeExmetaSource) QueryExemplars(context.Context, *arguspb.ExemplarsRequest) (*arguspb.ExemplarsResponse, error) {
	return f.exemplars, nil
}

func (f *fakeExmetaSource) MetricsMetadata(_ context.Context, req *arguspb.MetricsMetadataRequest) (*arguspb.MetricsMetadataResponse, error) {
	var out []*arguspb.MetricMetadata
	for _, m := range f.metadata {
		if req.GetMetric() == "" || req.GetMetric() == m.GetMetricFamilyName() {
			out = append(out, m)
		}
	}
	return &arguspb.MetricsMetadataResponse{Metadata: out}, nil
}

func protoExemplar(trace string, v float64, t int64) *arguspb.Exemplar {
	return &arguspb.Exemplar{Labels: []*arguspb.Label{{Name: "trace_id", Value: trace}}, Value: v, TimestampMs: t}
}

// exmetaDeps are the Deps of a querier over three fake replicas: each
// exemplar and metadata entry is on two of them, as after writes that
// missed one replica each.
func exmetaDeps(t *testing.T) Deps {
	t.Helper()
	up := []*arguspb.Label{{Name: "__name__", Value: "up"}}
	req := []*arguspb.Label{{Name: "__name__", Value: "req_total"}, {Name: "job", Value: "x"}}
	counter := &arguspb.MetricMetadata{MetricFamilyName: "req", Type: "counter", Help: "Requests."}
	gauge := &arguspb.MetricMetadata{MetricFamilyName: "up", Type: "gauge", Help: "Up."}
	gauge2 := &arguspb.MetricMetadata{MetricFamilyName: "up", Type: "gauge", Help: "Up, again.", Unit: "bool"}
	srcs := []*fakeExmetaSource{
		{exemplars: &arguspb.ExemplarsResponse{Series: []*arguspb.SeriesExemplars{
			{Labels: req, Exemplars: []*arguspb.Exemplar{protoExemplar("a", 1, 1000), protoExemplar("b", 2, 2000)}},
		}}, metadata: []*arguspb.MetricMetadata{counter, gauge}},
		{exemplars: &arguspb.ExemplarsResponse{Series: []*arguspb.SeriesExemplars{
			{Labels: req, Exemplars: []*arguspb.Exemplar{protoExemplar("b", 2, 2000), protoExemplar("c", 3, 3000)}},
			{Labels: up, Exemplars: []*arguspb.Exemplar{protoExemplar("d", 4, 1500)}},
		}}, metadata: []*arguspb.MetricMetadata{counter, gauge2}},
		{exemplars: &arguspb.ExemplarsResponse{Series: []*arguspb.SeriesExemplars{
			{Labels: up, Exemplars: []*arguspb.Exemplar{protoExemplar("d", 4, 1500)}},
			{Labels: req, Exemplars: []*arguspb.Exemplar{protoExemplar("a", 1, 1000), protoExemplar("c", 3, 3000)}},
		}}, metadata: []*arguspb.MetricMetadata{gauge, gauge2}},
	}
	clients := map[string]arguspb.SeriesSourceClient{}
	var instances []ring.Instance
	for r, src := range srcs {
		addr := string(rune('a' + r))
		instances = append(instances, ring.Instance{ID: addr, Addr: addr})
		clients[addr] = startSource(t, src)
	}
	return Deps{
		Replicas: fakeReadSet{instances: instances, maxFailures: 1},
		Sources:  func(addr string) (arguspb.SeriesSourceClient, error) { return clients[addr], nil },
	}
}

func TestQueryExemplars_MergesReplicas(t *testing.T) {
	srv := serveQuerier(t, defaultConfig(t), exmetaDeps(t))
	got := apiRequest{http.MethodGet, "/api/v1/query_exemplars", url.Values{"query": {`req_total or up`}, "start": {"0"}, "end": {"10"}}, tenantA}.do(t, srv)
	require.Equal(t, http.StatusOK, got.status, got.body)
	require.JSONEq(t, `{"status":"success","data":[
		{"seriesLabels":{"__name__":"req_total","job":"x"},"exemplars":[
			{"labels":{"trace_id":"a"},"value":"1","timestamp":1},
			{"labels":{"trace_id":"b"},"value":"2","timestamp":2},
			{"labels":{"trace_id":"c"},"value":"3","timestamp":3}]},
		{"seriesLabels":{"__name__":"up"},"exemplars":[{"labels":{"trace_id":"d"},"value":"4","timestamp":1.5}]}]}`, got.body)
}

func TestMetadata_MergesReplicas(t *testing.T) {
	srv := serveQuerier(t, defaultConfig(t), exmetaDeps(t))
	for _, c := range []struct {
		form url.Values
		want string
	}{
		{nil, `{"req":[{"type":"counter","unit":"","help":"Requests."}],
			"up":[{"type":"gauge","unit":"bool","help":"Up, again."},{"type":"gauge","unit":"","help":"Up."}]}`},
		{url.Values{"metric": {"up"}, "limit_per_metric": {"1"}}, `{"up":[{"type":"gauge","unit":"bool","help":"Up, again."}]}`},
		{url.Values{"limit": {"1"}}, `{"req":[{"type":"counter","unit":"","help":"Requests."}]}`},
		{url.Values{"limit": {"0"}}, `{}`},
		{url.Values{"metric": {"nope"}}, `{}`},
	} {
		got := apiRequest{http.MethodGet, "/api/v1/metadata", c.form, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.JSONEq(t, `{"status":"success","data":`+c.want+`}`, got.body, c.form)
	}
	got := apiRequest{http.MethodGet, "/api/v1/metadata", url.Values{"limit": {"x"}}, tenantA}.do(t, srv)
	require.Equal(t, http.StatusBadRequest, got.status)
	require.JSONEq(t, `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: limit must be a number"}`, got.body)
	got = apiRequest{http.MethodPost, "/api/v1/metadata", url.Values{"metric": {"req"}}, tenantA}.do(t, srv)
	require.JSONEq(t, `{"status":"success","data":{"req":[{"type":"counter","unit":"","help":"Requests."}]}}`, got.body)
}

func TestExmeta_OneTenantAtATime(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.TenantFederationEnabled = true
	q, err := New(cfg, exmetaDeps(t))
	require.NoError(t, err)
	srv := serveFederated(t, q.Handler())
	got := apiRequest{http.MethodGet, "/api/v1/metadata", nil, tenantA + "|" + tenantB}.do(t, srv)
	require.Equal(t, http.StatusUnauthorized, got.status, got.body)
	require.Contains(t, got.body, "err-argus-invalid-tenant")
	got = apiRequest{http.MethodGet, "/api/v1/query_exemplars", url.Values{"query": {"up"}}, tenantA + "|" + tenantB}.do(t, srv)
	require.Equal(t, http.StatusUnauthorized, got.status, got.body)
	require.Contains(t, got.body, "err-argus-invalid-tenant")
}

// localExmetaServer is a LocalSource that also serves exemplars and
// metadata, as *ingester.Ingester does.
type localExmetaServer struct {
	localServer
	src *fakeExmetaSource
}

func (l localExmetaServer) QueryExemplars(ctx context.Context, req *arguspb.ExemplarsRequest) (*arguspb.ExemplarsResponse, error) {
	return l.src.QueryExemplars(ctx, req)
}

func (l localExmetaServer) MetricsMetadata(ctx context.Context, req *arguspb.MetricsMetadataRequest) (*arguspb.MetricsMetadataResponse, error) {
	return l.src.MetricsMetadata(ctx, req)
}

// TestExmeta_LocalReads checks that an all-in-one reads its own ingester's
// exemplars and metadata in-process.
func TestExmeta_LocalReads(t *testing.T) {
	src := &fakeExmetaSource{
		exemplars: &arguspb.ExemplarsResponse{Series: []*arguspb.SeriesExemplars{
			{Labels: []*arguspb.Label{{Name: "__name__", Value: "up"}}, Exemplars: []*arguspb.Exemplar{protoExemplar("d", 4, 1500)}},
		}},
		metadata: []*arguspb.MetricMetadata{{MetricFamilyName: "up", Type: "gauge", Help: "Up."}},
	}
	q := newLocalQueryable(t, &fakeSource{})
	q.local = localExmetaServer{localServer: q.local.(localServer), src: src}
	ctx := tenant.With(t.Context(), tenantA)
	eq, err := q.ExemplarQuerier(ctx)
	require.NoError(t, err)
	res, err := eq.Select(0, 10_000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, `{__name__="up"}`, res[0].SeriesLabels.String())
	require.Equal(t, []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", "d"), Value: 4, Ts: 1500, HasTs: true}}, res[0].Exemplars)
	md, err := q.metricsMetadata(ctx, "", -1, -1)
	require.NoError(t, err)
	require.Equal(t, map[string][]metadata.Metadata{"up": {{Type: "gauge", Help: "Up."}}}, md)
	require.InDelta(t, 2, testutil.ToFloat64(q.metrics.localReads), 0)
}
