package ruler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

const goodGroup = `name: g1
interval: 10s
rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: Down
    expr: up == 0
    for: 30s
    labels:
      severity: page
`

func TestParseGroup_RefusesWithLineAndReason(t *testing.T) {
	g, err := ParseGroup([]byte(goodGroup))
	require.NoError(t, err)
	require.Equal(t, "g1", g.Name)
	require.Len(t, g.Rules, 2)

	for name, tc := range map[string]struct{ body, want string }{
		"bad promql":     {"name: g\nrules:\n  - record: r\n    expr: sum(up\n", `4:11: group "g", rule 1, "r": could not parse expression`},
		"unknown field":  {"name: g\nrulez: []\n", "line 2: field rulez not found"},
		"no name":        {"rules:\n  - record: r\n    expr: up\n", "group name must not be empty"},
		"bad yaml":       {"name: [g\n", "yaml:"},
		"empty body":     {"", "empty body"},
		"neither kind":   {"name: g\nrules:\n  - expr: up\n", `group "g", rule 1`},
		"both kinds":     {"name: g\nrules:\n  - record: r\n    alert: A\n    expr: up\n", "only one of 'record' and 'alert' must be set"},
		"bad template":   {"name: g\nrules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ .Foo'\n", "template"},
		"for on records": {"name: g\nrules:\n  - record: r\n    expr: up\n    for: 1m\n", "invalid field 'for' in recording rule"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseGroup([]byte(tc.body))
			require.Error(t, err)
			id, ok := apierror.IDOf(err)
			require.True(t, ok)
			require.Equal(t, apierror.InvalidRuleGroup, id)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestStore_DurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	require.NoError(t, err)
	g, err := ParseGroup([]byte(goodGroup))
	require.NoError(t, err)
	// Names that are not path-safe stay apart and round-trip.
	for _, ns := range []string{"a/b", "..", ".hidden", "plain"} {
		require.NoError(t, s.SetGroup("t-1", ns, g))
	}
	g2 := g
	g2.Name = "g2"
	require.NoError(t, s.SetGroup("t-1", "plain", g2))
	g.Interval = 0
	require.NoError(t, s.SetGroup("t-1", "plain", g)) // replaces g1 in place
	require.NoError(t, s.DeleteNamespace("t-1", ".."))
	require.ErrorIs(t, s.DeleteGroup("t-1", "plain", "nope"), ErrNotFound)

	s2, err := OpenStore(dir)
	require.NoError(t, err)
	got := s2.Namespaces("t-1")
	require.Equal(t, s.Namespaces("t-1"), got)
	require.Len(t, got, 3)
	require.Equal(t, []string{"g1", "g2"}, []string{got["plain"][0].Name, got["plain"][1].Name})
	require.Zero(t, got["plain"][0].Interval)
	require.Empty(t, s2.Namespaces("t-2"))
}

func TestStore_ImportDirAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "t1"), 0o755))
	file := "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t1", "ns1.yaml"), []byte(file), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t1", "ns2.yml"), []byte(file+"  - name: a\n    rules: []\n"), 0o644))
	s, err := OpenStore(t.TempDir())
	require.NoError(t, err)
	_, err = s.ImportDir(dir)
	require.ErrorContains(t, err, `groupname: "a" is repeated in the same file`)
	require.Empty(t, s.Namespaces("t1"))

	require.NoError(t, os.Remove(filepath.Join(dir, "t1", "ns2.yml")))
	n, err := s.ImportDir(dir)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Len(t, s.Namespaces("t1")["ns1"], 1)
}

// emptyQueryable answers every query with no series.
type emptyQueryable struct{}

func (emptyQueryable) Querier(int64, int64) (storage.Querier, error) {
	return storage.NoopQuerier(), nil
}

type nopPusher struct{}

func (nopPusher) Push(context.Context, string, []byte) error { return nil }

// newTestRuler starts a ruler with the default flags and the limits lim
// (nil: none), and returns it and its configuration API for the tenant in
// X-Scope-OrgID.
func newTestRuler(t *testing.T, lim ...Limits) (*Ruler, http.Handler) {
	t.Helper()
	var cfg Config
	fs := newFlagSet(&cfg)
	require.NoError(t, fs.Parse(nil))
	cfg.StoragePath = t.TempDir()
	deps := Deps{Queryable: emptyQueryable{}, Pusher: nopPusher{}}
	if len(lim) > 0 {
		deps.Limits = lim[0]
	}
	r, err := New(cfg, deps)
	require.NoError(t, err)
	require.NoError(t, r.Starting(context.Background()))
	t.Cleanup(func() { _ = r.Stopping(context.Background()) })
	h := r.ConfigHandler()
	return r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req.WithContext(tenant.With(req.Context(), req.Header.Get(tenant.HeaderName))))
	})
}

func do(t *testing.T, h http.Handler, method, path, tenantID, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set(tenant.HeaderName, tenantID)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func TestConfigAPI_MimirSemantics(t *testing.T) {
	r, h := newTestRuler(t)
	const base = "/prometheus/config/v1/rules"
	code, body := do(t, h, "GET", base, "a", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, string(apierror.RuleGroupNotFound))

	code, _ = do(t, h, "POST", base+"/my%2Fns", "a", goodGroup)
	require.Equal(t, http.StatusAccepted, code)
	code, body = do(t, h, "POST", base+"/my%2Fns", "a", "name: g1\nrules:\n  - record: r\n    expr: sum(\n")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, string(apierror.InvalidRuleGroup)+`: tenant "a", namespace "my/ns": 4:11: group "g1", rule 1, "r"`)

	code, body = do(t, h, "GET", base+"/my%2Fns/g1", "a", "")
	require.Equal(t, http.StatusOK, code)
	g, err := ParseGroup([]byte(body))
	require.NoError(t, err)
	require.Equal(t, "sum by (job) (up)", g.Rules[0].Expr, "the refused POST left the group as it was")

	code, body = do(t, h, "GET", base, "a", "")
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.HasPrefix(body, "my/ns:\n"), body)
	code, _ = do(t, h, "GET", base, "b", "")
	require.Equal(t, http.StatusNotFound, code, "tenant b sees none of tenant a's rules")
	code, _ = do(t, h, "GET", "/api/v1/rules/my%2Fns", "a", "")
	require.Equal(t, http.StatusOK, code, "cortextool's prefix")

	// The manager evaluates what was stored.
	require.Eventually(t, func() bool {
		r.sync()
		return len(r.TenantView(tenant.With(context.Background(), "a")).RuleGroups()) == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, r.TenantView(tenant.With(context.Background(), "b")).RuleGroups())

	code, _ = do(t, h, "DELETE", base+"/my%2Fns/nope", "a", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = do(t, h, "DELETE", base+"/my%2Fns/g1", "a", "")
	require.Equal(t, http.StatusAccepted, code)
	code, _ = do(t, h, "DELETE", base+"/my%2Fns", "a", "")
	require.Equal(t, http.StatusNotFound, code, "the namespace went with its last group")
	r.sync()
	require.Empty(t, r.TenantView(tenant.With(context.Background(), "a")).RuleGroups())
}

func TestMemberRing_EachGroupOneOwner(t *testing.T) {
	two := newMemberRing([]string{"r1", "r2"})
	one := newMemberRing([]string{"r1"})
	counts := map[string]int{}
	for i := range 1000 {
		ns := "ns" + strings.Repeat("x", i%7)
		name := "g" + labels.FromStrings("i", string(rune('a'+i%26)), "j", string(rune('a'+i/26))).String()
		o := two.Owner(groupToken("t", ns, name))
		require.Equal(t, o, newMemberRing([]string{"r1", "r2"}).Owner(groupToken("t", ns, name)), "deterministic")
		require.Equal(t, "r1", one.Owner(groupToken("t", ns, name)))
		counts[o]++
	}
	require.Len(t, counts, 2)
	require.InDelta(t, 500, counts["r1"], 150, "%v", counts)
}

func TestStore_RefreshSeesAnotherWriter(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenStore(dir)
	require.NoError(t, err)
	b, err := OpenStore(dir)
	require.NoError(t, err)
	g, err := ParseGroup([]byte(goodGroup))
	require.NoError(t, err)
	require.NoError(t, a.SetGroup("t", "ns", g))
	changed, err := a.Refresh()
	require.NoError(t, err)
	require.False(t, changed, "its own write is not a change")
	changed, err = b.Refresh()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, a.Namespaces("t"), b.Namespaces("t"))
	require.NoError(t, b.DeleteNamespace("t", "ns"))
	_, err = a.Refresh()
	require.NoError(t, err)
	require.Empty(t, a.Namespaces("t"))
}
