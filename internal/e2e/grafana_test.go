package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// Grafana cannot run here, so TestGrafanaRequests replays the requests its
// Prometheus data source sends (pkg/promlib/client in Grafana: queries as
// POST with a urlencoded form, start and end aligned to the step and written
// as seconds, step in seconds; label values, metadata and buildinfo as GET;
// labels and series as POST with a GET fallback; the tenant as a custom
// header) against data with known values, and asserts the exact answers.
func TestGrafanaRequests(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})
	const tenant = "grafana"

	// 161 samples 15s apart, starting on a minute boundary 40+ minutes ago.
	base := time.Now().Add(-41 * time.Minute).Truncate(time.Minute).Unix() // seconds
	const n = 161
	at := func(i int) int64 { return (base + int64(i)*15) * 1000 }
	mk := func(v func(i int) float64, kv ...string) clustertest.TimeSeries {
		s := clustertest.TimeSeries{Labels: clustertest.Labels(kv...)}
		for i := range n {
			s.Samples = append(s.Samples, clustertest.Sample{T: at(i), V: v(i)})
		}
		return s
	}
	pushOK(t, a, tenant, []clustertest.TimeSeries{
		mk(func(i int) float64 { return float64(i) }, "__name__", "grafana_test", "instance", "a", "job", "api"),
		mk(func(i int) float64 { return float64(2 * i) }, "__name__", "grafana_test", "instance", "b", "job", "api"),
		mk(func(i int) float64 { return 100 + float64(i)/4 }, "__name__", "grafana_test", "instance", "c", "job", "db"),
		mk(func(int) float64 { return 5 }, "__name__", "grafana_other", "job", "db"),
	})
	sec := func(s int64) string { return strconv.FormatInt(s, 10) }
	// point renders one [timestamp, "value"] pair for a time in seconds
	// since base.
	point := func(offset int64, v float64) string {
		return "[" + clustertest.JSONTimestamp((base+offset)*1000) + `,"` + clustertest.FormatValue(v) + `"]`
	}
	points := func(from, to, step int64, v func(i int64) float64) string {
		var ps []string
		for o := from; o <= to; o += step {
			ps = append(ps, point(o, v(o/15)))
		}
		return strings.Join(ps, ",")
	}
	rangeParams := url.Values{"start": {sec(base)}, "end": {sec(base + 2400)}}

	grafana := func(t *testing.T, method, path string, params url.Values) (int, []byte) {
		t.Helper()
		u := a.URL() + clustertest.PromAPI + path
		var req *http.Request
		var err error
		if method == http.MethodPost {
			req, err = http.NewRequest(method, u, strings.NewReader(params.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			if len(params) > 0 {
				u += "?" + params.Encode()
			}
			req, err = http.NewRequest(method, u, nil)
			require.NoError(t, err)
		}
		req.Header.Set("User-Agent", "Grafana/12.2.0")
		req.Header.Set("X-Grafana-Org-Id", "1")
		req.Header.Set("Accept", "application/json, text/plain, */*")
		req.Header.Set(clustertest.TenantHeader, tenant)
		return a.Do(t, req)
	}
	merge := func(vs ...url.Values) url.Values {
		out := url.Values{}
		for _, v := range vs {
			for k, xs := range v {
				out[k] = append(out[k], xs...)
			}
		}
		return out
	}

	cases := []struct {
		name   string
		method string
		path   string
		params url.Values
		want   string
		// unordered: the API promises no order of the result.
		unordered bool
	}{
		{
			name: "panel query_range", method: http.MethodPost, path: "/query_range",
			params: url.Values{"query": {`grafana_test{job="api"}`}, "start": {sec(base + 300)}, "end": {sec(base + 900)}, "step": {"60"}},
			want: `{"resultType":"matrix","result":[` +
				`{"metric":{"__name__":"grafana_test","instance":"a","job":"api"},"values":[` + points(300, 900, 60, func(i int64) float64 { return float64(i) }) + `]},` +
				`{"metric":{"__name__":"grafana_test","instance":"b","job":"api"},"values":[` + points(300, 900, 60, func(i int64) float64 { return float64(2 * i) }) + `]}]}`,
		},
		{
			// A data source configured with the GET method.
			name: "panel query_range as GET", method: http.MethodGet, path: "/query_range",
			params: url.Values{"query": {`grafana_test{job="api"}`}, "start": {sec(base + 300)}, "end": {sec(base + 900)}, "step": {"60"}},
			want: `{"resultType":"matrix","result":[` +
				`{"metric":{"__name__":"grafana_test","instance":"a","job":"api"},"values":[` + points(300, 900, 60, func(i int64) float64 { return float64(i) }) + `]},` +
				`{"metric":{"__name__":"grafana_test","instance":"b","job":"api"},"values":[` + points(300, 900, 60, func(i int64) float64 { return float64(2 * i) }) + `]}]}`,
		},
		{
			name: "aggregated query_range with timeout", method: http.MethodPost, path: "/query_range",
			params: url.Values{"query": {`sum by (job) (grafana_test)`}, "start": {sec(base)}, "end": {sec(base + 2400)}, "step": {"300"}, "timeout": {"30s"}},
			want: `{"resultType":"matrix","result":[` +
				`{"metric":{"job":"api"},"values":[` + points(0, 2400, 300, func(i int64) float64 { return float64(3 * i) }) + `]},` +
				`{"metric":{"job":"db"},"values":[` + points(0, 2400, 300, func(i int64) float64 { return 100 + float64(i)/4 }) + `]}]}`,
		},
		{
			// The last sample is at base+2400; the 5m lookback is left-open,
			// so the step at base+2700 has no value.
			name: "query_range past the end of the data", method: http.MethodPost, path: "/query_range",
			params: url.Values{"query": {`grafana_other`}, "start": {sec(base + 2100)}, "end": {sec(base + 3000)}, "step": {"120"}},
			want: `{"resultType":"matrix","result":[{"metric":{"__name__":"grafana_other","job":"db"},"values":[` +
				points(2100, 2580, 120, func(int64) float64 { return 5 }) + `]}]}`,
		},
		{
			name: "instant query at a fractional time", method: http.MethodPost, path: "/query",
			params: url.Values{"query": {`grafana_test`}, "time": {sec(base+900) + ".5"}},
			want: `{"resultType":"vector","result":[` +
				`{"metric":{"__name__":"grafana_test","instance":"a","job":"api"},"value":[` + clustertest.JSONTimestamp((base+900)*1000+500) + `,"60"]},` +
				`{"metric":{"__name__":"grafana_test","instance":"b","job":"api"},"value":[` + clustertest.JSONTimestamp((base+900)*1000+500) + `,"120"]},` +
				`{"metric":{"__name__":"grafana_test","instance":"c","job":"db"},"value":[` + clustertest.JSONTimestamp((base+900)*1000+500) + `,"115"]}]}`,
			unordered: true,
		},
		{
			name: "instant scalar query", method: http.MethodPost, path: "/query",
			params: url.Values{"query": {`scalar(sum(grafana_test{job="api"})) / 4`}, "time": {sec(base + 600)}},
			want:   `{"resultType":"scalar","result":[` + clustertest.JSONTimestamp((base+600)*1000) + `,"30"]}`,
		},
		{
			name: "label names", method: http.MethodGet, path: "/labels", params: rangeParams,
			want: `["__name__","instance","job"]`,
		},
		{
			name: "label names as POST", method: http.MethodPost, path: "/labels", params: rangeParams,
			want: `["__name__","instance","job"]`,
		},
		{
			name: "label names of a metric", method: http.MethodGet, path: "/labels", params: merge(rangeParams, url.Values{"match[]": {"grafana_other"}}),
			want: `["__name__","job"]`,
		},
		{
			name: "metric names for the metric browser", method: http.MethodGet, path: "/label/__name__/values", params: rangeParams,
			want: `["grafana_other","grafana_test"]`,
		},
		{
			name: "label values of a metric", method: http.MethodGet, path: "/label/job/values", params: merge(rangeParams, url.Values{"match[]": {"grafana_test"}}),
			want: `["api","db"]`,
		},
		{
			name: "label values under a selector", method: http.MethodGet, path: "/label/instance/values", params: merge(rangeParams, url.Values{"match[]": {`{job="api"}`}}),
			want: `["a","b"]`,
		},
		{
			name: "series as POST", method: http.MethodPost, path: "/series", params: merge(rangeParams, url.Values{"match[]": {`grafana_test{job="db"}`}}),
			want: `[{"__name__":"grafana_test","instance":"c","job":"db"}]`,
		},
		{
			name: "series with two matchers", method: http.MethodGet, path: "/series", params: merge(rangeParams, url.Values{"match[]": {`grafana_other`, `grafana_test{instance="a"}`}}),
			want:      `[{"__name__":"grafana_other","job":"db"},{"__name__":"grafana_test","instance":"a","job":"api"}]`,
			unordered: true,
		},
		{
			name: "series outside the time range", method: http.MethodGet, path: "/series",
			params: url.Values{"match[]": {`grafana_test`}, "start": {sec(base - 7200)}, "end": {sec(base - 3600)}},
			want:   `[]`,
		},
		{
			// The test pushes samples and no metadata: Prometheus answers an
			// empty object then (exmeta_test.go pushes metadata).
			name: "metadata", method: http.MethodGet, path: "/metadata", want: `{}`,
		},
		{
			name: "metadata of a metric", method: http.MethodGet, path: "/metadata", params: url.Values{"metric": {"grafana_test"}}, want: `{}`,
		},
		{
			name: "format query", method: http.MethodGet, path: "/format_query", params: url.Values{"query": {`sum(rate(grafana_test{job="api"}[5m]))by(job)`}},
			want: `"sum by (job) (rate(grafana_test{job=\"api\"}[5m]))"`,
		},
		{
			name: "format query as POST", method: http.MethodPost, path: "/format_query", params: url.Values{"query": {`grafana_test  offset 5m`}},
			want: `"grafana_test offset 5m"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := grafana(t, tc.method, tc.path, tc.params)
			got := apiData(t, code, body)
			if tc.unordered {
				got = clustertest.SortSeriesList(clustertest.SortVector(got))
			}
			require.Empty(t, cmpJSON(t, mustJSON(t, tc.want), got), "%s %s %s", tc.method, tc.path, tc.params.Encode())
		})
	}

	t.Run("buildinfo", func(t *testing.T) {
		code, body := grafana(t, http.MethodGet, "/status/buildinfo", nil)
		data, ok := apiData(t, code, body).(map[string]any)
		require.True(t, ok, "data is an object: %s", body)
		for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
			v, ok := data[k].(string)
			require.True(t, ok, "buildinfo %q is a string: %s", k, body)
			if k == "version" || k == "goVersion" {
				require.NotEmpty(t, v, "buildinfo %q", k)
			}
		}
	})

	t.Run("query_exemplars", func(t *testing.T) {
		// Grafana tolerates an error here but not a server failure; an
		// answer, if any, has no exemplars since none were pushed
		// (exmeta_test.go pushes exemplars).
		code, body := grafana(t, http.MethodPost, "/query_exemplars", url.Values{"query": {"grafana_test"}, "start": {sec(base)}, "end": {sec(base + 2400)}})
		require.Less(t, code, 500, "answer: %s", body)
		if code == http.StatusOK {
			require.Empty(t, cmpJSON(t, mustJSON(t, `[]`), apiData(t, code, body)))
		}
	})

	t.Run("errors Grafana shows to the user", func(t *testing.T) {
		f := func(path string, params url.Values, wantErr string) {
			t.Helper()
			code, body := grafana(t, http.MethodPost, path, params)
			require.Equal(t, http.StatusBadRequest, code, "answer: %s", body)
			r := clustertest.DecodeAPI(t, body)
			require.Equal(t, "error", r.Status)
			require.Equal(t, "bad_data", r.ErrorType)
			require.Equal(t, string(apierror.BadQuery)+": "+wantErr, r.Error, "Prometheus's text after the ID")
		}
		f("/query", url.Values{"query": {"sum(grafana_test"}, "time": {sec(base)}}, `invalid parameter "query": 1:17: parse error: unclosed left parenthesis`)
		f("/query_range", url.Values{"query": {"grafana_test"}, "start": {sec(base)}, "end": {sec(base + 2400)}, "step": {"0.1"}},
			"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		f("/query_range", url.Values{"query": {"grafana_test"}, "start": {sec(base + 60)}, "end": {sec(base)}, "step": {"60"}},
			`invalid parameter "end": end timestamp must not be before start time`)
	})
}
