package querier

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// bothAPIs serves q over HTTP and over gRPC behind the same authenticator,
// as cmd does.
type bothAPIs struct {
	http *httptest.Server
	grpc string
}

func serveBoth(t testing.TB, q *Querier, a *auth.Authenticator) bothAPIs {
	t.Helper()
	return serveBothTenancy(t, q, a, auth.OneTenant)
}

func serveBothTenancy(t testing.TB, q *Querier, a *auth.Authenticator, tenancy auth.Tenancy) bothAPIs {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", a.Middleware(q.Handler(), tenancy))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	prefix := "/" + QueryServiceName + "/"
	s := grpc.NewServer(grpccodec.ServerOption(),
		grpc.ChainStreamInterceptor(a.StreamInterceptor(prefix, tenancy)),
		grpc.ChainUnaryInterceptor(a.UnaryInterceptor(prefix, tenancy)))
	argusquerypb.RegisterQueryServer(s, q.QueryServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return bothAPIs{http: srv, grpc: ln.Addr().String()}
}

func headerAuth(t testing.TB) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{Type: auth.TypeHeader}, auth.Options{MultitenancyEnabled: true}, auth.Deps{})
	require.NoError(t, err)
	return a
}

// tokenAuth accepts token-a for team-a; loaded says whether the token file
// is loaded (Starting) or not yet.
func tokenAuth(t testing.TB, loaded bool) *auth.Authenticator {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	require.NoError(t, os.WriteFile(file, []byte("tokens:\n  - sha256: \""+auth.HashToken("token-a")+"\"\n    tenants: [team-a]\n"), 0o600))
	a, err := auth.New(auth.Config{Type: auth.TypeToken, TokenFile: file}, auth.Options{MultitenancyEnabled: true, ReloadPeriod: time.Minute}, auth.Deps{})
	require.NoError(t, err)
	if loaded {
		require.NoError(t, a.Starting(t.Context()))
	}
	return a
}

// httpError sends GET path?form with headers and returns the status and the
// error text of the answer: the "error" of the JSON envelope, or a
// plain-text body without its newline.
func httpError(t testing.TB, srv *httptest.Server, path string, form url.Values, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+PathPrefix+path+"?"+form.Encode(), nil)
	require.NoError(t, err)
	req.Header = h
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp.StatusCode, decodeError(t, apiResponse{status: resp.StatusCode, body: string(b)}).Error
	}
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

// TestQueryServer_ErrorContract asks, for every err-argus-* ID that a query
// can meet, the same query over HTTP and over gRPC: the gRPC status must
// carry the HTTP answer's text exactly, starting with the ID, and the ID's
// gRPC code (docs/errors.md).
func TestQueryServer_ErrorContract(t *testing.T) {
	const hour = 60 * 60_000
	instant := url.Values{"query": {"up"}, "time": {secs(t0 + 45*60_000)}}
	long := url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(t0 + 2*hour)}, "step": {"60"}}
	callInstant := func(c *client.Client) error {
		_, err := c.Query(context.Background(), client.InstantQuery{Expr: "up", Time: time.UnixMilli(t0 + 45*60_000)})
		return err
	}
	callRange := func(c *client.Client) error {
		_, err := c.QueryRange(context.Background(), client.RangeQuery{Expr: "up", Start: time.UnixMilli(t0), End: time.UnixMilli(t0 + 2*hour), Step: time.Minute})
		return err
	}
	withLimits := func(mutate func(*limits.Limits)) func(t *testing.T) Deps {
		return func(t *testing.T) Deps {
			_, src := newFakeSource(t)
			return Deps{Source: src, Limits: newFakeLimits(t).set(tenantA, mutate)}
		}
	}
	plain := withLimits(func(*limits.Limits) {})
	tests := []struct {
		id     apierror.ID
		deps   func(t *testing.T) Deps
		auth   func(t testing.TB) *auth.Authenticator
		tenant string
		token  string
		form   url.Values
		path   string
		call   func(*client.Client) error
	}{
		{id: apierror.MissingTenant, deps: plain, auth: headerAuth, form: instant, call: callInstant},
		{id: apierror.InvalidTenant, deps: plain, auth: headerAuth, tenant: "team-a|team-b", form: instant, call: callInstant},
		{id: apierror.InvalidTenant, deps: plain, auth: headerAuth, tenant: "..", form: instant, call: callInstant},
		{id: apierror.Unauthorized, deps: plain, auth: func(t testing.TB) *auth.Authenticator { return tokenAuth(t, true) }, tenant: tenantA, token: "wrong", form: instant, call: callInstant},
		{id: apierror.Unauthorized, deps: plain, auth: func(t testing.TB) *auth.Authenticator { return tokenAuth(t, true) }, tenant: tenantA, form: instant, call: callInstant},
		{id: apierror.NotReady, deps: plain, auth: func(t testing.TB) *auth.Authenticator { return tokenAuth(t, false) }, tenant: tenantA, token: "token-a", form: instant, call: callInstant},
		{id: apierror.MaxFetchedSeriesPerQuery, deps: withLimits(func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = 2 }), auth: headerAuth, tenant: tenantA, form: instant, call: callInstant},
		{id: apierror.MaxFetchedChunksPerQuery, deps: withLimits(func(l *limits.Limits) { l.MaxFetchedChunksPerQuery = 2 }), auth: headerAuth, tenant: tenantA, form: instant, call: callInstant},
		{id: apierror.MaxQueryLength, deps: withLimits(func(l *limits.Limits) { l.MaxQueryLength = time.Hour }), auth: headerAuth, tenant: tenantA, path: "/api/v1/query_range", form: long, call: callRange},
		{id: apierror.QueryTimeout, deps: func(t *testing.T) Deps {
			return Deps{Source: startSource(t, &heldSource{}), Limits: newFakeLimits(t).set(tenantA, func(l *limits.Limits) { l.QueryTimeout = 50 * time.Millisecond })}
		}, auth: headerAuth, tenant: tenantA, form: instant, call: callInstant},
		{id: apierror.QueryUnavailable, deps: func(t *testing.T) Deps {
			deps := fanoutDeps(t, newFakeLimits(t))
			down := map[string]arguspb.SeriesSourceClient{"a": startSource(t, downSource{}), "b": startSource(t, downSource{})}
			good := deps.Sources
			deps.Sources = func(addr string) (arguspb.SeriesSourceClient, error) {
				if c, ok := down[addr]; ok {
					return c, nil
				}
				return good(addr)
			}
			return deps
		}, auth: headerAuth, tenant: tenantA, form: instant, call: callInstant},
	}
	for _, tc := range tests {
		t.Run(string(tc.id)+" "+tc.tenant+" "+tc.token, func(t *testing.T) {
			q, err := New(defaultConfig(t), tc.deps(t))
			require.NoError(t, err)
			apis := serveBoth(t, q, tc.auth(t))
			h := http.Header{}
			if tc.tenant != "" {
				h.Set(tenant.HeaderName, tc.tenant)
			}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			path := tc.path
			if path == "" {
				path = "/api/v1/query"
			}
			code, want := httpError(t, apis.http, path, tc.form, h)
			require.Equal(t, tc.id.Status(), code, want)
			require.True(t, strings.HasPrefix(want, string(tc.id)+": "), want)

			c, err := client.Dial(apis.grpc, client.Options{Tenant: tc.tenant, Token: tc.token})
			require.NoError(t, err)
			defer c.Close()
			err = tc.call(c)
			require.Error(t, err)
			require.Equal(t, want, status.Convert(err).Message())
			require.Equal(t, tc.id.GRPCCode(), status.Code(err))
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, string(tc.id), ce.ID)
		})
	}
}

// TestQueryServer_PrometheusErrors maps the errors of Prometheus's API that
// have no ID by their errorType, with the same text.
func TestQueryServer_PrometheusErrors(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	apis := serveBoth(t, q, headerAuth(t))
	c := dialTest(t, apis.grpc, tenantA)
	h := http.Header{tenant.HeaderName: {tenantA}}
	for _, tc := range []struct {
		form url.Values
		path string
		call func() error
		code codes.Code
	}{
		{url.Values{"query": {"sum("}}, "/api/v1/query", func() error {
			_, err := c.Query(t.Context(), client.InstantQuery{Expr: "sum("})
			return err
		}, codes.InvalidArgument},
		{url.Values{"query": {"up"}, "start": {secs(t0 + 60_000)}, "end": {secs(t0)}, "step": {"60"}}, "/api/v1/query_range", func() error {
			_, err := c.QueryRange(t.Context(), client.RangeQuery{Expr: "up", Start: time.UnixMilli(t0 + 60_000), End: time.UnixMilli(t0), Step: time.Minute})
			return err
		}, codes.InvalidArgument},
		{url.Values{"query": {"up"}, "start": {secs(t0)}, "end": {secs(t0 + 24*60*60_000)}, "step": {"1"}}, "/api/v1/query_range", func() error {
			_, err := c.QueryRange(t.Context(), client.RangeQuery{Expr: "up", Start: time.UnixMilli(t0), End: time.UnixMilli(t0 + 24*60*60_000), Step: time.Second})
			return err
		}, codes.InvalidArgument},
		{url.Values{"query": {`{__name__=~".+"} + on() group_left() vector(1)`}, "time": {secs(t0 + 60_000)}}, "/api/v1/query", func() error {
			_, err := c.Query(t.Context(), client.InstantQuery{Expr: `{__name__=~".+"} + on() group_left() vector(1)`, Time: time.UnixMilli(t0 + 60_000)})
			return err
		}, codes.InvalidArgument},
	} {
		_, want := httpError(t, apis.http, tc.path, tc.form, h)
		err := tc.call()
		require.Equal(t, want, status.Convert(err).Message())
		require.Equal(t, tc.code, status.Code(err), want)
	}
}
