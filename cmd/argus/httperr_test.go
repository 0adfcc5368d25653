package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// TestWithErrorIDs checks that the mux's own bare answers get an ID and a
// hint, and that answers that have one pass through untouched.
func TestWithErrorIDs(t *testing.T) {
	a := &app{cfg: Config{Target: "ingester"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/refuses", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, string(apierror.NotFound)+": own message", http.StatusNotFound)
	})
	h := a.withErrorIDs(mux)
	do := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := do(http.MethodPost, "/config")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.True(t, strings.HasPrefix(body, "err-argus-method-not-allowed: POST is not allowed on /config"), body)
	code, body = do(http.MethodGet, "/config")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body)
	code, body = do(http.MethodGet, "/refuses")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "err-argus-not-found: own message\n", body)
	code, body = do(http.MethodPost, "/api/v1/push")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "pushes are served by a distributor, and this process runs -target=ingester")
}
