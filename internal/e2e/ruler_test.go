package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// requireAmtoolLists: the real amtool lists the ruler's firing alert with
// its labels (the tenant's included) and annotation, in its JSON and in
// its extended table, and finds it by a matcher on the tenant label.
func requireAmtoolLists(t *testing.T, am *clustertest.Alertmanager) {
	t.Helper()
	var listed []clustertest.AMAlert
	require.NoError(t, json.Unmarshal([]byte(am.Amtool(t, "json", "alertname=SwitchOn", "tenant=team-a")), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, map[string]string{"alertname": "SwitchOn", "severity": "page", "tenant": "team-a"}, listed[0].Labels)
	require.Equal(t, "switch is 1", listed[0].Annotations["summary"])
	require.Equal(t, "active", listed[0].Status.State)
	table := am.Amtool(t, "extended", "tenant=team-a")
	require.Contains(t, table, `alertname="SwitchOn"`, table)
	require.Contains(t, table, `tenant="team-a"`, table)
	require.Contains(t, table, `summary="switch is 1"`, table)
	require.NotContains(t, am.Amtool(t, "simple", "tenant=team-b"), "SwitchOn", "another tenant's matcher lists it")
}

// grafanaRuleGroup is a rule group as Grafana's alerting view reads a
// Prometheus data source's /api/v1/rules (its PromRuleGroupDTO and
// PromRuleDTO, public/app/types/unified-alerting-dto.ts): the fields it
// uses, each required here.
type grafanaRuleGroup struct {
	Name     string  `json:"name"`
	File     string  `json:"file"`
	Interval float64 `json:"interval"`
	Rules    []struct {
		Type        string            `json:"type"`
		Name        string            `json:"name"`
		Query       string            `json:"query"`
		State       string            `json:"state"`
		Health      string            `json:"health"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Alerts      []struct {
			Labels   map[string]string `json:"labels"`
			State    string            `json:"state"`
			ActiveAt time.Time         `json:"activeAt"`
			Value    string            `json:"value"`
		} `json:"alerts"`
	} `json:"rules"`
}

// requireGrafanaAlertingView replays the requests Grafana's alerting view
// sends to a Prometheus data source's rules API (public/app/features/
// alerting/unified/api/prometheus.ts fetchRules, prometheusApi.ts
// getGroups: Mimir's and Prometheus's parameter names side by side,
// group_limit, exclude_alerts) and /api/v1/alerts, and checks that the
// answers carry what it reads.
func requireGrafanaAlertingView(t *testing.T, a *clustertest.Process) {
	t.Helper()
	get := func(path string, q url.Values) json.RawMessage {
		code, body := a.Query(t, "team-a", clustertest.PromAPI+path, q)
		require.Equal(t, http.StatusOK, code, string(body))
		env := clustertest.DecodeAPI(t, body)
		require.Equal(t, "success", env.Status)
		return env.Data
	}
	groups := func(q url.Values) []grafanaRuleGroup {
		var d struct {
			Groups         []grafanaRuleGroup `json:"groups"`
			GroupNextToken string             `json:"groupNextToken"`
		}
		require.NoError(t, json.Unmarshal(get("/rules", q), &d))
		require.Empty(t, d.GroupNextToken, "one group: no next page")
		require.Len(t, d.Groups, 1, "%v", q)
		g := d.Groups[0]
		require.Equal(t, "e2e", g.Name)
		require.Equal(t, "prom/rules", g.File, "Grafana shows the file as the namespace")
		require.InDelta(t, 1.0, g.Interval, 0)
		return d.Groups
	}
	for _, q := range []url.Values{
		{},
		{"file": {"prom/rules"}, "rule_group": {"e2e"}}, // fetchRules for one rule's identifier
		{"file": {"prom/rules"}, "file[]": {"prom/rules"}, "rule_group": {"e2e"}, "rule_group[]": {"e2e"},
			"exclude_alerts": {"false"}, "group_limit": {"40"}}, // getGroups, the list view's pages
		{"type": {"alert"}},
	} {
		g := groups(q)[0]
		kinds := map[string]int{}
		for _, r := range g.Rules {
			kinds[r.Type]++
			require.NotEmpty(t, r.Name)
			require.NotEmpty(t, r.Query)
			require.Equal(t, "ok", r.Health, r.Name)
			if r.Type == "alerting" {
				require.Equal(t, "SwitchOn", r.Name)
				require.Equal(t, "firing", r.State)
				require.Equal(t, "page", r.Labels["severity"])
				require.Len(t, r.Alerts, 1)
				require.Equal(t, "firing", r.Alerts[0].State)
				require.Equal(t, "SwitchOn", r.Alerts[0].Labels["alertname"])
				require.False(t, r.Alerts[0].ActiveAt.IsZero())
				require.Equal(t, "1e+00", r.Alerts[0].Value)
			}
		}
		want := map[string]int{"alerting": 1, "recording": 3}
		if q.Get("type") == "alert" {
			want = map[string]int{"alerting": 1}
		}
		require.Equal(t, want, kinds, "%v", q)
	}
	var alerts struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(get("/alerts", nil), &alerts))
	require.Len(t, alerts.Alerts, 1)
	require.Equal(t, "SwitchOn", alerts.Alerts[0].Labels["alertname"])
	require.Equal(t, "firing", alerts.Alerts[0].State)
}

// rulerGroupA is tenant team-a's group: recording rules over what
// Prometheus remote-writes, and an alert on a switch the test pushes. The
// query offset lets the remote-written samples arrive before a rule reads
// them, so that the recorded values are final.
const rulerGroupA = `name: e2e
interval: 1s
query_offset: 5s
rules:
  - record: job_handler:prometheus_http_requests:sum
    expr: sum by (job, handler) (prometheus_http_requests_total)
  - record: job:prometheus_tsdb_head_samples_appended:rate10s
    expr: sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[10s]))
  - record: seen
    expr: count(prometheus_http_requests_total) or vector(0)
  - alert: SwitchOn
    expr: alert_switch > 0
    for: 30s
    labels:
      severity: page
    annotations:
      summary: 'switch is {{ $value }}'
`

// rulerGroupB is tenant team-b's: the same queries over a tenant that
// has none of team-a's series.
const rulerGroupB = `name: e2e
interval: 1s
rules:
  - record: seen
    expr: count(prometheus_http_requests_total) or vector(0)
  - alert: SwitchOnB
    expr: alert_switch > 0
`

// TestRuler_AgainstPrometheusAndAlertmanager runs the ruler of the real
// argus binary over data the real Prometheus remote-writes: its
// recording-rule samples equal, at every timestamp, what Prometheus
// computes from the same expression over the same data; an alert with
// for: 30s fires, reaches the real Alertmanager, keeps firing with its
// activeAt across a kill -9 (ALERTS_FOR_STATE) and resolves in
// Alertmanager when its condition clears; tenant team-b's rules see none of team-a's series.
// While it fires, the real amtool lists it with its labels (requireAmtoolLists) and
// the requests of Grafana's alerting view get what Grafana reads (requireGrafanaAlertingView).
func TestRuler_AgainstPrometheusAndAlertmanager(t *testing.T) {
	skipIfShort(t)
	am := clustertest.StartAlertmanager(t)
	// The Alertmanager is named through DNS (dns+localhost, looked up by
	// the ruler) and the tenant is in the alerts' labels.
	amURL := "dns+" + strings.Replace(am.URL(), "127.0.0.1", "localhost", 1)
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ruler.alertmanager-url=" + amURL, "-ruler.tenant-label=tenant", "-ruler.external.url=http://argus.example/"}})
	prom := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		RemoteWrite: &clustertest.RemoteWrite{URL: a.PushURL(), Tenant: "team-a"},
	})
	postGroup(t, a, "team-a", "prom/rules", rulerGroupA)
	postGroup(t, a, "team-b", "prom/rules", rulerGroupB)

	var sw atomic.Int64
	sw.Store(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pushSwitch(ctx, a, &sw)

	// Recording rules against Prometheus, over the samples recorded once
	// remote write had been running for 10 s.
	from := time.Now().Add(5 * time.Second)
	time.Sleep(20 * time.Second)
	n := compareRecorded(t, a, prom, "job_handler:prometheus_http_requests:sum", `sum by (job, handler) (prometheus_http_requests_total)`, from)
	n += compareRecorded(t, a, prom, "job:prometheus_tsdb_head_samples_appended:rate10s", `sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[10s]))`, from)
	require.Greater(t, n, 20, "too few recorded samples compared")
	requireSeen(t, a, "team-a", func(v float64) bool { return v > 0 })
	requireSeen(t, a, "team-b", func(v float64) bool { return v == 0 })

	// The alert is pending, then fires and reaches Alertmanager with its
	// labels and annotations.
	active := alertActiveAt(t, a, "team-a", "SwitchOn", "pending")
	clustertest.Eventually(t, func() string {
		for _, al := range am.Alerts(t) {
			if al.Labels["alertname"] == "SwitchOn" {
				if al.Labels["severity"] != "page" || al.Labels["tenant"] != "team-a" || al.Annotations["summary"] != "switch is 1" || !strings.HasPrefix(al.GeneratorURL, "http://argus.example/") {
					return fmt.Sprintf("alert as Alertmanager holds it: %+v", al)
				}
				return ""
			}
		}
		return "SwitchOn not in Alertmanager"
	}, time.Until(active.Add(60*time.Second)))
	require.Equal(t, "firing", alertState(t, a, "team-a", "SwitchOn"))
	require.False(t, time.Now().Before(active.Add(30*time.Second)), "fired before its for: 30s")
	requireAmtoolLists(t, am)
	requireGrafanaAlertingView(t, a)

	// After a crash the firing alert is restored from ALERTS_FOR_STATE: it
	// fires again at once, with its activeAt, instead of waiting 30 s anew.
	// ALERTS_FOR_STATE is written at the evaluation time less the query
	// offset: the crash waits until its last sample shows the alert past
	// its for:, else Prometheus's restore starts the for: again.
	time.Sleep(time.Until(active.Add(40 * time.Second)))
	a.Kill(t)
	a.Restart(t)
	restarted := time.Now()
	clustertest.Eventually(t, func() string {
		als := rulerAlerts(t, a, "team-a")
		for _, al := range als {
			if al.Labels["alertname"] == "SwitchOn" && al.State == "firing" && al.ActiveAt.Truncate(time.Second).Equal(active) {
				return ""
			}
		}
		return fmt.Sprintf("alerts after restart %+v, activeAt before %s", als, active)
	}, 25*time.Second)
	require.Less(t, time.Since(restarted), 30*time.Second, "the restored alert waited its for: again")

	// The condition clears: the alert resolves in Alertmanager.
	sw.Store(0)
	clustertest.Eventually(t, func() string {
		for _, al := range am.Alerts(t) {
			if al.Labels["alertname"] == "SwitchOn" {
				return "SwitchOn still active in Alertmanager"
			}
		}
		return ""
	}, 30*time.Second)
	for _, al := range am.Alerts(t) {
		require.NotEqual(t, "SwitchOnB", al.Labels["alertname"], "team-b's alert saw team-a's series")
	}
	require.Equal(t, "", alertState(t, a, "team-b", "SwitchOnB"))
}

func postGroup(t *testing.T, a *clustertest.Process, tenantID, ns, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.URL()+"/prometheus/config/v1/rules/"+url.PathEscape(ns), strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(clustertest.TenantHeader, tenantID)
	req.Header.Set("Content-Type", "application/yaml")
	code, resp := a.Do(t, req)
	require.Equal(t, http.StatusAccepted, code, string(resp))
}

// pushSwitch pushes alert_switch for team-a every 500 ms until ctx ends;
// failed pushes (argus restarting) are ignored.
func pushSwitch(ctx context.Context, a *clustertest.Process, sw *atomic.Int64) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		series := []clustertest.TimeSeries{{Labels: clustertest.Labels("__name__", "alert_switch"), Samples: []clustertest.Sample{{T: time.Now().UnixMilli(), V: float64(sw.Load())}}}}
		_, _, _ = a.TryPush(ctx, "team-a", series)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// compareRecorded checks every sample of the recorded series name from
// `from` on against Prometheus's answer to expr at the sample's time, and
// returns how many it compared.
func compareRecorded(t *testing.T, a *clustertest.Process, prom *clustertest.Prometheus, name, expr string, from time.Time) int {
	t.Helper()
	now := time.Now()
	window := now.Sub(from).Truncate(time.Second)
	code, body := a.Query(t, "team-a", clustertest.PromAPI+"/query", url.Values{"query": {fmt.Sprintf("%s[%ds]", name, int(window.Seconds()))}, "time": {clustertest.FormatAPITime(now.UnixMilli())}})
	got := map[int64]map[string]float64{} // timestamp → series → value
	for _, s := range clustertest.MatrixData(t, code, body) {
		require.Equal(t, name, s.Metric["__name__"])
		delete(s.Metric, "__name__")
		for _, p := range s.Samples {
			if got[p.T] == nil {
				got[p.T] = map[string]float64{}
			}
			got[p.T][seriesKey(s.Metric)] = p.V
		}
	}
	require.NotEmpty(t, got, "no samples of %s", name)
	n := 0
	for ts, series := range got {
		pc, pb := prom.Query(t, "/api/v1/query", url.Values{"query": {expr}, "time": {clustertest.FormatAPITime(ts)}})
		want := vectorData(t, pc, pb)
		require.Equal(t, want, series, "%s at %d: Argus's recorded samples differ from Prometheus's %s", name, ts, expr)
		n += len(series)
	}
	return n
}

// requireSeen checks every sample of the tenant's seen series.
func requireSeen(t *testing.T, a *clustertest.Process, tenantID string, ok func(float64) bool) {
	t.Helper()
	code, body := a.Query(t, tenantID, clustertest.PromAPI+"/query", url.Values{"query": {"seen[10s]"}})
	ss := clustertest.MatrixData(t, code, body)
	require.Len(t, ss, 1, "tenant %s: %s", tenantID, body)
	require.NotEmpty(t, ss[0].Samples)
	for _, p := range ss[0].Samples {
		require.True(t, ok(p.V), "tenant %s: seen = %v", tenantID, p.V)
	}
}

// vectorData decodes an instant vector as series key → value.
func vectorData(t *testing.T, code int, body []byte) map[string]float64 {
	t.Helper()
	require.Equal(t, http.StatusOK, code, string(body))
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(clustertest.DecodeAPI(t, body).Data, &d))
	require.Equal(t, "vector", d.ResultType)
	out := map[string]float64{}
	for _, r := range d.Result {
		var s string
		require.NoError(t, json.Unmarshal(r.Value[1], &s))
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		out[seriesKey(r.Metric)] = v
	}
	return out
}

func seriesKey(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%q,", n, m[n])
	}
	return b.String()
}

// rulerAlert is an alert of /api/v1/alerts.
type rulerAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

func rulerAlerts(t *testing.T, a *clustertest.Process, tenantID string) []rulerAlert {
	t.Helper()
	code, body := a.Query(t, tenantID, clustertest.PromAPI+"/alerts", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var d struct {
		Alerts []rulerAlert `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(clustertest.DecodeAPI(t, body).Data, &d))
	return d.Alerts
}

// alertState returns the state of the tenant's alert name, "" if it has none.
func alertState(t *testing.T, a *clustertest.Process, tenantID, name string) string {
	t.Helper()
	for _, al := range rulerAlerts(t, a, tenantID) {
		if al.Labels["alertname"] == name {
			return al.State
		}
	}
	return ""
}

// alertActiveAt waits until the tenant's alert name is in state (any
// state if empty) and returns its activeAt, to the second (the precision
// of ALERTS_FOR_STATE).
func alertActiveAt(t *testing.T, a *clustertest.Process, tenantID, name, state string) time.Time {
	t.Helper()
	var at time.Time
	clustertest.Eventually(t, func() string {
		for _, al := range rulerAlerts(t, a, tenantID) {
			if al.Labels["alertname"] == name && (state == "" || al.State == state) {
				at = al.ActiveAt.Truncate(time.Second)
				return ""
			}
		}
		return fmt.Sprintf("no %s alert %s", state, name)
	}, 30*time.Second)
	return at
}
