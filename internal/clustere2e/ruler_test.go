package clustere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// rulerGroups is how many rule groups TestRulersShareGroups spreads.
const rulerGroups = 12

// TestRulersShareGroups runs three all-in-one argus processes (each a
// ruler) in one memberlist cluster with one rule store directory: each of
// 12 rule groups is evaluated by exactly one ruler, once per interval; after
// a kill -9 of the ruler with the most groups, its groups are evaluated by
// the two others, and again each group by one ruler only. Every ruler's
// configuration API answers the same groups (one shared store), and every
// ruler's /api/v1/rules and /alerts list all 12 groups and alerts, the same
// JSON on each (evaluation times aside), before and after the kill.
func TestRulersShareGroups(t *testing.T) {
	skipIfShort(t)
	store := filepath.Join(t.TempDir(), "rules")
	ports := clustertest.FreeMemberlistPorts(t, 3)
	join := make([]string, len(ports))
	for i, p := range ports {
		join[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	names := []string{"ruler-0", "ruler-1", "ruler-2"}
	procs := make([]*clustertest.Process, 3)
	for i := range procs {
		procs[i] = clustertest.StartArgus(t, clustertest.Options{Flags: []string{
			"-ruler.storage-path=" + store,
			"-ingester.ring.store=memberlist", "-ingester.ring.replication-factor=3",
			"-ingester.ring.instance-id=" + names[i], "-ingester.ring.instance-addr=127.0.0.1",
			"-ingester.ring.heartbeat-period=1s", "-ingester.ring.heartbeat-timeout=5s",
			"-memberlist.nodename=" + names[i], "-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(ports[i]),
			"-memberlist.join=" + strings.Join(join, ","), "-memberlist.rejoin-interval=1s",
			"-distributor.remote-timeout=2s",
		}})
	}
	for g := range rulerGroups {
		body := fmt.Sprintf("name: g%d\ninterval: 1s\nrules:\n  - record: g%d_eval\n    expr: vector(%d)\n  - alert: A%d\n    expr: vector(1)\n", g, g, g, g)
		req, err := http.NewRequest(http.MethodPost, procs[0].URL()+"/prometheus/config/v1/rules/ns", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(clustertest.TenantHeader, "t1")
		code, resp := procs[0].Do(t, req)
		require.Equal(t, http.StatusAccepted, code, string(resp))
	}

	requireSameConfig(t, procs)
	own := agreedGroupOwners(t, procs, names, 60*time.Second)
	t.Logf("groups per ruler: %v", countOwners(own))
	requireEvaluatedOnce(t, procs, names, own, 10*time.Second)
	requireSameLists(t, procs)

	// kill -9 the ruler with the most groups.
	victim := 0
	for i := range names {
		if countOwners(own)[names[i]] > countOwners(own)[names[victim]] {
			victim = i
		}
	}
	var survivors []*clustertest.Process
	var survivorNames []string
	for i := range procs {
		if i != victim {
			survivors, survivorNames = append(survivors, procs[i]), append(survivorNames, names[i])
		}
	}
	killed := time.Now()
	procs[victim].Kill(t)
	after := agreedGroupOwners(t, survivors, survivorNames, 60*time.Second)
	t.Logf("%s's groups evaluated by the others %s after its kill -9; groups per ruler: %v",
		names[victim], time.Since(killed).Round(100*time.Millisecond), countOwners(after))
	for g, o := range own {
		if o != names[victim] {
			require.Equal(t, o, after[g], "group %s of a surviving ruler moved", g)
		}
	}
	requireEvaluatedOnce(t, survivors, survivorNames, after, 10*time.Second)
	requireSameLists(t, survivors)
}

// requireSameConfig waits until every ruler's configuration API (GET
// /prometheus/config/v1/rules, what mimirtool reads) answers the same
// groups, all of them, from the shared store.
func requireSameConfig(t *testing.T, procs []*clustertest.Process) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		var first string
		for i, p := range procs {
			req, err := http.NewRequest(http.MethodGet, p.URL()+"/prometheus/config/v1/rules", nil)
			require.NoError(t, err)
			req.Header.Set(clustertest.TenantHeader, "t1")
			code, body := p.Do(t, req)
			if code != http.StatusOK {
				return fmt.Sprintf("config of process %d: %d %s", i, code, body)
			}
			if n := strings.Count(string(body), "- name: g"); n != rulerGroups {
				return fmt.Sprintf("config of process %d has %d groups", i, n)
			}
			if i == 0 {
				first = string(body)
			} else if string(body) != first {
				return fmt.Sprintf("config of process %d differs from process 0's", i)
			}
		}
		return ""
	}, 10*time.Second)
}

// requireSameLists waits until every ruler's /api/v1/rules and
// /api/v1/alerts list every group and alert of t1, each once, and all
// rulers answer the same JSON once evaluation times are zeroed.
func requireSameLists(t *testing.T, procs []*clustertest.Process) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		for _, path := range []string{"/rules", "/alerts"} {
			var first string
			for i, p := range procs {
				code, body := p.Query(t, "t1", clustertest.PromAPI+path, nil)
				if code != http.StatusOK {
					return fmt.Sprintf("%s of process %d: %d %s", path, i, code, body)
				}
				got := normaliseRuleTimes(t, body)
				var d struct {
					Data struct {
						Groups []struct{ Name string } `json:"groups"`
						Alerts []struct {
							Labels map[string]string `json:"labels"`
						} `json:"alerts"`
					} `json:"data"`
				}
				require.NoError(t, json.Unmarshal(body, &d))
				if n := max(len(d.Data.Groups), len(d.Data.Alerts)); n != rulerGroups {
					return fmt.Sprintf("%s of process %d lists %d, not %d: %s", path, i, n, rulerGroups, body)
				}
				if i == 0 {
					first = got
				} else if got != first {
					return fmt.Sprintf("%s of process %d differs from process 0's:\n%s\n%s", path, i, got, first)
				}
			}
		}
		return ""
	}, 30*time.Second)
}

// normaliseRuleTimes returns body with every lastEvaluation and
// evaluationTime zeroed, keys sorted.
func normaliseRuleTimes(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "lastEvaluation" || k == "evaluationTime" {
					v[k] = nil
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func countOwners(own map[string]string) map[string]int {
	out := map[string]int{}
	for _, o := range own {
		out[o]++
	}
	return out
}

// localGroups returns the groups of tenant t1 that p evaluates, with their
// last evaluation (Prometheus's rule-group metric: /api/v1/rules lists
// every ruler's groups).
func localGroups(t *testing.T, p *clustertest.Process) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	mf := p.MetricFamilies(t)["argus_ruler_prometheus_rule_group_last_evaluation_timestamp_seconds"]
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		var group, tenantID string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "rule_group":
				group = strings.TrimPrefix(l.GetValue(), "ns;")
			case "tenant":
				tenantID = l.GetValue()
			}
		}
		if tenantID == "t1" && m.GetGauge().GetValue() > 0 {
			sec := m.GetGauge().GetValue()
			out[group] = time.Unix(0, int64(sec*1e9))
		}
	}
	return out
}

// agreedGroupOwners waits until every group is listed, and evaluated within
// the last 3 s, by exactly one of procs, and returns group → owner.
func agreedGroupOwners(t *testing.T, procs []*clustertest.Process, names []string, timeout time.Duration) map[string]string {
	t.Helper()
	var own map[string]string
	clustertest.Eventually(t, func() string {
		own = map[string]string{}
		for i, p := range procs {
			for g, last := range localGroups(t, p) {
				if o, dup := own[g]; dup {
					return fmt.Sprintf("group %s listed by %s and %s", g, o, names[i])
				}
				if time.Since(last) > 3*time.Second {
					return fmt.Sprintf("group %s on %s last evaluated at %s", g, names[i], last)
				}
				own[g] = names[i]
			}
		}
		if len(own) != rulerGroups {
			return fmt.Sprintf("%d of %d groups evaluated: %v", len(own), rulerGroups, own)
		}
		return ""
	}, timeout)
	return own
}

// requireEvaluatedOnce counts each group's evaluations over window on
// every ruler (Prometheus's rule_group_iterations_total): a group at a 1 s
// interval evaluated by one ruler gets window/1s, give or take one at each
// edge; evaluated by two it would get twice as many, and a ruler that does
// not own it none.
func requireEvaluatedOnce(t *testing.T, procs []*clustertest.Process, names []string, own map[string]string, window time.Duration) {
	t.Helper()
	iterations := func() map[string]map[string]float64 {
		out := map[string]map[string]float64{}
		for i, p := range procs {
			out[names[i]] = map[string]float64{}
			for g := range own {
				out[names[i]][g] = p.Metric(t, "argus_ruler_prometheus_rule_group_iterations_total", map[string]string{"rule_group": "ns;" + g})
			}
		}
		return out
	}
	before := iterations()
	time.Sleep(window)
	after := iterations()
	groups := make([]string, 0, len(own))
	for g := range own {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	want := window.Seconds()
	for _, g := range groups {
		for _, n := range names {
			d := after[n][g] - before[n][g]
			if n == own[g] {
				require.InDelta(t, want, d, 2, "group %s on its owner %s", g, n)
			} else {
				require.Zero(t, d, "group %s evaluated by %s, which does not own it (owner %s)", g, n, own[g])
			}
		}
	}
}
