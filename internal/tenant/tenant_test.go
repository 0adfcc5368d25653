package tenant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"team-a", "a", "A_b.c*d'e(f)!", strings.Repeat("x", MaxLength)} {
		require.NoError(t, Validate(ok), ok)
	}
	for _, bad := range []string{".", "..", "a/b", "a b", "tenant|b", "é", strings.Repeat("x", MaxLength+1)} {
		require.ErrorIs(t, Validate(bad), ErrInvalidTenant, bad)
	}
}

func TestFromContext(t *testing.T) {
	_, err := FromContext(context.Background())
	require.ErrorIs(t, err, ErrNoTenant)

	got, err := FromContext(With(context.Background(), "a"))
	require.NoError(t, err)
	require.Equal(t, "a", got)

	// What a gRPC server sees of what a client sent with OutgoingContext.
	md, _ := metadata.FromOutgoingContext(OutgoingContext(context.Background(), "b"))
	got, err = FromContext(metadata.NewIncomingContext(context.Background(), md))
	require.NoError(t, err)
	require.Equal(t, "b", got)
}

func TestMiddleware(t *testing.T) {
	var seen string
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
	})
	cases := []struct {
		name         string
		multiTenancy bool
		header       string
		wantStatus   int
		wantTenant   string
		wantBody     string
	}{
		{name: "tenant header", multiTenancy: true, header: "team-a", wantStatus: http.StatusOK, wantTenant: "team-a"},
		{name: "missing header", multiTenancy: true, wantStatus: http.StatusUnauthorized, wantBody: "X-Scope-OrgID header is missing"},
		{name: "invalid tenant", multiTenancy: true, header: "../etc", wantStatus: http.StatusUnauthorized, wantBody: "invalid tenant ID"},
		{name: "multitenancy disabled", multiTenancy: false, header: "ignored", wantStatus: http.StatusOK, wantTenant: Anonymous},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen = ""
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.header != "" {
				req.Header.Set(HeaderName, c.header)
			}
			rec := httptest.NewRecorder()
			Middleware(c.multiTenancy, next).ServeHTTP(rec, req)
			require.Equal(t, c.wantStatus, rec.Code)
			require.Equal(t, c.wantTenant, seen)
			require.Contains(t, rec.Body.String(), c.wantBody)
		})
	}
}
