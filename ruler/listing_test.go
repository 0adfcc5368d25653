package ruler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// listGroups are three groups of tenant a in two namespaces, evaluated
// every second over no data: vector(1) keeps the alert firing.
var listGroups = map[string][]string{
	"ns1": {"name: g1\ninterval: 1s\nrules:\n  - record: r1\n    expr: vector(1)\n  - alert: Always\n    expr: vector(1)\n    labels:\n      severity: page\n",
		"name: g2\ninterval: 1s\nrules:\n  - record: r2\n    expr: vector(2)\n"},
	"ns2": {"name: g1\ninterval: 1s\nrules:\n  - alert: Never\n    expr: vector(1) == 0\n"},
}

func postListGroups(t *testing.T, h http.Handler) {
	t.Helper()
	for ns, gs := range listGroups {
		for _, g := range gs {
			code, body := do(t, h, "POST", "/prometheus/config/v1/rules/"+ns, "a", g)
			require.Equal(t, http.StatusAccepted, code, body)
		}
	}
}

func listGet(t *testing.T, l *Lister, path string, q url.Values) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
	req = req.WithContext(tenant.With(req.Context(), "a"))
	w := httptest.NewRecorder()
	l.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// TestLister_OneRulerAnswersAsPrometheus: over one ruler, the Lister's
// answer is byte for byte Prometheus's own handler's over the same groups,
// for every filter and page, and its errors are Prometheus's with an ID.
func TestLister_OneRulerAnswersAsPrometheus(t *testing.T) {
	r, h := newTestRuler(t)
	postListGroups(t, h)
	view := func() *TenantView { return r.TenantView(tenant.With(context.Background(), "a")) }
	require.Eventually(t, func() bool {
		r.sync()
		gs := view().RuleGroups()
		return len(gs) == 3 && len(view().AlertingRules()[0].ActiveAlerts())+len(view().AlertingRules()[1].ActiveAlerts()) == 1
	}, 10*time.Second, 20*time.Millisecond)
	l := NewLister(ListerDeps{Local: r})
	for _, q := range []url.Values{
		{}, {"type": {"alert"}}, {"type": {"record"}}, {"rule_name[]": {"Always", "r2"}}, {"file[]": {"ns2"}},
		{"rule_group[]": {"g1"}}, {"match[]": {`{severity="page"}`}}, {"exclude_alerts": {"true"}},
		{"group_limit": {"2"}}, {"group_limit": {"1"}, "group_next_token": {groupPageToken("ns1", "g2")}},
		{"group_limit": {"1"}, "group_next_token": {groupPageToken("ns2", "g1")}},
	} {
		// An evaluation may land between the two answers: retry.
		require.Eventually(t, func() bool {
			code, got := listGet(t, l, "/prometheus/api/v1/rules", q)
			wantCode, want := r.render.render(context.Background(), view(), "rules", q)
			return code == http.StatusOK && wantCode == code && got == string(want)
		}, 5*time.Second, 10*time.Millisecond, "query %v", q)
	}
	require.Eventually(t, func() bool {
		code, got := listGet(t, l, "/prometheus/api/v1/alerts", nil)
		_, want := r.render.render(context.Background(), view(), "alerts", nil)
		return code == http.StatusOK && got == string(want)
	}, 5*time.Second, 10*time.Millisecond)

	for q, want := range map[string]string{
		"type=foo":                           `bad_data","error":"err-argus-bad-query: invalid parameter \"type\": not supported value \"foo\""`,
		"group_next_token=x":                 `err-argus-bad-query: invalid parameter \"group_next_token\": group_limit needs to be present`,
		"group_limit=0":                      `err-argus-bad-query: invalid parameter \"group_limit\": group_limit needs to be greater than 0`,
		"group_limit=1&group_next_token=bad": `err-argus-bad-query: invalid parameter \"group_next_token\": invalid group_next_token 'bad'`,
	} {
		vs, err := url.ParseQuery(q)
		require.NoError(t, err)
		code, body := listGet(t, l, "/prometheus/api/v1/rules", vs)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, body, want, q)
	}
}

// fakeMembers is a Membership of fixed rulers.
type fakeMembers struct {
	self  string
	addrs map[string]string
}

func (f fakeMembers) AliveMembers(string) []string {
	out := make([]string, 0, len(f.addrs))
	for n := range maps.Keys(f.addrs) {
		out = append(out, n)
	}
	return out
}
func (f fakeMembers) LocalMember() string                  { return f.self }
func (f fakeMembers) MemberAddrs(string) map[string]string { return maps.Clone(f.addrs) }

// serveRuler serves r's gRPC service on a free port and returns its address.
func serveRuler(t *testing.T, r *Ruler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	arguspb.RegisterRulerServer(s, r.GRPCServer())
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// TestLister_MergesEveryRuler: two rulers sharing a store each evaluate
// part of the groups; each one's Lister answers all of them, the same
// bytes (evaluation times aside); a third member that does not answer
// fails the answer with err-argus-ruler-unavailable.
func TestLister_MergesEveryRuler(t *testing.T) {
	dir := t.TempDir()
	rulers := make([]*Ruler, 2)
	for i := range rulers {
		var cfg Config
		require.NoError(t, newFlagSet(&cfg).Parse(nil))
		cfg.StoragePath = dir
		r, err := New(cfg, Deps{Queryable: emptyQueryable{}, Pusher: nopPusher{}})
		require.NoError(t, err)
		rulers[i] = r
	}
	addrs := map[string]string{"r0": serveRuler(t, rulers[0]), "r1": serveRuler(t, rulers[1])}
	listers := make([]*Lister, 2)
	for i, r := range rulers {
		r.deps.Membership = fakeMembers{self: fmt.Sprintf("r%d", i), addrs: addrs}
		require.NoError(t, r.Starting(context.Background()))
		t.Cleanup(func() { _ = r.Stopping(context.Background()) })
		listers[i] = NewLister(ListerDeps{Local: r, Membership: r.deps.Membership,
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}})
		t.Cleanup(func() { _ = listers[i].Stopping(context.Background()) })
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rulers[0].ConfigHandler().ServeHTTP(w, req.WithContext(tenant.With(req.Context(), "a")))
	})
	postListGroups(t, h)
	names := func(body string) []string {
		var resp struct {
			Data struct {
				Groups []struct{ File, Name string } `json:"groups"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		var out []string
		for _, g := range resp.Data.Groups {
			out = append(out, g.File+"/"+g.Name)
		}
		return out
	}
	require.Eventually(t, func() bool {
		local := 0
		for _, r := range rulers {
			r.sync()
			n := len(r.TenantView(tenant.With(context.Background(), "a")).RuleGroups())
			if n == 0 {
				return false // the test wants both rulers to own some
			}
			local += n
		}
		return local == 3
	}, 10*time.Second, 20*time.Millisecond)
	for _, l := range listers {
		code, body := listGet(t, l, "/prometheus/api/v1/rules", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, []string{"ns1/g1", "ns1/g2", "ns2/g1"}, names(body))
		code, body = listGet(t, l, "/prometheus/api/v1/rules", url.Values{"type": {"record"}, "group_limit": {"1"}})
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, []string{"ns1/g1"}, names(body))
		require.Contains(t, body, `"groupNextToken":"`+groupPageToken("ns1", "g2")+`"`)
		require.Eventually(t, func() bool { // once evaluated
			code, body := listGet(t, l, "/prometheus/api/v1/alerts", nil)
			return code == http.StatusOK && strings.Contains(body, `"labels":{"alertname":"Always","severity":"page"}`)
		}, 10*time.Second, 20*time.Millisecond)
	}

	addrs["r2"] = "127.0.0.1:1" // alive to the gossip, not answering
	down := NewLister(ListerDeps{Local: rulers[0], Membership: fakeMembers{self: "r0", addrs: addrs},
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}})
	t.Cleanup(func() { _ = down.Stopping(context.Background()) })
	code, body := listGet(t, down, "/prometheus/api/v1/alerts", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, `"errorType":"unavailable","error":"`+string(apierror.RulerUnavailable)+`: ruler r2 (127.0.0.1:1) did not list its rule groups`)
}
