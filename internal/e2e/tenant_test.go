package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestTenantIsolation pushes the same series names for two tenants with
// different values and label names, and checks that every read API answers
// each tenant with its own data only, that a tenant without data sees
// nothing, and that requests without X-Scope-OrgID are refused with 401.
func TestTenantIsolation(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.multitenancy-enabled=true"}})

	t0 := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	t1 := t0 + 15_000
	pushOK(t, a, "tenant-a", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "iso_metric", "instance", "i1", "job", "shared"), Samples: []clustertest.Sample{{T: t0, V: 1}, {T: t1, V: 2}}},
		{Labels: clustertest.Labels("__name__", "iso_only_a", "a_label", "x", "job", "a-only"), Samples: []clustertest.Sample{{T: t0, V: 7}}},
	})
	pushOK(t, a, "tenant-b", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "iso_metric", "instance", "i1", "job", "shared"), Samples: []clustertest.Sample{{T: t0, V: 100}, {T: t1, V: 200}}},
		{Labels: clustertest.Labels("__name__", "iso_only_b", "b_label", "y", "job", "b-only"), Samples: []clustertest.Sample{{T: t0, V: 9}}},
	})

	at := clustertest.FormatAPITime(t1)
	rng := url.Values{"start": {clustertest.FormatAPITime(t0 - 60_000)}, "end": {clustertest.FormatAPITime(t1 + 60_000)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tsJSON := clustertest.JSONTimestamp(t1)

	type check struct {
		name   string
		path   string
		params url.Values
		want   map[string]string // tenant -> expected data JSON
	}
	checks := []check{
		{
			name: "query", path: "/query", params: url.Values{"query": {"iso_metric"}, "time": {at}},
			want: map[string]string{
				"tenant-a": `{"resultType":"vector","result":[{"metric":{"__name__":"iso_metric","instance":"i1","job":"shared"},"value":[` + tsJSON + `,"2"]}]}`,
				"tenant-b": `{"resultType":"vector","result":[{"metric":{"__name__":"iso_metric","instance":"i1","job":"shared"},"value":[` + tsJSON + `,"200"]}]}`,
				"tenant-c": `{"resultType":"vector","result":[]}`,
			},
		},
		{
			name: "query sum over every series", path: "/query", params: url.Values{"query": {`sum({__name__=~"iso_.*"})`}, "time": {at}},
			want: map[string]string{
				"tenant-a": `{"resultType":"vector","result":[{"metric":{},"value":[` + tsJSON + `,"9"]}]}`,
				"tenant-b": `{"resultType":"vector","result":[{"metric":{},"value":[` + tsJSON + `,"209"]}]}`,
				"tenant-c": `{"resultType":"vector","result":[]}`,
			},
		},
		{
			name: "series", path: "/series", params: with(rng, "match[]", `{__name__=~"iso_.*"}`),
			want: map[string]string{
				"tenant-a": `[{"__name__":"iso_metric","instance":"i1","job":"shared"},{"__name__":"iso_only_a","a_label":"x","job":"a-only"}]`,
				"tenant-b": `[{"__name__":"iso_metric","instance":"i1","job":"shared"},{"__name__":"iso_only_b","b_label":"y","job":"b-only"}]`,
				"tenant-c": `[]`,
			},
		},
		{
			name: "labels", path: "/labels", params: rng,
			want: map[string]string{
				"tenant-a": `["__name__","a_label","instance","job"]`,
				"tenant-b": `["__name__","b_label","instance","job"]`,
				"tenant-c": `[]`,
			},
		},
		{
			name: "labels without a time range", path: "/labels", params: nil,
			want: map[string]string{
				"tenant-a": `["__name__","a_label","instance","job"]`,
				"tenant-b": `["__name__","b_label","instance","job"]`,
				"tenant-c": `[]`,
			},
		},
		{
			name: "label values of job", path: "/label/job/values", params: rng,
			want: map[string]string{
				"tenant-a": `["a-only","shared"]`,
				"tenant-b": `["b-only","shared"]`,
				"tenant-c": `[]`,
			},
		},
		{
			name: "metric names", path: "/label/__name__/values", params: rng,
			want: map[string]string{
				"tenant-a": `["iso_metric","iso_only_a"]`,
				"tenant-b": `["iso_metric","iso_only_b"]`,
				"tenant-c": `[]`,
			},
		},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, tenant := range []string{"tenant-a", "tenant-b", "tenant-c"} {
				code, body := a.Query(t, tenant, clustertest.PromAPI+c.path, c.params)
				// The API promises no order of series.
				got := clustertest.SortSeriesList(apiData(t, code, body))
				require.Empty(t, cmpJSON(t, mustJSON(t, c.want[tenant]), got), "tenant %s", tenant)
			}
			code, body := a.Query(t, "", clustertest.PromAPI+c.path, c.params)
			require.Equal(t, http.StatusUnauthorized, code, "GET %s without %s: %s", c.path, clustertest.TenantHeader, body)
		})
	}

	t.Run("missing tenant on POST query and on push", func(t *testing.T) {
		code, body := a.QueryPost(t, "", clustertest.PromAPI+"/query", url.Values{"query": {"iso_metric"}, "time": {at}})
		require.Equal(t, http.StatusUnauthorized, code, "POST query: %s", body)
		code, sbody := a.Push(t, "", []clustertest.TimeSeries{
			{Labels: clustertest.Labels("__name__", "iso_metric", "instance", "i2", "job", "shared"), Samples: []clustertest.Sample{{T: t1, V: 5}}},
		})
		require.Equal(t, http.StatusUnauthorized, code, "push: %s", sbody)
		// The refused push stored nothing anywhere.
		for _, tenant := range []string{"tenant-a", "tenant-b", "anonymous"} {
			code, body := a.Query(t, tenant, clustertest.PromAPI+"/series", with(rng, "match[]", `{instance="i2"}`))
			require.Empty(t, cmpJSON(t, mustJSON(t, `[]`), apiData(t, code, body)), "tenant %s", tenant)
		}
	})
}

// TestMultitenancyDisabled checks that with -auth.multitenancy-enabled=false
// every request, with or without X-Scope-OrgID, belongs to tenant
// "anonymous".
func TestMultitenancyDisabled(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.multitenancy-enabled=false"}})
	ts := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	pushOK(t, a, "", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "single_tenant", "from", "no-header"), Samples: []clustertest.Sample{{T: ts, V: 1}}},
	})
	pushOK(t, a, "someone", []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "single_tenant", "from", "header"), Samples: []clustertest.Sample{{T: ts, V: 2}}},
	})
	want := mustJSON(t, `{"resultType":"vector","result":[`+
		`{"metric":{"__name__":"single_tenant","from":"header"},"value":[`+clustertest.JSONTimestamp(ts)+`,"2"]},`+
		`{"metric":{"__name__":"single_tenant","from":"no-header"},"value":[`+clustertest.JSONTimestamp(ts)+`,"1"]}]}`)
	for _, tenant := range []string{"", "someone", "other"} {
		code, body := a.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {"single_tenant"}, "time": {clustertest.FormatAPITime(ts)}})
		require.Empty(t, cmpJSON(t, want, clustertest.SortVector(apiData(t, code, body))), "query with tenant header %q", tenant)
	}
}
