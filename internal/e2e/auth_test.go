package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestTokenAuth runs argus with -auth.type=token and the real Prometheus
// remote-writing four streams: one with its tenant's token, one with another
// tenant's token, one with a wrong token and one without a token. Only the
// first may land, exactly; the others get 401, and their tenants have
// nothing written (no head is even opened for them). Reads follow the same
// rules.
func TestTokenAuth(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	require.NoError(t, os.WriteFile(tokens, []byte(fmt.Sprintf(`tokens:
  - sha256: %q
    tenants: [team-a]
  - sha256: %q
    tenants: [team-b]
  - sha256: %q
    tenants: [team-c]
`, auth.HashToken("token-a"), auth.HashToken("token-b"), auth.HashToken("token-c"))), 0o600))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.type=token", "-auth.token-file=" + tokens}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: a.PushURL(), Tenant: "team-a", BearerToken: "token-a", Name: "good"},
			{URL: a.PushURL(), Tenant: "team-b", BearerToken: "token-a", Name: "other-tenants-token"},
			{URL: a.PushURL(), Tenant: "team-c", BearerToken: "wrong", Name: "wrong-token"},
			{URL: a.PushURL(), Tenant: "team-b", Name: "no-token"},
		},
	})
	w := clustertest.NewEquivalenceWindow(t, p, 10*time.Second, 0, 15*time.Second)
	w.SleepPastEnd()

	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	read := func(tenant string, opts ...func(*http.Request)) (int, string) {
		q := url.Values{"query": {`count({__name__=~".+"})`}, "time": {clustertest.FormatAPITime(w.End.UnixMilli())}}
		req, err := http.NewRequest(http.MethodGet, a.URL()+clustertest.PromAPI+"/query?"+q.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set(clustertest.TenantHeader, tenant)
		for _, o := range opts {
			o(req)
		}
		code, body := a.Do(t, req)
		return code, string(body)
	}

	// The good stream lands exactly. RequireRawEqual reads through a
	// process's Query, which sends no token: read through a token-free view
	// of the same data instead, by comparing counts per metric name.
	clustertest.Eventually(t, func() string {
		code, body := read("team-a", bearer("token-a"))
		if code != http.StatusOK {
			return fmt.Sprintf("team-a read answered %d: %s", code, body)
		}
		pc, pb := p.Query(t, "/api/v1/query", url.Values{"query": {`count({__name__=~".+"})`}, "time": {clustertest.FormatAPITime(w.End.UnixMilli())}})
		d, _ := clustertest.DiffBodies(t, pc, pb, code, []byte(body), true)
		return d
	}, 60*time.Second)
	require.Zero(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": "good"}))

	for _, name := range []string{"other-tenants-token", "wrong-token", "no-token"} {
		require.Positive(t, p.Metric(t, "prometheus_remote_storage_samples_failed_total", map[string]string{"remote_name": name}), name)
	}
	log := p.Log(t)
	require.Contains(t, log, "401 Unauthorized: err-argus-unauthorized")
	require.NotContains(t, log, "token-a", "argus must never echo a token")

	// Nothing written for team-b and team-c: no head was opened for them.
	require.Equal(t, 1.0, a.Metric(t, "argus_ingester_tenants", nil))
	require.Positive(t, a.Metric(t, "argus_auth_requests_total", map[string]string{"outcome": "unauthorized"}))

	for _, c := range []struct {
		name   string
		tenant string
		opts   []func(*http.Request)
		want   int
	}{
		{"own token", "team-b", []func(*http.Request){bearer("token-b")}, http.StatusOK},
		{"no token", "team-a", nil, http.StatusUnauthorized},
		{"wrong token", "team-a", []func(*http.Request){bearer("nope")}, http.StatusUnauthorized},
		{"another tenant's token", "team-a", []func(*http.Request){bearer("token-b")}, http.StatusUnauthorized},
	} {
		code, body := read(c.tenant, c.opts...)
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		if c.want == http.StatusOK {
			// team-b's pushes were all refused: it has nothing.
			require.JSONEq(t, `{"resultType":"vector","result":[]}`, string(mustMarshal(t, apiData(t, code, []byte(body)))))
		} else {
			require.Regexp(t, `^err-argus-unauthorized: `, body)
		}
	}
	// The token alone names a single-tenant token's tenant.
	req, err := http.NewRequest(http.MethodGet, a.URL()+"/api/v1/user_limits", nil)
	require.NoError(t, err)
	bearer("token-a")(req)
	code, body := a.Do(t, req)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"tenant":"team-a"`)
}

// TestTenantFederation checks federated reads: off by default (401), and
// with -tenant-federation.enabled a query for a|b merges both tenants'
// series, each labelled __tenant_id__, while a push may still name one
// tenant only.
func TestTenantFederation(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	off := clustertest.StartArgus(t, clustertest.Options{})
	on := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-tenant-federation.enabled=true"}})
	now := time.Now().Truncate(time.Second).UnixMilli()
	at := clustertest.FormatAPITime(now)
	for _, a := range []*clustertest.Process{off, on} {
		for tn, v := range map[string]float64{"a": 1, "b": 2} {
			pushOK(t, a, tn, []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "fed", "job", "j"), Samples: []clustertest.Sample{{T: now, V: v}}}})
		}
	}
	code, body := off.Query(t, "a|b", clustertest.PromAPI+"/query", url.Values{"query": {"fed"}, "time": {at}})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Regexp(t, `^err-argus-invalid-tenant: `, string(body))

	ts := clustertest.JSONTimestamp(now)
	code, body = on.Query(t, "a|b", clustertest.PromAPI+"/query", url.Values{"query": {"fed"}, "time": {at}})
	require.Equal(t, mustJSON(t, `{"resultType":"vector","result":[
		{"metric":{"__name__":"fed","__tenant_id__":"a","job":"j"},"value":[`+ts+`,"1"]},
		{"metric":{"__name__":"fed","__tenant_id__":"b","job":"j"},"value":[`+ts+`,"2"]}]}`), apiData(t, code, body))
	code, body = on.Query(t, "b|a", clustertest.PromAPI+"/query", url.Values{"query": {`sum(fed{__tenant_id__="b"})`}, "time": {at}})
	require.Equal(t, mustJSON(t, `{"resultType":"vector","result":[{"metric":{},"value":[`+ts+`,"2"]}]}`), apiData(t, code, body))
	code, body = on.Query(t, "a|b", clustertest.PromAPI+"/label/__tenant_id__/values", nil)
	require.Equal(t, mustJSON(t, `["a","b"]`), apiData(t, code, body))

	code, pushBody := on.Push(t, "a|b", []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "fed"), Samples: []clustertest.Sample{{T: now + 1000, V: 3}}}})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Regexp(t, `^err-argus-invalid-tenant: `, pushBody)
}
