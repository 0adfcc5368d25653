package ruler

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/prompb"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/limits"
)

// startOverrides returns the runtime overrides of the file text, over the
// flag defaults, loaded.
func startOverrides(t *testing.T, text string) *limits.Overrides {
	t.Helper()
	var def limits.Limits
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	def.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	path := filepath.Join(t.TempDir(), "runtime.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	o, err := limits.New(limits.Config{File: path, ReloadPeriod: time.Minute}, def, limits.Deps{})
	require.NoError(t, err)
	require.NoError(t, o.Starting(context.Background()))
	return o
}

// TestConfigAPI_RulerLimits: a tenant's ruler_max_rule_groups_per_tenant
// and ruler_max_rules_per_rule_group of the runtime config refuse a POST
// with 400 and their IDs, storing nothing; replacing a group at the limit
// is allowed; another tenant has the default (unlimited).
func TestConfigAPI_RulerLimits(t *testing.T) {
	o := startOverrides(t, "overrides:\n  small:\n    ruler_max_rule_groups_per_tenant: 2\n    ruler_max_rules_per_rule_group: 2\n")
	_, h := newTestRuler(t, o)
	const base = "/prometheus/config/v1/rules"
	group := func(name string, rules int) string {
		b := "name: " + name + "\nrules:\n"
		for i := range rules {
			b += "- record: r" + string(rune('a'+i)) + "\n  expr: vector(1)\n"
		}
		return b
	}

	code, body := do(t, h, "POST", base+"/ns1", "small", group("g3", 3))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, string(apierror.TooManyRules)+`: tenant "small", namespace "ns1": group "g3" has 3 rules, more than its limit (-ruler.max-rules-per-rule-group=2)`, strings.TrimSpace(body))

	for _, p := range []string{base + "/ns1", base + "/ns2"} {
		code, body = do(t, h, "POST", p, "small", group(strings.TrimPrefix(p, base+"/")+"-g", 2))
		require.Equal(t, http.StatusAccepted, code, body)
	}
	code, body = do(t, h, "POST", base+"/ns1", "small", group("third", 1))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, string(apierror.TooManyRuleGroups)+`: namespace "ns1", new group "third": tenant "small" has 2 rule groups, its limit (-ruler.max-rule-groups-per-tenant=2): too many rule groups`, strings.TrimSpace(body))
	code, body = do(t, h, "POST", base+"/ns1", "small", group("ns1-g", 1))
	require.Equal(t, http.StatusAccepted, code, "replacing a group at the limit: %s", body)

	code, body = do(t, h, "GET", base, "small", "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "third")
	require.NotContains(t, body, "g3")

	for i := range 3 {
		code, body = do(t, h, "POST", base+"/ns", "big", group("g"+string(rune('0'+i)), 5))
		require.Equal(t, http.StatusAccepted, code, body)
	}
}

// recordingPusher keeps the label sets of every series pushed.
type recordingPusher struct{ series chan string }

func (p *recordingPusher) Push(_ context.Context, tenantID string, body []byte) error {
	b, err := snappy.Decode(nil, body)
	if err != nil {
		return err
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(b); err != nil {
		return err
	}
	for _, ts := range req.Timeseries {
		select {
		case p.series <- tenantID + " " + labelsOf(ts.Labels).String():
		default:
		}
	}
	return nil
}

func labelsOf(ls []prompb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// TestTenantSettings_AlertmanagerURLAndExternalLabels: a tenant's
// ruler_alertmanager_url sends its alerts to its own Alertmanager (there is
// no -ruler.alertmanager-url), and its ruler_external_labels are on its
// alerts and recording results, an own label of that name winning.
func TestTenantSettings_AlertmanagerURLAndExternalLabels(t *testing.T) {
	am, posts := fakeAlertmanager(t)
	o := startOverrides(t, "overrides:\n  eu:\n    ruler_alertmanager_url: "+am+"/am\n    ruler_external_labels:\n      region: eu\n      env: prod\n")
	var cfg Config
	require.NoError(t, newFlagSet(&cfg).Parse([]string{"-ruler.tenant-label=tenant"}))
	cfg.StoragePath = t.TempDir()
	pushed := &recordingPusher{series: make(chan string, 100)}
	r, err := New(cfg, Deps{Queryable: emptyQueryable{}, Pusher: pushed, Limits: o})
	require.NoError(t, err)
	require.NoError(t, r.Starting(context.Background()))
	t.Cleanup(func() { _ = r.Stopping(context.Background()) })
	require.NoError(t, r.store.SetGroup("eu", "ns", mustGroup(t,
		"name: g\ninterval: 1s\nrules:\n- record: one\n  expr: vector(1)\n  labels:\n    env: dev\n- alert: Always\n  expr: vector(1)\n")))
	r.sync()

	select {
	case p := <-posts:
		require.Equal(t, "eu", p.orgID)
		require.Equal(t, []map[string]string{{"alertname": "Always", "region": "eu", "env": "prod", "tenant": "eu"}}, p.labels)
	case <-time.After(30 * time.Second):
		t.Fatal("no alert reached the tenant's alertmanager within 30s")
	}
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for !seen[`eu {__name__="one", env="dev", region="eu"}`] || !seen[`eu {__name__="ALERTS", alertname="Always", alertstate="firing", env="prod", region="eu"}`] {
		select {
		case s := <-pushed.series:
			seen[s] = true
		case <-deadline:
			t.Fatalf("pushed series lack the external labels: %v", seen)
		}
	}
}

func mustGroup(t *testing.T, text string) rulefmt.RuleGroup {
	t.Helper()
	g, err := ParseGroup([]byte(text))
	require.NoError(t, err)
	return g
}
