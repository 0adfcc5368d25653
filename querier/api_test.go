package querier

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/version"
	"github.com/prometheus/prometheus/util/features"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// serveMounted serves h as cmd does: at PathPrefix+"/", unstripped, behind
// the auth middleware in its default mode (the X-Scope-OrgID header, with
// multi-tenancy on).
func serveMounted(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	a, err := auth.New(auth.Config{Type: auth.TypeHeader}, auth.Options{MultitenancyEnabled: true}, auth.Deps{})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", a.Middleware(h, auth.OneTenant))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// apiRequest is one HTTP request to the API. Path is below PathPrefix.
type apiRequest struct {
	method string
	path   string
	form   url.Values
	tenant string // sent as X-Scope-OrgID unless empty
}

type apiResponse struct {
	status      int
	contentType string
	body        string
}

func (r apiRequest) do(t testing.TB, srv *httptest.Server) apiResponse {
	t.Helper()
	u := srv.URL + PathPrefix + r.path
	var body io.Reader
	if r.method == http.MethodGet && len(r.form) > 0 {
		u += "?" + r.form.Encode()
	} else if r.method == http.MethodPost {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, u, body)
	require.NoError(t, err)
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.tenant != "" {
		req.Header.Set(tenant.HeaderName, r.tenant)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return apiResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(b)}
}

func (r apiRequest) String() string { return r.method + " " + r.path + "?" + r.form.Encode() }

func secs(ms int64) string { return strconv.FormatInt(ms/1000, 10) }

// newTestQuerier builds a Querier with default flags over the fake source.
func newTestQuerier(t testing.TB, reg prometheus.Registerer) (*Querier, *fakeSource) {
	t.Helper()
	fake, client := newFakeSource(t)
	q, err := New(defaultConfig(t), Deps{Source: client, Registerer: reg, Gatherer: prometheus.NewRegistry()})
	require.NoError(t, err)
	return q, fake
}

// newReferenceAPI serves the same Prometheus API wiring over a Prometheus
// TSDB holding tenant A's samples.
func newReferenceAPI(t testing.TB, fake *fakeSource) http.Handler {
	t.Helper()
	cfg := defaultConfig(t)
	engine := newTestEngine(t)
	return newAPIHandler(engine, newReferenceTSDB(t, fake.data[tenantA]), apiDeps{
		cfg: cfg, logger: slog.New(slog.DiscardHandler), metrics: newMetrics(nil), features: features.NewRegistry(), started: time.Now(),
	})
}

// grafanaRequests replays what Grafana's Prometheus data source sends: POST
// for queries (its default), aligned range queries, and label and series
// lookups bounded by the dashboard's time range.
func grafanaRequests(tn string) []apiRequest {
	start, end := t0, t0+2*60*60_000
	rangeForm := func(q string, step int64) url.Values {
		// Grafana aligns start and end to the step.
		return url.Values{"query": {q}, "start": {secs(start / step * step)}, "end": {secs(end / step * step)}, "step": {strconv.FormatInt(step/1000, 10)}}
	}
	instant := func(q string, at int64) url.Values { return url.Values{"query": {q}, "time": {secs(at)}} }
	bounded := func(kv ...string) url.Values {
		v := url.Values{"start": {secs(start)}, "end": {secs(end)}}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	var reqs []apiRequest
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		reqs = append(reqs,
			apiRequest{m, "/api/v1/query_range", rangeForm(`sum by (job) (rate(http_requests_total[2m]))`, 30_000), tn},
			apiRequest{m, "/api/v1/query_range", rangeForm(`sum by (job) (rate(http_requests_total[5m]))`, 60_000), tn},
			apiRequest{m, "/api/v1/query_range", rangeForm(`histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))`, 120_000), tn},
			apiRequest{m, "/api/v1/query_range", rangeForm(`temperature`, 15_000), tn},
			apiRequest{m, "/api/v1/query_range", url.Values{"query": {"up"}, "start": {secs(start)}, "end": {secs(end)}, "step": {"0"}}, tn},
			apiRequest{m, "/api/v1/query", instant(`topk(3, rate(http_requests_total[5m]))`, end), tn},
			apiRequest{m, "/api/v1/query", instant(`count by (room) (temperature) or vector(0)`, t0+30*60_000), tn},
			apiRequest{m, "/api/v1/query", instant(`scalar(sum(up))`, t0+30*60_000), tn},
			apiRequest{m, "/api/v1/query", instant(`"a string"`, t0), tn},
			apiRequest{m, "/api/v1/query", instant(`http_requests_total[1m]`, t0+30*60_000), tn},
			apiRequest{m, "/api/v1/query", instant(`sum(rate(`, t0), tn},
			apiRequest{m, "/api/v1/labels", bounded(), tn},
			apiRequest{m, "/api/v1/labels", bounded("match[]", `up`), tn},
			apiRequest{m, "/api/v1/labels", bounded("match[]", `up`, "match[]", `{room="x"}`), tn},
			apiRequest{m, "/api/v1/series", bounded("match[]", `up`), tn},
			apiRequest{m, "/api/v1/series", bounded("match[]", `up`, "match[]", `temperature`, "limit", "3"), tn},
			apiRequest{m, "/api/v1/format_query", url.Values{"query": {`sum(rate(x[5m]))by(job)`}}, tn},
		)
	}
	// Prometheus serves these with GET only.
	return append(reqs,
		apiRequest{http.MethodGet, "/api/v1/label/__name__/values", bounded(), tn},
		apiRequest{http.MethodGet, "/api/v1/label/job/values", bounded("match[]", `http_requests_total`), tn},
		apiRequest{http.MethodGet, "/api/v1/label/instance/values", bounded("match[]", `up{job="api"}`, "match[]", `http_requests_total{job="db"}`), tn},
		apiRequest{http.MethodGet, "/api/v1/label/job/values", bounded("match[]", `up`, "limit", "1"), tn},
		apiRequest{http.MethodGet, "/api/v1/metadata", nil, tn},
		apiRequest{http.MethodGet, "/api/v1/metadata", url.Values{"metric": {"up"}, "limit": {"10"}}, tn},
		apiRequest{http.MethodGet, "/api/v1/status/buildinfo", nil, tn},
	)
}

// TestHandler_MatchesPrometheusAPI sends Grafana's requests to the querier
// and to the same API over a Prometheus TSDB holding the same samples, and
// requires byte-identical answers.
func TestHandler_MatchesPrometheusAPI(t *testing.T) {
	q, fake := newTestQuerier(t, nil)
	ours := serveMounted(t, q.Handler())
	ref := serveMounted(t, newReferenceAPI(t, fake))

	for _, r := range grafanaRequests(tenantA) {
		t.Run(r.String(), func(t *testing.T) {
			want := r.do(t, ref)
			got := r.do(t, ours)
			require.Equal(t, want, got)
			require.Contains(t, []int{200, 400}, got.status, got.body)
			if got.status == http.StatusOK {
				require.NotContains(t, got.body, `"data":[]`, "a vacuous comparison")
			}
		})
	}
}

// TestHandler_Golden pins the exact answers of the endpoints Grafana uses.
func TestHandler_Golden(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	start, end := secs(t0), secs(t0+2*60*60_000)
	buildInfo, err := json.Marshal(map[string]string{
		"version": "argus-unknown", "revision": version.GetRevision(), "branch": "", "buildUser": "", "buildDate": "", "goVersion": runtime.Version(),
	})
	require.NoError(t, err)

	tests := []struct {
		req        apiRequest
		wantStatus int
		wantJSON   string
	}{
		{
			req:        apiRequest{path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {secs(t0 + 30*60_000)}}},
			wantStatus: 200,
			wantJSON: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"up","instance":"a","job":"api"},"value":[1700001800,"1"]},
				{"metric":{"__name__":"up","instance":"b","job":"api"},"value":[1700001800,"1"]},
				{"metric":{"__name__":"up","instance":"c","job":"db"},"value":[1700001800,"1"]}]}}`,
		},
		{
			req: apiRequest{path: "/api/v1/query_range", form: url.Values{
				"query": {`sum by (job) (up)`}, "start": {secs(t0 + 58*60_000)}, "end": {secs(t0 + 62*60_000)}, "step": {"120"},
			}},
			wantStatus: 200,
			wantJSON: `{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"job":"api"},"values":[[1700003480,"2"],[1700003600,"1"],[1700003720,"1"]]},
				{"metric":{"job":"db"},"values":[[1700003480,"1"],[1700003600,"1"],[1700003720,"1"]]}]}}`,
		},
		{
			req:        apiRequest{path: "/api/v1/query", form: url.Values{"query": {"temperature"}, "time": {secs(t0 + 100*60_000)}}},
			wantStatus: 200,
			// Room y is stale after 90 minutes.
			wantJSON: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"temperature","room":"x"},"value":[1700006000,"18"]}]}}`,
		},
		{
			req:        apiRequest{path: "/api/v1/labels", form: url.Values{"match[]": {"up"}, "start": {start}, "end": {end}}},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":["__name__","instance","job"]}`,
		},
		{
			req:        apiRequest{path: "/api/v1/label/job/values", form: url.Values{"match[]": {"up"}, "start": {start}, "end": {end}}},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":["api","db"]}`,
		},
		{
			req:        apiRequest{path: "/api/v1/label/room/values", form: url.Values{"start": {start}, "end": {end}}},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":["x","y"]}`,
		},
		{
			req:        apiRequest{path: "/api/v1/series", form: url.Values{"match[]": {`up{job="api"}`, `temperature{room="y"}`}, "start": {start}, "end": {end}}},
			wantStatus: 200,
			wantJSON: `{"status":"success","data":[
				{"__name__":"temperature","room":"y"},
				{"__name__":"up","instance":"a","job":"api"},
				{"__name__":"up","instance":"b","job":"api"}]}`,
		},
		{
			req:        apiRequest{path: "/api/v1/metadata"},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":{}}`,
		},
		{
			req:        apiRequest{path: "/api/v1/status/buildinfo"},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":` + string(buildInfo) + `}`,
		},
		{
			req:        apiRequest{path: "/api/v1/format_query", form: url.Values{"query": {`sum(rate(x[5m]))by(job)`}}},
			wantStatus: 200,
			wantJSON:   `{"status":"success","data":"sum by (job) (rate(x[5m]))"}`,
		},
		{
			req:        apiRequest{path: "/api/v1/query", form: url.Values{"query": {"sum(rate("}, "time": {start}}},
			wantStatus: 400,
			wantJSON:   `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: invalid parameter \"query\": 1:10: parse error: unclosed left parenthesis"}`,
		},
		{
			req:        apiRequest{path: "/api/v1/query_range", form: url.Values{"query": {"up"}, "start": {end}, "end": {start}, "step": {"60"}}},
			wantStatus: 400,
			wantJSON:   `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: invalid parameter \"end\": end timestamp must not be before start time"}`,
		},
		{
			req:        apiRequest{path: "/api/v1/series", form: url.Values{"start": {start}}},
			wantStatus: 400,
			wantJSON:   `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: no match[] parameter provided"}`,
		},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := tc.req
			r.method, r.tenant = method, tenantA
			t.Run(r.String(), func(t *testing.T) {
				got := r.do(t, srv)
				require.Equal(t, tc.wantStatus, got.status, got.body)
				require.Equal(t, "application/json", got.contentType)
				require.Empty(t, cmp.Diff(decodeJSON(t, tc.wantJSON), decodeJSON(t, got.body)))
			})
		}
	}
}

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	return v
}

func TestHandler_Tenants(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	query := url.Values{"query": {`count by (job) ({job=~".+"})`}, "time": {secs(t0 + 60*60_000)}}

	t.Run("missing tenant", func(t *testing.T) {
		got := apiRequest{http.MethodGet, "/api/v1/query", query, ""}.do(t, srv)
		require.Equal(t, http.StatusUnauthorized, got.status)
		require.Equal(t, "err-argus-missing-tenant: the X-Scope-OrgID header is missing\n", got.body)
	})

	t.Run("each tenant sees its own series", func(t *testing.T) {
		got := apiRequest{http.MethodGet, "/api/v1/query", query, tenantB}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.Empty(t, cmp.Diff(decodeJSON(t, `{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{"job":"other"},"value":[1700003600,"2"]}]}}`), decodeJSON(t, got.body)))

		got = apiRequest{http.MethodGet, "/api/v1/label/room/values", nil, tenantB}.do(t, srv)
		require.Empty(t, cmp.Diff(decodeJSON(t, `{"status":"success","data":["b-only"]}`), decodeJSON(t, got.body)))
		got = apiRequest{http.MethodGet, "/api/v1/label/room/values", nil, tenantA}.do(t, srv)
		require.Empty(t, cmp.Diff(decodeJSON(t, `{"status":"success","data":["x","y"]}`), decodeJSON(t, got.body)))
	})
}

// TestHandler_SourceErrors checks that a source's gRPC status reaches the
// client as the same status and error type from every endpoint.
func TestHandler_SourceErrors(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	tests := []struct {
		tenant, wantType string
		wantStatus       int
		wantError        string // the source's part of the message
	}{
		{tenant: "down", wantType: "unavailable", wantStatus: 503, wantError: "ingester is down"},
		{tenant: "invalid", wantType: "execution", wantStatus: 422, wantError: "regexp too expensive"},
		{tenant: "broken", wantType: "execution", wantStatus: 422, wantError: "Internal: disk on fire"},
	}
	reqs := []apiRequest{
		{path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {secs(t0)}}},
		{path: "/api/v1/query_range", form: url.Values{"query": {"rate(up[5m])"}, "start": {secs(t0)}, "end": {secs(t0 + 600_000)}, "step": {"60"}}},
		{path: "/api/v1/series", form: url.Values{"match[]": {"up"}}},
		{path: "/api/v1/labels"},
		{path: "/api/v1/labels", form: url.Values{"match[]": {"up", "temperature"}}},
		{path: "/api/v1/label/job/values"},
	}
	for _, tc := range tests {
		for _, r := range reqs {
			r.method, r.tenant = http.MethodGet, tc.tenant
			t.Run(tc.tenant+" "+r.String(), func(t *testing.T) {
				got := r.do(t, srv)
				require.Equal(t, tc.wantStatus, got.status, got.body)
				var body struct {
					Status, ErrorType, Error string
				}
				require.NoError(t, json.Unmarshal([]byte(got.body), &body))
				require.Equal(t, "error", body.Status)
				require.Equal(t, tc.wantType, body.ErrorType)
				require.True(t, strings.HasSuffix(body.Error, tc.wantError), body.Error)
			})
		}
	}
}

// TestHandler_OtherEndpoints checks that the endpoints Argus stubs answer
// without panicking, with what Prometheus's API makes of the stubs.
func TestHandler_OtherEndpoints(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	tests := []struct {
		method, path string
		wantStatus   int
	}{
		{http.MethodGet, "/api/v1/targets", 200},
		{http.MethodGet, "/api/v1/targets/metadata", 200},
		{http.MethodGet, "/api/v1/targets/relabel_steps?scrapePool=x&labels={}", 400},
		{http.MethodGet, "/api/v1/scrape_pools", 200},
		{http.MethodGet, "/api/v1/scrape_pools/config?scrapePool=x", 400},
		{http.MethodGet, "/api/v1/rules", 200},
		{http.MethodGet, "/api/v1/alerts", 200},
		{http.MethodGet, "/api/v1/alertmanagers", 200},
		{http.MethodGet, "/api/v1/status/config", 200},
		{http.MethodGet, "/api/v1/status/flags", 200},
		{http.MethodGet, "/api/v1/status/runtimeinfo", 200},
		{http.MethodGet, "/api/v1/status/tsdb", 500},
		{http.MethodGet, "/api/v1/status/tsdb/blocks", 500},
		{http.MethodGet, "/api/v1/status/walreplay", 500},
		{http.MethodGet, "/api/v1/status/self_metrics", 200},
		{http.MethodGet, "/api/v1/features", 200},
		{http.MethodGet, "/api/v1/notifications", 200},
		{http.MethodGet, "/api/v1/notifications/live", 204},
		{http.MethodGet, "/api/v1/query_exemplars?query=up", 200},
		{http.MethodGet, "/api/v1/parse_query?query=up", 200},
		{http.MethodGet, "/api/v1/openapi.yaml", 200},
		{http.MethodGet, "/api/v1/search/metric_names", 500}, // "unavailable": search API disabled
		{http.MethodPost, "/api/v1/admin/tsdb/snapshot", 500},
		{http.MethodPost, "/api/v1/admin/tsdb/delete_series?match[]=up", 500},
		{http.MethodPost, "/api/v1/admin/tsdb/clean_tombstones", 500},
		{http.MethodPost, "/api/v1/write", 404},
		{http.MethodPost, "/api/v1/otlp/v1/metrics", 404},
		{http.MethodPost, "/api/v1/read", 400},
		{http.MethodOptions, "/api/v1/query", 204},
		{http.MethodGet, "/api/v1/nonexistent", 404},
		{http.MethodDelete, "/api/v1/query", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			path, rawQuery, _ := strings.Cut(tc.path, "?")
			form, err := url.ParseQuery(rawQuery)
			require.NoError(t, err)
			r := apiRequest{method: tc.method, path: path, form: form, tenant: tenantA}
			if tc.method != http.MethodGet {
				// Keep the parameters in the URL for every method.
				r.path, r.form = tc.path, nil
			}
			got := r.do(t, srv)
			require.Equal(t, tc.wantStatus, got.status, got.body)
		})
	}
}

func TestHandler_Metrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	q, _ := newTestQuerier(t, reg)
	srv := serveMounted(t, q.Handler())
	for range 2 {
		got := apiRequest{http.MethodPost, "/api/v1/query", url.Values{"query": {"up"}, "time": {secs(t0)}}, tenantA}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status)
	}
	got := apiRequest{http.MethodGet, "/api/v1/label/job/values", nil, tenantA}.do(t, srv)
	require.Equal(t, http.StatusOK, got.status)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "argus_querier_query_duration_seconds" {
			continue
		}
		// Every route's series exists from the start, at zero.
		require.Contains(t, mf.GetMetric()[0].GetLabel()[0].GetValue(), "/api/v1/")
		for _, m := range mf.GetMetric() {
			if c := m.GetHistogram().GetSampleCount(); c > 0 {
				counts[m.GetLabel()[0].GetValue()] = c
			}
		}
	}
	require.Equal(t, map[string]uint64{"/api/v1/query": 2, "/api/v1/label/:name/values": 1}, counts)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP argus_querier_series_fetched_total Series received from series sources.
# TYPE argus_querier_series_fetched_total counter
argus_querier_series_fetched_total 6
`), "argus_querier_series_fetched_total"))
	// The engine's own metrics are there, renamed.
	n, err := testutil.GatherAndCount(reg, "argus_querier_prometheus_engine_queries")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestNew_Validates(t *testing.T) {
	_, client := newFakeSource(t)
	cfg := defaultConfig(t)
	cfg.MaxConcurrent = 0
	_, err := New(cfg, Deps{Source: client})
	require.ErrorContains(t, err, "querier.max-concurrent")
	_, err = New(defaultConfig(t), Deps{})
	require.Error(t, err)
}

func TestPostAsGet_BadForm(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathPrefix+"/api/v1/label/job/values", strings.NewReader("%zz"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(tenant.HeaderName, tenantA)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, cmp.Diff(decodeJSON(t, `{"status":"error","errorType":"bad_data","error":"err-argus-bad-query: error parsing form values: invalid URL escape \"%zz\""}`), decodeJSON(t, string(b))))
}

func TestHandler_NoCORSOrigin(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+PathPrefix+"/api/v1/status/buildinfo", nil)
	require.NoError(t, err)
	req.Header.Set(tenant.HeaderName, tenantA)
	req.Header.Set("Origin", "https://elsewhere.example")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}
