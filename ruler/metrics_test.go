package ruler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestGroupMetrics_TenantLabel: two tenants with the same namespace and
// group have a series each in the rule-group metrics, labelled by tenant,
// and a tenant's series go when the ruler stops evaluating it.
func TestGroupMetrics_TenantLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	var cfg Config
	require.NoError(t, newFlagSet(&cfg).Parse(nil))
	cfg.StoragePath = t.TempDir()
	r, err := New(cfg, Deps{Queryable: emptyQueryable{}, Pusher: nopPusher{}, Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, r.Starting(context.Background()))
	t.Cleanup(func() { _ = r.Stopping(context.Background()) })
	g := mustGroup(t, "name: g\ninterval: 1s\nrules:\n- record: one\n  expr: vector(1)\n- record: two\n  expr: vector(2)\n")
	require.NoError(t, r.store.SetGroup("a", "ns", g))
	require.NoError(t, r.store.SetGroup("b", "ns", g))
	r.sync()

	want := func(tenants ...string) string {
		out := "# HELP argus_ruler_prometheus_rule_group_rules The number of rules.\n# TYPE argus_ruler_prometheus_rule_group_rules gauge\n"
		for _, id := range tenants {
			out += `argus_ruler_prometheus_rule_group_rules{rule_group="ns;g",tenant="` + id + `"} 2` + "\n"
		}
		return out
	}
	require.Eventually(t, func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(want("a", "b")), "argus_ruler_prometheus_rule_group_rules") == nil
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, r.store.DeleteNamespace("b", "ns"))
	r.sync()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want("a")), "argus_ruler_prometheus_rule_group_rules"))
}
