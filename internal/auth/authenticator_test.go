package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/filereload/filereloadtest"
	"github.com/argus-tsdb/argus/internal/tenant"
)

const period = 10 * time.Second

// Every test token contains "secret", which no response may echo.
var testTokens = "tokens:\n" +
	"  - sha256: " + HashToken("secret-a") + "\n    tenants: [team-a]\n" +
	"  - sha256: " + HashToken("secret-ab") + "\n    tenants: [team-a, team-b]\n" +
	"  - sha256: " + HashToken("secret-anon") + "\n    tenants: [anonymous]\n"

type testAuth struct {
	*Authenticator
	file string
	reg  *prometheus.Registry
	logs *filereloadtest.Logs
}

type multitenancy bool

const (
	multiTenant  multitenancy = true
	singleTenant multitenancy = false
)

// newTestAuth returns an Authenticator of type typ; with TypeToken it reads
// a token file holding content (not written if content is empty).
func newTestAuth(t testing.TB, typ string, mt multitenancy, content string) *testAuth {
	t.Helper()
	cfg := Config{Type: typ}
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	if typ == TypeToken {
		cfg.TokenFile = file
		if content != "" {
			filereloadtest.WriteFile(t, file, content)
		}
	}
	reg := prometheus.NewRegistry()
	logs := &filereloadtest.Logs{}
	a, err := New(cfg, Options{MultitenancyEnabled: bool(mt), ReloadPeriod: period}, Deps{
		Logger:     logs.Logger(),
		Registerer: reg,
	})
	require.NoError(t, err)
	return &testAuth{Authenticator: a, file: file, reg: reg, logs: logs}
}

// trackedBody records whether a handler read the request body.
type trackedBody struct{ read bool }

func (b *trackedBody) Read([]byte) (int, error) { b.read = true; return 0, io.EOF }
func (b *trackedBody) Close() error             { return nil }

type result struct {
	status   int
	body     string
	header   http.Header
	called   bool
	tenant   string
	bodyRead bool
}

// serve sends one request with headers kv (name, value, ...) through
// a.Middleware.
func serve(t testing.TB, a *Authenticator, tenancy Tenancy, kv ...string) result {
	t.Helper()
	var res result
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.called = true
		id, err := tenant.FromContext(r.Context())
		require.NoError(t, err)
		res.tenant = id
		w.WriteHeader(http.StatusNoContent)
	})
	body := &trackedBody{}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/push", body)
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	rec := httptest.NewRecorder()
	a.Middleware(next, tenancy).ServeHTTP(rec, req)
	res.status, res.body, res.header, res.bodyRead = rec.Code, rec.Body.String(), rec.Header(), body.read
	return res
}

const (
	orgID = tenant.HeaderName
	authz = "Authorization"
)

type middlewareCase struct {
	name    string
	tenancy Tenancy
	headers []string
	// want is the tenant in the context if next is called, else the exact
	// start of the body.
	want string
	// status is the status of a refusal (401 unless set).
	status int
}

func runMiddlewareCases(t *testing.T, a *Authenticator, cases []middlewareCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, a, tc.tenancy, tc.headers...)
			require.False(t, res.bodyRead, "the body is never read here")
			if !strings.HasPrefix(tc.want, "err-argus-") {
				require.True(t, res.called, "next must be called: %d %s", res.status, res.body)
				require.Equal(t, http.StatusNoContent, res.status)
				require.Equal(t, tc.want, res.tenant)
				return
			}
			require.False(t, res.called, "next must not be called")
			status := tc.status
			if status == 0 {
				status = http.StatusUnauthorized
			}
			require.Equal(t, status, res.status)
			require.Equal(t, "text/plain; charset=utf-8", res.header.Get("Content-Type"))
			require.True(t, strings.HasPrefix(res.body, tc.want), "body %q, want prefix %q", res.body, tc.want)
			require.NotContains(t, res.body, "secret", "a token must never be echoed")
			if strings.HasPrefix(tc.want, "err-argus-unauthorized") {
				require.Equal(t, `Bearer realm="argus"`, res.header.Get("WWW-Authenticate"))
			} else {
				require.Empty(t, res.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestMiddleware_Header(t *testing.T) {
	a := newTestAuth(t, TypeHeader, multiTenant, "")
	require.NoError(t, a.Starting(context.Background()))
	long := strings.Repeat("x", tenant.MaxLength+1)
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "one tenant", headers: []string{orgID, "team-a"}, want: "team-a"},
		{name: "authorization ignored", headers: []string{orgID, "team-a", authz, "Bearer nonsense"}, want: "team-a"},
		{name: "missing", want: "err-argus-missing-tenant: the X-Scope-OrgID header is missing\n"},
		{name: "empty", headers: []string{orgID, ""}, want: "err-argus-missing-tenant: the X-Scope-OrgID header is missing\n"},
		{name: "missing with token", headers: []string{authz, "Bearer secret-a"}, want: "err-argus-missing-tenant: "},
		{name: "bad character", headers: []string{orgID, "team a"},
			want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "team a": invalid tenant ID: character ' ' is not allowed`},
		{name: "dot dot", headers: []string{orgID, ".."}, want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "..": invalid tenant ID`},
		{name: "too long", headers: []string{orgID, long},
			want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "` + long[:tenant.MaxLength] + `"... (151 bytes): invalid tenant ID: longer than 150`},
		{name: "two headers", headers: []string{orgID, "team-a", orgID, "team-b"},
			want: "err-argus-invalid-tenant: the request has 2 X-Scope-OrgID headers, not one"},
		{name: "federated where one is required", headers: []string{orgID, "team-b|team-a"},
			want: "err-argus-invalid-tenant: X-Scope-OrgID names 2 tenants (team-a|team-b) where one is required: pushes take one tenant, and reads take several only with -tenant-federation.enabled"},
		{name: "same tenant twice is one", headers: []string{orgID, "team-a|team-a"}, want: "team-a"},
		{name: "federated", tenancy: Federated, headers: []string{orgID, "team-b|team-a|team-b"}, want: "team-a|team-b"},
		{name: "federated single", tenancy: Federated, headers: []string{orgID, "team-a"}, want: "team-a"},
		{name: "federated empty part", tenancy: Federated, headers: []string{orgID, "team-a|"},
			want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "": invalid tenant ID: empty`},
		{name: "federated invalid part", tenancy: Federated, headers: []string{orgID, "team-a|team b"},
			want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "team b"`},
		{name: "federated missing", tenancy: Federated, want: "err-argus-missing-tenant: the X-Scope-OrgID header is missing\n"},
	})
}

func TestMiddleware_HeaderMultitenancyDisabled(t *testing.T) {
	a := newTestAuth(t, TypeHeader, singleTenant, "")
	require.NoError(t, a.Starting(context.Background()))
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "no header", want: tenant.Anonymous},
		{name: "header ignored", headers: []string{orgID, "team-a"}, want: tenant.Anonymous},
		{name: "invalid header ignored", headers: []string{orgID, "team a|.."}, want: tenant.Anonymous},
		{name: "federated", tenancy: Federated, headers: []string{orgID, "team-a|team-b"}, want: tenant.Anonymous},
	})
}

func TestMiddleware_Token(t *testing.T) {
	a := newTestAuth(t, TypeToken, multiTenant, testTokens)
	require.NoError(t, a.Starting(context.Background()))
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "tenant and its token", headers: []string{orgID, "team-a", authz, "Bearer secret-a"}, want: "team-a"},
		{name: "scheme is case-insensitive", headers: []string{orgID, "team-a", authz, "bearer secret-a"}, want: "team-a"},
		{name: "token of two tenants", headers: []string{orgID, "team-b", authz, "Bearer secret-ab"}, want: "team-b"},
		{name: "anonymous is a tenant like any", headers: []string{orgID, "anonymous", authz, "Bearer secret-anon"}, want: "anonymous"},
		{name: "tenant from the token", headers: []string{authz, "Bearer secret-a"}, want: "team-a"},
		{name: "token of several tenants needs the header", headers: []string{authz, "Bearer secret-ab"},
			want: "err-argus-missing-tenant: the X-Scope-OrgID header is missing and the bearer token is valid for several tenants: name one\n"},
		{name: "no token", headers: []string{orgID, "team-a"},
			want: "err-argus-unauthorized: tenant \"team-a\": no bearer token: send one Authorization: Bearer <token> header\n"},
		{name: "no token no tenant", want: "err-argus-unauthorized: no bearer token: send one Authorization: Bearer <token> header\n"},
		{name: "empty token", headers: []string{orgID, "team-a", authz, "Bearer  "}, want: "err-argus-unauthorized: tenant \"team-a\": no bearer token"},
		{name: "basic auth", headers: []string{orgID, "team-a", authz, "Basic c2VjcmV0LWE6"}, want: "err-argus-unauthorized: tenant \"team-a\": no bearer token"},
		{name: "token without scheme", headers: []string{orgID, "team-a", authz, "secret-a"}, want: "err-argus-unauthorized: tenant \"team-a\": no bearer token"},
		{name: "two tokens", headers: []string{orgID, "team-a", authz, "Bearer secret-a", authz, "Bearer secret-ab"},
			want: "err-argus-unauthorized: tenant \"team-a\": no bearer token"},
		{name: "wrong token", headers: []string{orgID, "team-a", authz, "Bearer secret-wrong"},
			want: "err-argus-unauthorized: tenant \"team-a\": the bearer token is not valid\n"},
		{name: "wrong token no tenant", headers: []string{authz, "Bearer secret-wrong"},
			want: "err-argus-unauthorized: the bearer token is not valid\n"},
		{name: "token of another tenant", headers: []string{orgID, "team-b", authz, "Bearer secret-a"},
			want: "err-argus-unauthorized: tenant \"team-b\": the bearer token is not valid\n"},
		{name: "hash is not a token", headers: []string{orgID, "team-a", authz, "Bearer " + HashToken("secret-a")},
			want: "err-argus-unauthorized: tenant \"team-a\": the bearer token is not valid\n"},
		{name: "invalid tenant before token", headers: []string{orgID, "team a", authz, "Bearer secret-wrong"},
			want: `err-argus-invalid-tenant: X-Scope-OrgID: tenant "team a"`},
		{name: "federated", tenancy: Federated, headers: []string{orgID, "team-b|team-a", authz, "Bearer secret-ab"}, want: "team-a|team-b"},
		{name: "federated beyond the token", tenancy: Federated, headers: []string{orgID, "team-a|team-b", authz, "Bearer secret-a"},
			want: "err-argus-unauthorized: tenant \"team-a|team-b\": the bearer token is not valid\n"},
		{name: "federated where one is required", headers: []string{orgID, "team-a|team-b", authz, "Bearer secret-ab"},
			want: "err-argus-invalid-tenant: X-Scope-OrgID names 2 tenants (team-a|team-b) where one is required"},
		{name: "federated from the token needs the header", tenancy: Federated, headers: []string{authz, "Bearer secret-ab"},
			want: "err-argus-missing-tenant: "},
	})
}

func TestMiddleware_AdminToken(t *testing.T) {
	a := newTestAuth(t, TypeToken, multiTenant, testTokens+
		"  - sha256: "+HashToken("secret-admin")+"\n    tenants: [team-a]\n    admin: true\n")
	require.NoError(t, a.Starting(context.Background()))
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "admin token", tenancy: OneTenantAdmin, headers: []string{orgID, "team-a", authz, "Bearer secret-admin"}, want: "team-a"},
		{name: "admin token names its tenant", tenancy: OneTenantAdmin, headers: []string{authz, "Bearer secret-admin"}, want: "team-a"},
		{name: "admin token elsewhere", headers: []string{orgID, "team-a", authz, "Bearer secret-admin"}, want: "team-a"},
		{name: "token not marked admin", tenancy: OneTenantAdmin, headers: []string{orgID, "team-a", authz, "Bearer secret-a"}, status: http.StatusForbidden,
			want: "err-argus-admin-forbidden: tenant \"team-a\": the bearer token is not marked admin in the token file: only admin tokens may call the admin API\n"},
		{name: "admin token of another tenant", tenancy: OneTenantAdmin, headers: []string{orgID, "team-b", authz, "Bearer secret-admin"},
			want: "err-argus-unauthorized: tenant \"team-b\": the bearer token is not valid\n"},
		{name: "no token", tenancy: OneTenantAdmin, headers: []string{orgID, "team-a"},
			want: "err-argus-unauthorized: tenant \"team-a\": no bearer token"},
		{name: "one tenant only", tenancy: OneTenantAdmin, headers: []string{orgID, "team-a|team-b", authz, "Bearer secret-admin"},
			want: "err-argus-invalid-tenant: "},
	})
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.forbidden))
}

// TestMiddleware_AdminHeader shows that with -auth.type=header the admin
// tenancy is one tenant like any other: the proxy in front decides.
func TestMiddleware_AdminHeader(t *testing.T) {
	a := newTestAuth(t, TypeHeader, multiTenant, "")
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "tenant", tenancy: OneTenantAdmin, headers: []string{orgID, "team-a"}, want: "team-a"},
		{name: "no tenant", tenancy: OneTenantAdmin, want: "err-argus-missing-tenant: "},
	})
}

func TestMiddleware_TokenMultitenancyDisabled(t *testing.T) {
	a := newTestAuth(t, TypeToken, singleTenant, testTokens)
	require.NoError(t, a.Starting(context.Background()))
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "anonymous token", headers: []string{authz, "Bearer secret-anon"}, want: tenant.Anonymous},
		{name: "header ignored", headers: []string{orgID, "team-a", authz, "Bearer secret-anon"}, want: tenant.Anonymous},
		{name: "token of a tenant", headers: []string{authz, "Bearer secret-a"},
			want: "err-argus-unauthorized: tenant \"anonymous\": the bearer token is not valid\n"},
		{name: "no token", want: "err-argus-unauthorized: tenant \"anonymous\": no bearer token"},
	})
}

func TestMiddleware_TokenNotLoadedYet(t *testing.T) {
	a := newTestAuth(t, TypeToken, multiTenant, testTokens)
	runMiddlewareCases(t, a.Authenticator, []middlewareCase{
		{name: "before starting", headers: []string{orgID, "team-a", authz, "Bearer secret-a"},
			want: "err-argus-not-ready: the token file is not loaded yet", status: http.StatusServiceUnavailable},
		{name: "invalid tenant still first", headers: []string{orgID, ".."}, want: "err-argus-invalid-tenant: "},
	})
	require.NoError(t, a.Starting(context.Background()))
	require.Equal(t, "team-a", serve(t, a.Authenticator, OneTenant, orgID, "team-a", authz, "Bearer secret-a").tenant)
}

func TestMiddleware_Metrics(t *testing.T) {
	a := newTestAuth(t, TypeToken, multiTenant, testTokens)
	const zero = `
# HELP argus_auth_requests_total HTTP requests through the auth middleware, by outcome (ok, missing_tenant, invalid_tenant, unauthorized, forbidden, not_ready); forbidden is a valid token that is not an admin one on the admin API.
# TYPE argus_auth_requests_total counter
argus_auth_requests_total{outcome="forbidden"} %d
argus_auth_requests_total{outcome="invalid_tenant"} %d
argus_auth_requests_total{outcome="missing_tenant"} %d
argus_auth_requests_total{outcome="not_ready"} %d
argus_auth_requests_total{outcome="ok"} %d
argus_auth_requests_total{outcome="unauthorized"} %d
`
	require.NoError(t, testutil.GatherAndCompare(a.reg, strings.NewReader(fmt.Sprintf(zero, 0, 0, 0, 0, 0, 0)), "argus_auth_requests_total"),
		"every outcome exists at zero from the start")

	serve(t, a.Authenticator, OneTenant, orgID, "team-a", authz, "Bearer secret-a") // not ready
	require.NoError(t, a.Starting(context.Background()))
	serve(t, a.Authenticator, OneTenant, orgID, "team-a", authz, "Bearer secret-a")
	serve(t, a.Authenticator, OneTenant, authz, "Bearer secret-a")
	serve(t, a.Authenticator, OneTenant, authz, "Bearer secret-ab")
	serve(t, a.Authenticator, OneTenant, orgID, "team a")
	serve(t, a.Authenticator, OneTenant, orgID, "team-a|team-b")
	serve(t, a.Authenticator, OneTenant, orgID, "team-b", authz, "Bearer secret-a")
	serve(t, a.Authenticator, OneTenant, orgID, "team-c", authz, "Bearer secret-wrong")
	serve(t, a.Authenticator, OneTenant, orgID, "team-d")
	serve(t, a.Authenticator, OneTenantAdmin, orgID, "team-a", authz, "Bearer secret-a")
	require.NoError(t, testutil.GatherAndCompare(a.reg, strings.NewReader(fmt.Sprintf(zero, 1, 2, 1, 1, 2, 3)), "argus_auth_requests_total"))
}

func TestMiddleware_HeaderModeRegistersNoTokenFileMetrics(t *testing.T) {
	a := newTestAuth(t, TypeHeader, multiTenant, "")
	require.NoError(t, a.Starting(context.Background()))
	n, err := testutil.GatherAndCount(a.reg)
	require.NoError(t, err)
	require.Equal(t, 6, n, "argus_auth_requests_total, one series per outcome, and nothing else")
}
