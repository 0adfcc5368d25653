package deploytest

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// runbookBase is where every alert's runbook_url points, followed by the
// GitHub anchor of a heading of docs/runbooks.md.
const runbookBase = "https://github.com/argus-tsdb/argus/blob/main/docs/runbooks.md#"

// externalMetrics are the metrics the mixin reads that Argus does not export
// and a Kubernetes cluster's Prometheus has: the kubelet's volume stats of
// the ingesters' PVCs, for the disk alerts and panel.
var externalMetrics = []string{"kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes"}

// grafanaVars replaces the dashboards' template variables with values the
// PromQL parser takes.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$namespace", "argus", "$job", "argus", "$tenant", "t")

var promParser = parser.NewParser(parser.Options{})

// query is one PromQL expression of the mixin and where it is.
type query struct {
	where, expr string
}

func mixinDir(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	return filepath.Join(root, "deploy", "mixin")
}

// dashboardQueries returns every panel target's expression and every
// template variable's query of the dashboards, the variables replaced.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(mixinDir(t), "dashboards", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 5, "writes, reads, ring, tenants, resources")
	var out []query
	uids := map[string]bool{}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)
	for _, f := range files {
		var d struct {
			UID        string `json:"uid"`
			Title      string `json:"title"`
			Panels     []panel
			Templating struct {
				List []struct {
					Name, Type string
					Query      json.RawMessage
				}
			}
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &d), f)
		require.NotEmpty(t, d.UID, f)
		require.NotEmpty(t, d.Title, f)
		require.False(t, uids[d.UID], "%s: uid %s used twice", f, d.UID)
		uids[d.UID] = true
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "%s: panel %q has no query", f, p.Title)
			for _, tg := range p.Targets {
				out = append(out, query{filepath.Base(f) + ": " + p.Title, grafanaVars.Replace(tg.Expr)})
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q struct{ Query string }
			require.NoError(t, json.Unmarshal(v.Query, &q), f)
			m := labelValues.FindStringSubmatch(q.Query)
			require.NotNil(t, m, "%s: variable %s: %q is no label_values(selector, label)", f, v.Name, q.Query)
			out = append(out, query{filepath.Base(f) + ": variable " + v.Name, grafanaVars.Replace(m[1])})
		}
	}
	return out
}

type panel struct {
	Type, Title string
	Targets     []struct{ Expr string }
}

// alertRules parses deploy/mixin/alerts.yaml as Prometheus does.
func alertRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(filepath.Join(mixinDir(t), "alerts.yaml"), false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	return groups
}

// allQueries returns the dashboards' and the alerts' expressions.
func allQueries(t *testing.T) []query {
	t.Helper()
	out := dashboardQueries(t)
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, query{"alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// metricNames returns the metric names expr selects.
func metricNames(t *testing.T, q query) []string {
	t.Helper()
	expr, err := promParser.ParseExpr(q.expr)
	require.NoError(t, err, "%s: %s", q.where, q.expr)
	var names []string
	for _, sel := range parser.ExtractSelectors(expr) {
		i := slices.IndexFunc(sel, func(m *labels.Matcher) bool { return m.Name == labels.MetricName })
		require.GreaterOrEqual(t, i, 0, "%s: a selector without a metric name: %s", q.where, q.expr)
		require.Equal(t, labels.MatchEqual, sel[i].Type, "%s: a metric name by regexp: %s", q.where, q.expr)
		names = append(names, sel[i].Value)
	}
	require.NotEmpty(t, names, "%s: %s selects nothing", q.where, q.expr)
	return names
}

// TestMixin_Parses: every dashboard query and alert expression parses with
// Prometheus's parser, and names its metrics.
func TestMixin_Parses(t *testing.T) {
	qs := allQueries(t)
	require.Greater(t, len(qs), 40)
	for _, q := range qs {
		metricNames(t, q)
	}
}

// TestMixin_AlertsLinkRunbooks: every alert has a severity, a summary and a
// description, and a runbook_url whose anchor is a heading of
// docs/runbooks.md.
func TestMixin_AlertsLinkRunbooks(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "runbooks.md"))
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,4} (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	want := []string{"ArgusIngesterUnhealthy", "ArgusReplicationQuorumFailures", "ArgusWALReplayStuck",
		"ArgusDiscardsSpike", "ArgusTenantNearSeriesLimit", "ArgusDiskFilling"}
	var have []string
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "recording rules do not belong in alerts.yaml")
			have = append(have, r.Alert)
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.NotEmpty(t, r.Annotations["description"], r.Alert)
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			require.True(t, ok, "%s: runbook_url %q is not under %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
			require.Equal(t, strings.ToLower(r.Alert), anchor, r.Alert)
			require.True(t, anchors[anchor], "%s: docs/runbooks.md has no heading for #%s", r.Alert, anchor)
		}
	}
	for _, a := range want {
		require.Contains(t, have, a)
	}
}

// githubAnchor is the fragment GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestRunbooks_ErrorIDsExist: every err-argus-* ID docs/runbooks.md names is
// one of docs/errors.md, the generated catalogue.
func TestRunbooks_ErrorIDsExist(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	runbooks, err := os.ReadFile(filepath.Join(root, "docs", "runbooks.md"))
	require.NoError(t, err)
	catalogue, err := os.ReadFile(filepath.Join(root, "docs", "errors.md"))
	require.NoError(t, err)
	id := regexp.MustCompile(`err-argus-[a-z0-9]+(?:-[a-z0-9]+)*`)
	known := map[string]bool{}
	for _, m := range id.FindAllString(string(catalogue), -1) {
		known[m] = true
	}
	ids := id.FindAllString(string(runbooks), -1)
	require.NotEmpty(t, ids)
	for _, m := range ids {
		require.True(t, known[m], "docs/runbooks.md names %s, which docs/errors.md does not list", m)
	}
}
