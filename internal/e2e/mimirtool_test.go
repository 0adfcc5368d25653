package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// mimirtoolRulesV1 and V2 are mimirtool rule files (Prometheus's format
// with a namespace): V2 changes g1, drops g2 and adds g3.
const (
	mimirtoolRulesV1 = `namespace: team/ns1
groups:
  - name: g1
    interval: 10s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
  - name: g2
    rules:
      - alert: Down
        expr: up == 0
        for: 1m
        labels:
          severity: page
`
	mimirtoolRulesV2 = `namespace: team/ns1
groups:
  - name: g1
    interval: 10s
    rules:
      - record: job:up:sum
        expr: sum by (job, instance) (up)
  - name: g3
    rules:
      - record: one
        expr: vector(1)
`
)

// TestMimirtoolRules runs the real mimirtool's rules commands (load, list,
// get, diff, sync, delete) against the ruler's configuration API of the
// real binary, unchanged, and checks each one's effect through the API.
func TestMimirtoolRules(t *testing.T) {
	skipIfShort(t)
	bin := clustertest.MimirtoolBinary(t)
	a := clustertest.StartArgus(t, clustertest.Options{})
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.yaml")
	v2 := filepath.Join(dir, "v2.yaml")
	require.NoError(t, os.WriteFile(v1, []byte(mimirtoolRulesV1), 0o644))
	require.NoError(t, os.WriteFile(v2, []byte(mimirtoolRulesV2), 0o644))
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"rules", args[0], "--address=" + a.URL(), "--id=team-m"}, args[1:]...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		require.NoError(t, err, "mimirtool %v: %s", args, out)
		t.Logf("mimirtool %v:\n%s", args, out)
		return string(out)
	}
	stored := func() string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, a.URL()+"/prometheus/config/v1/rules", nil)
		require.NoError(t, err)
		req.Header.Set(clustertest.TenantHeader, "team-m")
		code, body := a.Do(t, req)
		if code == http.StatusNotFound {
			return ""
		}
		require.Equal(t, http.StatusOK, code, string(body))
		return string(body)
	}

	run("load", v1)
	got := stored()
	require.Contains(t, got, "team/ns1:")
	require.Contains(t, got, "name: g1")
	require.Contains(t, got, "name: g2")
	require.Contains(t, got, "expr: sum by (job) (up)")

	require.Equal(t, "Namespace | Rule Group\nteam/ns1  | g1\nteam/ns1  | g2\n", run("list"))
	group := run("get", "team/ns1", "g2")
	require.Contains(t, group, "alert: Down")
	require.Contains(t, group, "severity: page")

	// Unchanged files: diff finds nothing; V2: it names the changes.
	require.Equal(t, "no changes detected\n", run("diff", v1))
	diff := run("diff", v2)
	for _, want := range []string{"~ Namespace: team/ns1", "+ Group: g3", "~ Group: g1", "- Group: g2",
		"Diff Summary: 1 Groups Created, 1 Groups Updated, 1 Groups Deleted"} {
		require.Contains(t, diff, want)
	}

	require.Contains(t, run("sync", v2), "Sync Summary: 1 Groups Created, 1 Groups Updated, 1 Groups Deleted")
	got = stored()
	require.Contains(t, got, "expr: sum by (job, instance) (up)")
	require.Contains(t, got, "name: g3")
	require.NotContains(t, got, "name: g2", "sync deletes the group the file dropped")
	require.Equal(t, "no changes detected\n", run("diff", v2), "in sync")

	run("delete", "team/ns1", "g3")
	got = stored()
	require.NotContains(t, got, "name: g3")
	require.Contains(t, got, "name: g1")
	run("delete", "team/ns1", "g1")
	require.Empty(t, strings.TrimSpace(stored()), "the namespace went with its last group")
}
