package ruler

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestMimirtoolRequests replays the requests mimirtool's rules commands
// send, as its client builds them (grafana/mimir pkg/mimirtool/client/rules.go:
// CreateRuleGroup, GetRuleGroup, ListRules, DeleteRuleGroup,
// DeleteNamespace; load and sync POST each group, list/diff/print GET the
// prefix, delete DELETEs), and decodes the answers as it does: 404 is an
// empty rule set, a listing is YAML namespace → groups. The real mimirtool
// binary is not built by the tools script yet, so this replay stands in for it.
func TestMimirtoolRequests(t *testing.T) {
	for _, prefix := range ConfigPaths { // mimirtool's path, and cortextool's
		t.Run(prefix, func(t *testing.T) {
			_, h := newTestRuler(t)
			ns := "team a/alerts" // mimirtool escapes it with url.PathEscape
			group := rulefmt.RuleGroup{Name: "my group", Rules: []rulefmt.Rule{{Record: "job:up:sum", Expr: "sum by (job) (up)"}}}
			payload, err := yaml.Marshal(&group)
			require.NoError(t, err)

			// rules list on an empty tenant: 404, read as no rules.
			code, _ := do(t, h, "GET", prefix, "t", "")
			require.Equal(t, http.StatusNotFound, code)

			// rules load / sync: CreateRuleGroup.
			code, body := do(t, h, "POST", prefix+"/"+url.PathEscape(ns), "t", string(payload))
			require.Equal(t, http.StatusAccepted, code, body)

			// rules list / diff / print: ListRules.
			code, body = do(t, h, "GET", prefix, "t", "")
			require.Equal(t, http.StatusOK, code)
			var set map[string][]rulefmt.RuleGroup
			require.NoError(t, yaml.Unmarshal([]byte(body), &set))
			require.Equal(t, map[string][]rulefmt.RuleGroup{ns: {group}}, set)

			// rules get: GetRuleGroup.
			code, body = do(t, h, "GET", prefix+"/"+url.PathEscape(ns)+"/"+url.PathEscape(group.Name), "t", "")
			require.Equal(t, http.StatusOK, code)
			var got rulefmt.RuleGroup
			require.NoError(t, yaml.Unmarshal([]byte(body), &got))
			require.Equal(t, group, got)

			// rules delete: DeleteRuleGroup; then DeleteNamespace of what is left.
			code, _ = do(t, h, "DELETE", prefix+"/"+url.PathEscape(ns)+"/"+url.PathEscape(group.Name), "t", "")
			require.Equal(t, http.StatusAccepted, code)
			code, _ = do(t, h, "POST", prefix+"/"+url.PathEscape(ns), "t", string(payload))
			require.Equal(t, http.StatusAccepted, code)
			code, _ = do(t, h, "DELETE", prefix+"/"+url.PathEscape(ns), "t", "")
			require.Equal(t, http.StatusAccepted, code)
			code, _ = do(t, h, "GET", prefix, "t", "")
			require.Equal(t, http.StatusNotFound, code)
		})
	}
}
