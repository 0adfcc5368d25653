package querier

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// tenantC has a series with its own __tenant_id__, and two series that
// adding __tenant_id__ reorders.
const tenantC = "team-c"

// serveFederated serves h at PathPrefix+"/" with the X-Scope-OrgID header as
// the tenant, unvalidated, so that it may name several tenants (a|b) as
// cmd's middleware lets through with federation enabled.
func serveFederated(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(tenant.With(r.Context(), r.Header.Get(tenant.HeaderName))))
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// newFederatedQuerier serves a querier with federation enabled over the
// fixture, tenantC's series added.
func newFederatedQuerier(t *testing.T, lim tenantLimits) (*fakeSource, *httptest.Server) {
	t.Helper()
	fake, client := newFakeSource(t)
	flat := make([]sample, numSamples)
	for i := range flat {
		flat[i] = sample{t: t0 + int64(i)*scrapeInterval, v: 1}
	}
	c := []fixtureSeries{
		{labels.FromStrings("__name__", "x", tenantLabel, "own"), flat},
		{labels.FromStrings("Zone", "z"), flat},
		{labels.FromStrings("Zone", "z", "__name__", "y"), flat},
	}
	slices.SortFunc(c, func(a, b fixtureSeries) int { return labels.Compare(a.lset, b.lset) })
	fake.data[tenantC] = c
	cfg := defaultConfig(t)
	cfg.TenantFederationEnabled = true
	q, err := New(cfg, Deps{Source: client, Limits: lim})
	require.NoError(t, err)
	return fake, serveFederated(t, q.Handler())
}

func (f *fakeSource) numSeriesRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func TestFederation_API(t *testing.T) {
	fake, srv := newFederatedQuerier(t, newFakeLimits(t))
	at := secs(t0 + 45*60_000)
	ab := tenantA + "|" + tenantB
	tests := []struct {
		name     string
		tenant   string
		path     string
		form     url.Values
		want     string
		requests int // Series calls made, when not 0
	}{
		{
			name: "every series gets its tenant", tenant: ab, path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"up","__tenant_id__":"team-a","instance":"a","job":"api"},"value":[1700002700,"1"]},
				{"metric":{"__name__":"up","__tenant_id__":"team-a","instance":"b","job":"api"},"value":[1700002700,"1"]},
				{"metric":{"__name__":"up","__tenant_id__":"team-a","instance":"c","job":"db"},"value":[1700002700,"1"]},
				{"metric":{"__name__":"up","__tenant_id__":"team-b","instance":"z","job":"other"},"value":[1700002700,"1"]}]}}`,
			requests: 2,
		},
		{
			name: "aggregation by tenant", tenant: ab, path: "/api/v1/query", form: url.Values{"query": {"sum by (__tenant_id__) (up)"}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__tenant_id__":"team-a"},"value":[1700002700,"3"]},
				{"metric":{"__tenant_id__":"team-b"},"value":[1700002700,"1"]}]}}`,
		},
		{
			name: "a matcher on the tenant picks the tenants read", tenant: ab, path: "/api/v1/query", form: url.Values{"query": {`up{__tenant_id__="team-b"}`}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"up","__tenant_id__":"team-b","instance":"z","job":"other"},"value":[1700002700,"1"]}]}}`,
			requests: 1,
		},
		{
			name: "a regular expression on the tenant", tenant: ab, path: "/api/v1/query", form: url.Values{"query": {`count(up{__tenant_id__=~"team-.*"})`}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700002700,"4"]}]}}`,
		},
		{
			name: "no tenant matches", tenant: ab, path: "/api/v1/query", form: url.Values{"query": {`up{__tenant_id__="nobody"}`}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[]}}`, requests: -1,
		},
		{
			name: "a range query", tenant: ab, path: "/api/v1/query_range",
			form: url.Values{"query": {"count by (__tenant_id__) (up)"}, "start": {at}, "end": {secs(t0 + 47*60_000)}, "step": {"60"}},
			want: `{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"__tenant_id__":"team-a"},"values":[[1700002700,"3"],[1700002760,"3"],[1700002820,"3"]]},
				{"metric":{"__tenant_id__":"team-b"},"values":[[1700002700,"1"],[1700002760,"1"],[1700002820,"1"]]}]}}`,
		},
		{
			name: "one tenant is read alone, unlabelled", tenant: tenantB + "|" + tenantB, path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"up","instance":"z","job":"other"},"value":[1700002700,"1"]}]}}`,
		},
		{
			name: "series", tenant: ab, path: "/api/v1/series", form: url.Values{"match[]": {`up{instance=~"a|z"}`}},
			want: `{"status":"success","data":[
				{"__name__":"up","__tenant_id__":"team-a","instance":"a","job":"api"},
				{"__name__":"up","__tenant_id__":"team-b","instance":"z","job":"other"}]}`,
		},
		{
			name: "label names", tenant: ab, path: "/api/v1/labels",
			want: `{"status":"success","data":["__name__","__tenant_id__","code","instance","job","le","room"]}`,
		},
		{
			name: "label names of the tenants picked", tenant: ab, path: "/api/v1/labels", form: url.Values{"match[]": {`{__tenant_id__="team-b"}`}},
			want: `{"status":"success","data":["__name__","__tenant_id__","code","instance","job","room"]}`,
		},
		{
			name: "tenants", tenant: ab, path: "/api/v1/label/__tenant_id__/values",
			want: `{"status":"success","data":["team-a","team-b"]}`,
		},
		{
			name: "tenants picked", tenant: ab, path: "/api/v1/label/__tenant_id__/values", form: url.Values{"match[]": {`{__tenant_id__=~"team-a|team-x"}`}},
			want: `{"status":"success","data":["team-a"]}`,
		},
		{
			name: "label values", tenant: ab, path: "/api/v1/label/job/values",
			want: `{"status":"success","data":["api","db","other"]}`,
		},
		{
			name: "label values of the tenants picked", tenant: ab, path: "/api/v1/label/job/values", form: url.Values{"match[]": {`up{__tenant_id__="team-b"}`}},
			want: `{"status":"success","data":["other"]}`,
		},
		{
			name: "a series' own tenant label is kept", tenant: tenantA + "|" + tenantC, path: "/api/v1/query", form: url.Values{"query": {"x"}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"__name__":"x","__tenant_id__":"team-c","original___tenant_id__":"own"},"value":[1700002700,"1"]}]}}`,
		},
		{
			name: "a matcher on the original tenant label", tenant: tenantA + "|" + tenantC, path: "/api/v1/query", form: url.Values{"query": {`count({original___tenant_id__="own"})`}, "time": {at}},
			want: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700002700,"1"]}]}}`,
		},
		{
			name: "label names with the original tenant label", tenant: tenantA + "|" + tenantC, path: "/api/v1/labels", form: url.Values{"match[]": {"x"}},
			want: `{"status":"success","data":["__name__","__tenant_id__","original___tenant_id__"]}`,
		},
		{
			name: "values of the original tenant label", tenant: tenantA + "|" + tenantC, path: "/api/v1/label/original___tenant_id__/values",
			want: `{"status":"success","data":["own"]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fake.numSeriesRequests()
			got := apiRequest{http.MethodGet, tc.path, tc.form, tc.tenant}.do(t, srv)
			require.Equal(t, http.StatusOK, got.status, got.body)
			require.Empty(t, cmp.Diff(decodeJSON(t, tc.want), decodeJSON(t, got.body)))
			switch {
			case tc.requests > 0:
				require.Equal(t, tc.requests, fake.numSeriesRequests()-before)
			case tc.requests < 0:
				require.Equal(t, before, fake.numSeriesRequests())
			}
			if tc.requests > 0 {
				// No matcher on __tenant_id__ reaches a source.
				for _, m := range fake.lastSeriesRequest().GetMatchers() {
					require.NotEqual(t, tenantLabel, m.GetName())
				}
			}
		})
	}
}

// TestFederation_SortsRelabelledSeries checks that a tenant's series stay
// sorted once labelled, which the merge needs: {Zone="z"} sorts before
// {Zone="z",__name__="y"} but after it once both get __tenant_id__.
func TestFederation_SortsRelabelledSeries(t *testing.T) {
	fake, client := newFakeSource(t)
	fake.data[tenantC] = []fixtureSeries{
		{labels.FromStrings("Zone", "z"), []sample{{t: t0, v: 1}}},
		{labels.FromStrings("Zone", "z", "__name__", "y"), []sample{{t: t0, v: 1}}},
	}
	q := &queryable{src: client, metrics: newMetrics(nil), federation: true}
	cq, err := q.ChunkQuerier(t0, t0+60_000)
	require.NoError(t, err)
	ctx := tenant.With(context.Background(), tenantA+"|"+tenantC)
	set := cq.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "Zone", "z"))
	var got []string
	var prev labels.Labels
	for set.Next() {
		lset := set.At().Labels()
		if len(got) > 0 {
			require.Negative(t, labels.Compare(prev, lset), "%s after %s", lset, prev)
		}
		prev = lset
		got = append(got, lset.String())
	}
	require.NoError(t, set.Err())
	require.Equal(t, []string{
		`{Zone="z", __name__="y", __tenant_id__="team-c"}`,
		`{Zone="z", __tenant_id__="team-c"}`,
	}, got)
}

func TestFederation_Rejections(t *testing.T) {
	at := secs(t0 + 45*60_000)
	ab := tenantA + "|" + tenantB
	reqs := []apiRequest{
		{path: "/api/v1/query", form: url.Values{"query": {"up"}, "time": {at}}},
		{path: "/api/v1/series", form: url.Values{"match[]": {"up"}}},
		{path: "/api/v1/labels"},
		{path: "/api/v1/label/job/values"},
	}

	t.Run("federation disabled", func(t *testing.T) {
		q, _ := newTestQuerier(t, nil)
		srv := serveFederated(t, q.Handler())
		for _, r := range reqs {
			r.method, r.tenant = http.MethodGet, ab
			got := r.do(t, srv)
			requireRejected(t, got, apierror.InvalidTenant,
				`tenant "team-a|team-b" names several tenants and tenant federation is disabled (-tenant-federation.enabled=false)`)
			require.Equal(t, http.StatusUnauthorized, got.status)
		}
	})

	t.Run("invalid tenant", func(t *testing.T) {
		_, srv := newFederatedQuerier(t, newFakeLimits(t))
		for orgID, want := range map[string]string{
			"team-a|team/b": `tenant "team-a|team/b": invalid tenant ID: character '/' is not allowed`,
			"team-a||":      `tenant "team-a||": invalid tenant ID: empty`,
		} {
			got := apiRequest{http.MethodGet, "/api/v1/query", reqs[0].form, orgID}.do(t, srv)
			requireRejected(t, got, apierror.InvalidTenant, want)
		}
	})

	t.Run("a label call over one tenant's query length", func(t *testing.T) {
		lim := newFakeLimits(t).set(tenantB, func(l *limits.Limits) { l.MaxQueryLength = time.Hour })
		_, srv := newFederatedQuerier(t, lim)
		form := url.Values{"start": {secs(t0)}, "end": {secs(t0 + 2*60*60_000)}}
		for _, path := range []string{"/api/v1/labels", "/api/v1/label/job/values"} {
			got := apiRequest{http.MethodGet, path, form, ab}.do(t, srv)
			requireRejected(t, got, apierror.MaxQueryLength,
				`tenant "team-b": the request spans 2h0m0s, longer than -querier.max-query-length=1h0m0s`)
		}
		form.Set("match[]", `{__tenant_id__="team-a"}`)
		got := apiRequest{http.MethodGet, "/api/v1/labels", form, ab}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
	})

	t.Run("each tenant's own limits", func(t *testing.T) {
		lim := newFakeLimits(t).
			set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 2 }).
			set(tenantB, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 1 })
		_, srv := newFederatedQuerier(t, lim)
		got := apiRequest{http.MethodGet, "/api/v1/query", reqs[0].form, ab}.do(t, srv)
		requireRejected(t, got, apierror.MaxFetchedSeriesPerQuery,
			`tenant "team-a": the query fetches more series than -querier.max-fetched-series-per-query=2, the first series over the limit is {__name__="up", instance="c", job="db"}`)
		// team-b's one series is within its limit; team-a is not read.
		got = apiRequest{http.MethodGet, "/api/v1/query", url.Values{"query": {`up{__tenant_id__="team-b"}`}, "time": {at}}, ab}.do(t, srv)
		require.Equal(t, http.StatusOK, got.status, got.body)
	})
}
