package querier

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/prometheus/prometheus/util/httputil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// TestPooledCompression checks that the read routes answer with the exact
// bytes and headers Prometheus's CompressionHandler would send for the
// same body: the encoding picked by its rule, one Vary header, the body
// compressed as it compresses it; that requests without an accepted
// encoding get the plain body, with the same headers; and that other routes keep Prometheus's
// handling (still compressed).
func TestPooledCompression(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // Raw bytes.
	get := func(path string, form url.Values, accept string) (*http.Response, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+PathPrefix+path+"?"+form.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set(tenant.HeaderName, tenantA)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	rng := url.Values{"start": {secs(t0)}, "end": {secs(t0 + 2*60*60_000)}}
	routes := map[string]url.Values{
		"/api/v1/labels":                rng,
		"/api/v1/label/job/values":      rng,
		"/api/v1/series":                {"match[]": {"up"}, "start": rng["start"], "end": rng["end"]},
		"/api/v1/query":                 {"query": {"up"}, "time": {secs(t0 + 30*60_000)}},
		"/api/v1/query_range":           {"query": {"rate(http_requests_total[5m])"}, "start": rng["start"], "end": rng["end"], "step": {"60"}},
		"/api/v1/query?bad":             {"query": {"up{"}}, // An error answer is compressed too.
		"/api/v1/status/buildinfo?prom": {},                 // Prometheus's own handling.
	}
	for route, form := range routes {
		path, _, _ := bytes.Cut([]byte(route), []byte("?"))
		plainResp, plain := get(string(path), form, "")
		require.Empty(t, plainResp.Header.Get("Content-Encoding"), route)
		require.NotEmpty(t, plain, route)
		for accept, enc := range map[string]string{"gzip": "gzip", "deflate": "deflate", "br, deflate, gzip": "deflate", "identity": ""} {
			resp, body := get(string(path), form, accept)
			require.Equal(t, plainResp.StatusCode, resp.StatusCode, "%s %s", route, accept)
			require.Equal(t, enc, resp.Header.Get("Content-Encoding"), "%s %s", route, accept)
			require.Equal(t, plainResp.Header.Values("Vary"), resp.Header.Values("Vary"), "%s %s", route, accept)
			require.Contains(t, resp.Header.Values("Vary"), "Accept-Encoding", "%s %s", route, accept)
			require.Equal(t, prometheusCompressed(t, plain, accept), body, "%s %s: not the bytes Prometheus sends", route, accept)
		}
	}
}

// prometheusCompressed is what Prometheus's CompressionHandler sends for a
// handler that writes body, to a request accepting accept.
func prometheusCompressed(t *testing.T, body []byte, accept string) []byte {
	t.Helper()
	rec := &recorder{header: http.Header{}}
	req, err := http.NewRequest(http.MethodGet, "/", nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", accept)
	httputil.CompressionHandler{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	})}.ServeHTTP(rec, req)
	return rec.body.Bytes()
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(int)             {}

// TestPooledCompression_Decodes checks that pooled writers, reused, give
// every client its own whole body.
func TestPooledCompression_Decodes(t *testing.T) {
	q, _ := newTestQuerier(t, nil)
	srv := serveMounted(t, q.Handler())
	for range 3 {
		for _, enc := range []string{"gzip", "deflate"} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+PathPrefix+"/api/v1/label/__name__/values", nil)
			require.NoError(t, err)
			req.Header.Set(tenant.HeaderName, tenantA)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			var r io.Reader = resp.Body
			if enc == "gzip" {
				r, err = gzip.NewReader(resp.Body)
			} else {
				r, err = zlib.NewReader(resp.Body)
			}
			require.NoError(t, err)
			b, err := io.ReadAll(r)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Contains(t, string(b), `"status":"success"`)
			require.Contains(t, string(b), `"http_requests_total"`)
		}
	}
}

// TestPooledCompression_Pooled checks that each read route reuses its
// compressor: a compressed answer allocates far less than one from a
// route Prometheus compresses with a new writer (its compressor state alone
// is a few hundred kilobytes).
func TestPooledCompression_Pooled(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop what is put back")
	}
	q, _ := newTestQuerier(t, nil)
	a, err := auth.New(auth.Config{Type: auth.TypeHeader}, auth.Options{MultitenancyEnabled: true}, auth.Deps{})
	require.NoError(t, err)
	h := a.Middleware(q.Handler(), auth.OneTenant)
	perRequest := func(path string) uint64 {
		serve := func() {
			req := httptest.NewRequest(http.MethodGet, PathPrefix+path, nil)
			req.Header.Set(tenant.HeaderName, tenantA)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), path)
		}
		serve() // Fills the pool.
		const n = 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			serve()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / n
	}
	fresh := perRequest("/api/v1/status/buildinfo")
	require.Greater(t, fresh, uint64(200<<10), "the control no longer allocates a compressor per request")
	for _, path := range []string{"/api/v1/labels", "/api/v1/label/job/values", "/api/v1/series?match[]=up",
		"/api/v1/query?query=up&time=" + secs(t0+30*60_000), "/api/v1/query_range?query=up&step=60&start=" + secs(t0) + "&end=" + secs(t0+60*60_000)} {
		got := perRequest(path)
		require.Less(t, got, fresh/4, "%s allocates %d bytes per request, a new compressor's worth (%d)", path, got, fresh)
	}
}
