package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/ingester"
)

type fakeHealth struct {
	ready    bool
	failed   map[string]string
	statuses []ingester.TenantStatus
}

func (f *fakeHealth) Ready() bool                             { return f.ready }
func (f *fakeHealth) FailedTenants() map[string]string        { return f.failed }
func (f *fakeHealth) TenantStatuses() []ingester.TenantStatus { return f.statuses }

func get(h http.Handler) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	return w.Code, w.Body.String()
}

func TestReadyNamesFailedTenants(t *testing.T) {
	var ready atomic.Bool
	ing := &fakeHealth{}
	code, _ := get(readyHandler(&ready, ing))
	require.Equal(t, http.StatusServiceUnavailable, code, "process not ready")
	ready.Store(true)
	code, _ = get(readyHandler(&ready, ing))
	require.Equal(t, http.StatusServiceUnavailable, code, "wal not replayed")
	ing.ready = true
	code, body := get(readyHandler(&ready, ing))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)

	ing.failed = map[string]string{"b": "append to db: disk full", "a": "append to db: io error"}
	code, body = get(readyHandler(&ready, ing))
	require.Equal(t, http.StatusOK, code, "the other tenants are served")
	require.Equal(t, "ready\n"+
		"tenant a failed (its pushes are refused): append to db: io error\n"+
		"tenant b failed (its pushes are refused): append to db: disk full\n", body)

	code, body = get(readyHandler(&ready, nil))
	require.Equal(t, http.StatusOK, code, "no ingester")
	require.Equal(t, "ready\n", body)
}

func TestIngesterTenants(t *testing.T) {
	ing := &fakeHealth{statuses: []ingester.TenantStatus{
		{ID: "a", MemorySeries: 3},
		{ID: "b", MemorySeries: 0, Failed: "append to db: disk full"},
	}}
	code, body := get(tenantsHandler(ing))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "2 open tenants\na\tmemory_series=3\tok\nb\tmemory_series=0\tFAILED: append to db: disk full\n", body)
}
