package e2e

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestPprofBehindFlag checks that Go's profiles are served under
// /debug/pprof only with -server.register-instrumentation.
func TestPprofBehindFlag(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	off := clustertest.StartArgus(t, clustertest.Options{})
	on := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-server.register-instrumentation"}})
	get := func(p *clustertest.Process, path string) (int, string) {
		resp, err := http.Get(p.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get(off, "/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code)
	code, body := get(on, "/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")
	code, body = get(on, "/debug/pprof/cmdline")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "-server.register-instrumentation")
	code, _ = get(on, "/debug/pprof/heap")
	require.Equal(t, http.StatusOK, code)
}
