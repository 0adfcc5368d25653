package ruler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
)

func TestParseAMURLs(t *testing.T) {
	got, err := parseAMURLs(" http://am:9093/prefix , dns+http://am.svc:9093,dnssrv+https://_http._tcp.am.svc")
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, []string{"", "dns", "dnssrv"}, []string{got[0].lookup, got[1].lookup, got[2].lookup})
	require.Equal(t, "/prefix", got[0].u.Path)
	require.Equal(t, "am.svc:9093", got[1].u.Host)
	require.Equal(t, "https", got[2].u.Scheme)

	_, err = parseAMURLs("dnssrvnoa+http://am.svc")
	require.ErrorContains(t, err, `lookup "dnssrvnoa+" not supported`)
	_, err = parseAMURLs("dns+am.svc:9093")
	require.ErrorContains(t, err, "is not an http(s) URL")

	addrs, err := got[1].resolve(context.Background(), nil)
	require.Error(t, err, "am.svc does not resolve") // a nil *net.Resolver is the default one
	require.Nil(t, addrs)
	lh, err := parseAMURLs("dns+http://localhost:9093")
	require.NoError(t, err)
	addrs, err = lh[0].resolve(context.Background(), nil)
	require.NoError(t, err)
	require.Contains(t, addrs, "127.0.0.1:9093")
}

// TestNotifier_DNSDiscoveryAndTenantLabel: an alert of a tenant reaches the
// Alertmanager named dns+http://localhost:port, with the tenant in
// X-Scope-OrgID and in -ruler.tenant-label.
func TestNotifier_DNSDiscoveryAndTenantLabel(t *testing.T) {
	am, posts := fakeAlertmanager(t)
	u, err := url.Parse(am)
	require.NoError(t, err)

	var cfg Config
	require.NoError(t, newFlagSet(&cfg).Parse([]string{
		"-ruler.alertmanager-url=dns+http://localhost:" + u.Port() + "/am",
		"-ruler.tenant-label=tenant",
	}))
	cfg.StoragePath = t.TempDir()
	r, err := New(cfg, Deps{Queryable: emptyQueryable{}, Pusher: nopPusher{}})
	require.NoError(t, err)
	require.NoError(t, r.Starting(context.Background()))
	t.Cleanup(func() { _ = r.Stopping(context.Background()) })
	h := r.ConfigHandler()
	req := httptest.NewRequest(http.MethodPost, "/prometheus/config/v1/rules/ns", strings.NewReader(
		"name: g\ninterval: 1s\nrules:\n- alert: Always\n  expr: vector(1)\n  labels:\n    severity: page\n"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(tenant.With(req.Context(), "team-a")))
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	r.sync()

	select {
	case p := <-posts:
		require.Equal(t, "team-a", p.orgID)
		require.Equal(t, []map[string]string{{"alertname": "Always", "severity": "page", "tenant": "team-a"}}, p.labels)
	case <-time.After(30 * time.Second):
		t.Fatal("no alert reached the alertmanager within 30s")
	}
	require.Len(t, r.TenantView(tenant.With(context.Background(), "team-a")).Alertmanagers(), 1)
}

// amPost is one POST to a fake Alertmanager's /am/api/v2/alerts.
type amPost struct {
	orgID  string
	labels []map[string]string
}

// fakeAlertmanager serves /am/api/v2/alerts, passing each POST on. The
// real Alertmanager is in the end-to-end tests; here only what the ruler
// sends matters.
func fakeAlertmanager(t *testing.T) (string, <-chan amPost) {
	posts := make(chan amPost, 16)
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/am/api/v2/alerts" {
			http.NotFound(w, req)
			return
		}
		var alerts []struct{ Labels map[string]string }
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &alerts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p := amPost{orgID: req.Header.Get(tenant.HeaderName)}
		for _, a := range alerts {
			p.labels = append(p.labels, a.Labels)
		}
		select {
		case posts <- p:
		default:
		}
	}))
	t.Cleanup(am.Close)
	return am.URL, posts
}
