package auth

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/filereload/filereloadtest"
)

// successes and failures are the token file loads counted so far.
func (a *testAuth) successes() float64 { return testutil.ToFloat64(a.metrics.reload.ReloadSuccesses) }
func (a *testAuth) failures() float64  { return testutil.ToFloat64(a.metrics.reload.ReloadFailures) }

// tenantOf returns the tenant the request with token gets, or its error body.
func (a *testAuth) tenantOf(t testing.TB, token string) string {
	t.Helper()
	res := serve(t, a.Authenticator, OneTenant, "Authorization", "Bearer "+token)
	if !res.called {
		return res.body
	}
	return res.tenant
}

func TestAuthenticator_New(t *testing.T) {
	_, err := New(Config{Type: "jwt"}, Options{}, Deps{})
	require.ErrorContains(t, err, "-auth.type")
	_, err = New(Config{Type: TypeToken, TokenFile: "tokens.yaml"}, Options{MultitenancyEnabled: true}, Deps{})
	require.ErrorContains(t, err, "reload period")
	_, err = New(Config{Type: TypeHeader}, Options{}, Deps{})
	require.NoError(t, err, "header auth needs no reload period")
}

func TestAuthenticator_HeaderServiceDoesNothing(t *testing.T) {
	a := newTestAuth(t, TypeHeader, multiTenant, "")
	require.NoError(t, a.Starting(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, a.Running(ctx))
	require.NoError(t, a.Stopping(context.Background()))
}

func TestAuthenticator_StartingFails(t *testing.T) {
	for name, tc := range map[string]struct {
		content string // empty: no file
		mt      multitenancy
		is      error
		msg     string
	}{
		"missing file":  {"", multiTenant, fs.ErrNotExist, "tokens.yaml"},
		"not yaml":      {"tokens: [", multiTenant, nil, "yaml"},
		"bad hash":      {"tokens:\n  - sha256: abc\n    tenants: [a]\n", multiTenant, nil, "token 1: sha256 must be 64 hex digits"},
		"no anonymous":  {"tokens:\n  - sha256: " + HashToken("x") + "\n    tenants: [a]\n", singleTenant, nil, `no token lists tenant "anonymous"`},
		"unknown field": {"tokens:\n  - sha256: " + HashToken("x") + "\n    tenant: [a]\n", multiTenant, nil, "field tenant not found"},
	} {
		t.Run(name, func(t *testing.T) {
			a := newTestAuth(t, TypeToken, tc.mt, tc.content)
			err := a.Starting(context.Background())
			require.ErrorIs(t, err, ErrTokenFile)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.ErrorContains(t, err, tc.msg)
			require.ErrorContains(t, err, a.file)
			require.Equal(t, 0.0, testutil.ToFloat64(a.metrics.reload.LastReloadSuccessful))
			require.Equal(t, 1.0, a.failures())
		})
	}
}

func TestAuthenticator_Reload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestAuth(t, TypeToken, multiTenant, testTokens)
		require.NoError(t, a.Starting(context.Background()))
		filereloadtest.Run(t, a)
		require.Equal(t, "team-a", a.tenantOf(t, "secret-a"))
		require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.reload.LastReloadSuccessful))

		// Unchanged: reloaded and counted, not logged again.
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, 2.0, a.successes())
		require.Equal(t, 1, strings.Count(a.logs.String(), "token file loaded"))

		// Changed: secret-a revoked, secret-c added.
		filereloadtest.WriteFile(t, a.file, "tokens:\n  - sha256: "+HashToken("secret-c")+"\n    tenants: [team-c]\n")
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, "team-c", a.tenantOf(t, "secret-c"))
		require.True(t, strings.HasPrefix(a.tenantOf(t, "secret-a"), "err-argus-unauthorized: the bearer token is not valid"))
		require.Equal(t, 3.0, a.successes())
		require.Equal(t, 2, strings.Count(a.logs.String(), "token file loaded"))

		// Broken: the last good file stays, one warning per distinct failure.
		filereloadtest.WriteFile(t, a.file, "tokens:\n  - sha256: "+HashToken("secret-d")+"\n    tenants: [\"team d\"]\n")
		for range 3 {
			time.Sleep(period)
			synctest.Wait()
		}
		require.Equal(t, "team-c", a.tenantOf(t, "secret-c"))
		require.True(t, strings.HasPrefix(a.tenantOf(t, "secret-d"), "err-argus-unauthorized: "))
		require.Equal(t, 0.0, testutil.ToFloat64(a.metrics.reload.LastReloadSuccessful))
		require.Equal(t, 3.0, a.failures())
		require.Equal(t, 1, strings.Count(a.logs.String(), "level=WARN"), "one warning per distinct failure:\n%s", a.logs)
		require.Contains(t, a.logs.String(), "see_metric=argus_auth_token_file_last_reload_successful")

		require.NoError(t, os.Remove(a.file))
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, "team-c", a.tenantOf(t, "secret-c"))
		require.Equal(t, 2, strings.Count(a.logs.String(), "level=WARN"), "a new failure is logged:\n%s", a.logs)

		// Half-written (empty): also kept out.
		filereloadtest.WriteFile(t, a.file, "")
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, "team-c", a.tenantOf(t, "secret-c"))
		require.Equal(t, 3, strings.Count(a.logs.String(), "level=WARN"), "a new failure is logged:\n%s", a.logs)

		// Fixed.
		filereloadtest.WriteFile(t, a.file, "tokens:\n  - sha256: "+HashToken("secret-d")+"\n    tenants: [team-d]\n")
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, "team-d", a.tenantOf(t, "secret-d"))
		require.True(t, strings.HasPrefix(a.tenantOf(t, "secret-c"), "err-argus-unauthorized: "))
		require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.reload.LastReloadSuccessful))
		require.Equal(t, 4.0, a.successes())
		require.Equal(t, 5.0, a.failures())
		require.NotContains(t, a.logs.String(), "secret", "no token in the logs")
	})
}

func TestAuthenticator_ReloadMetrics(t *testing.T) {
	a := newTestAuth(t, TypeToken, multiTenant, testTokens)
	require.NoError(t, a.Starting(context.Background()))
	require.NoError(t, testutil.GatherAndCompare(a.reg, strings.NewReader(`
# HELP argus_auth_token_file_last_reload_successful 1 if the last load of the token file succeeded, 0 if it failed and the last good file is still in force.
# TYPE argus_auth_token_file_last_reload_successful gauge
argus_auth_token_file_last_reload_successful 1
# HELP argus_auth_token_file_reloads_total Loads of the token file (-auth.token-file), by status (success, failure).
# TYPE argus_auth_token_file_reloads_total counter
argus_auth_token_file_reloads_total{status="failure"} 0
argus_auth_token_file_reloads_total{status="success"} 1
`), "argus_auth_token_file_last_reload_successful", "argus_auth_token_file_reloads_total"))
}
