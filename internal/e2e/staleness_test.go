package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// staleExporters are two scrape targets that change at one moment (gone):
// churn stops exposing two of its five stale_gauge series, and down
// answers 503 from then on. Prometheus then writes staleness markers
// (StaleNaN) for the vanished series and for every series of down.
type staleExporters struct {
	gone        atomic.Bool
	churn, down string // host:port
}

func startStaleExporters(t *testing.T) *staleExporters {
	t.Helper()
	e := &staleExporters{}
	var scrapes atomic.Int64
	churn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		ids := 5
		if e.gone.Load() {
			ids = 3
		}
		fmt.Fprintln(w, "# HELP stale_gauge A gauge whose series 3 and 4 vanish.\n# TYPE stale_gauge gauge")
		for id := range ids {
			fmt.Fprintf(w, "stale_gauge{id=\"%d\"} %d\n", id, int64(id)*10+n%3)
		}
	}))
	t.Cleanup(churn.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if e.gone.Load() {
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "# TYPE down_metric gauge")
		for k := range 3 {
			fmt.Fprintf(w, "down_metric{k=\"%d\"} %d\n", k, k+1)
		}
	}))
	t.Cleanup(down.Close)
	e.churn, e.down = strings.TrimPrefix(churn.URL, "http://"), strings.TrimPrefix(down.URL, "http://")
	return e
}

// TestStalenessAgainstPrometheus has the real Prometheus 3.16 scrape, every
// second, a target whose series partly vanish and a target that goes down,
// and remote-write everything to an all-in-one Argus in remote write 1.0
// (tenant rw1) and 2.0 (tenant rw2). The staleness markers pass through
// untouched: the raw samples are equal, and instant queries before, at and
// after the disappearance, and range queries across it, answer exactly as
// Prometheus's own TSDB (the vanished series end at the same step, with no
// 5-minute look-back tail). The same holds after Argus is killed with
// SIGKILL and restarted (the markers replayed from the WAL) and once the
// vanished series' chunks are persisted (read from the DB): a marker
// turned into an ordinary NaN would be a value the queries return.
func TestStalenessAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	e := startStaleExporters(t)
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=1s", "-ingester.max-chunk-idle=3s", // vanished series' chunks are persisted
	}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"churn": e.churn, "down": e.down},
		NoSelfScrape:   true,
		RemoteWrites: []clustertest.RemoteWrite{
			{URL: a.PushURL(), Tenant: "rw2", Name: "rw2", ProtobufMessage: "io.prometheus.write.v2.Request"},
			{URL: a.PushURL(), Tenant: "rw1", Name: "rw1"},
		},
	})
	w0 := p.ReadyAt.Add(5 * time.Second).Truncate(time.Second)
	gone := w0.Add(15 * time.Second)
	end := gone.Add(15 * time.Second)
	time.Sleep(time.Until(gone)) // Scrapes accumulate in wall-clock time: nothing to poll.
	e.gone.Store(true)
	time.Sleep(time.Until(end.Add(3 * time.Second)))

	ms := func(t time.Time) string { return clustertest.FormatAPITime(t.UnixMilli()) }
	var instants []time.Time
	for _, d := range []time.Duration{-2, 1, 2, 3, 5, 10, 15} {
		instants = append(instants, gone.Add(d*time.Second))
	}
	exprs := []string{`stale_gauge`, `{job="down"}`, `count({__name__=~"stale_gauge|down_metric"})`, `up`}
	rangeExprs := append(exprs, `max_over_time(stale_gauge[3s])`, `sum by (job) ({__name__=~"stale_gauge|down_metric"})`)
	compare := func(stage string) {
		t.Helper()
		for _, tenant := range []string{"rw1", "rw2"} {
			raw := url.Values{"query": {fmt.Sprintf(`{__name__=~"stale_gauge|down_metric|up"}[%ds]`, int(end.Sub(w0).Seconds()))}, "time": {ms(end)}}
			clustertest.Eventually(t, func() string {
				d, _, _ := clustertest.DiffRaw(t, p, a, tenant, raw)
				return d
			}, 60*time.Second)
			for _, q := range exprs {
				for _, at := range instants {
					params := url.Values{"query": {q}, "time": {ms(at)}}
					d, _ := clustertest.DiffAnswers(t, p, a, tenant, "/query", params, true) // An instant vector is in no set order.
					require.Empty(t, d, "%s, tenant %s: %s at %s (-prometheus +argus)", stage, tenant, q, ms(at))
				}
			}
			for _, q := range rangeExprs {
				params := url.Values{"query": {q}, "start": {ms(w0.Add(5 * time.Second))}, "end": {ms(end)}, "step": {"1s"}}
				d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
				require.Empty(t, d, "%s, tenant %s: %s over the disappearance (-prometheus +argus)", stage, tenant, q)
				require.Positive(t, n, q)
			}
		}
		t.Logf("%s: every answer equal", stage)
	}
	compare("live")

	// Not vacuous: before the disappearance 5 + 3 series, after it the 3
	// remaining stale_gauge series only, in Prometheus.
	count := func(at time.Time) string {
		_, body := p.Query(t, "/api/v1/query", url.Values{"query": {`count({__name__=~"stale_gauge|down_metric"})`}, "time": {ms(at)}})
		return string(body)
	}
	require.Contains(t, count(gone.Add(-2*time.Second)), `"8"]`)
	require.Contains(t, count(gone.Add(5*time.Second)), `"3"]`)

	// The vanished series' chunks go idle and are persisted.
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_chunks_persisted_total", nil); n < 2*5 {
			return fmt.Sprintf("%v chunks persisted", n)
		}
		return ""
	}, 60*time.Second)
	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 and restart (WAL replay and persisted chunks)")
}
