package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestNativeHistogramsAgainstPrometheus runs the real Prometheus 3.16
// scraping a client_golang exporter over protobuf with native histograms on
// and remote-writing everything, histograms included, to argus over remote
// write 2.0. The job nhcb scrapes the same exporter with its classic
// histograms converted to custom buckets (schema -53), which Prometheus
// 3.16 sends over remote write 2.0 only.
// The same PromQL queries over the histograms answer the same from
// Prometheus's TSDB and from argus: from argus's head, then from its
// persisted chunks once Prometheus stopped and every chunk was flushed, and
// after kill -9 and a restart.
func TestNativeHistogramsAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "hist"
	exp := clustertest.StartHistExporter(t)
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=200ms", "-ingester.max-chunk-idle=2s",
	}})
	p := clustertest.StartHistPrometheus(t, exp, a.PushURL(), tenant)
	w := clustertest.NewEquivalenceWindow(t, p, 15*time.Second, 40*time.Second, 20*time.Second)
	w.SleepPastEnd()
	at := clustertest.FormatAPITime(w.End.UnixMilli())

	// Every raw sample in the window, once remote write caught up.
	raw := url.Values{"query": {fmt.Sprintf(`{__name__=~"argus_test_.+|job:.+"}[%ds]`, int(w.End.Sub(w.W0).Seconds()))}, "time": {at}}
	clustertest.Eventually(t, func() string {
		d, _ := clustertest.DiffAnswers(t, p, a, tenant, "/query", raw, true)
		return d
	}, 60*time.Second)

	// The reference answers, kept to compare with after Prometheus stops.
	type answer struct {
		path   string
		params url.Values
		code   int
		body   []byte
	}
	var answers []answer
	for _, q := range append(clustertest.HistQueries, raw.Get("query")) {
		answers = append(answers, answer{path: "/query", params: url.Values{"query": {q}, "time": {at}}})
		if !strings.HasSuffix(q, "s]") { // Range vectors have no range query.
			answers = append(answers, answer{path: "/query_range", params: url.Values{"query": {q},
				"start": {clustertest.FormatAPITime(w.E0.UnixMilli())}, "end": {at}, "step": {"5s"}}})
		}
	}
	histograms := 0
	for i := range answers {
		an := &answers[i]
		an.code, an.body = p.Query(t, "/api/v1"+an.path, an.params)
		require.Equal(t, http.StatusOK, an.code, "%s", an.body)
		require.Positive(t, clustertest.ResultCount(apiData(t, an.code, an.body)), "prometheus's answer to %s is empty", an.params.Get("query"))
		histograms += strings.Count(string(an.body), `"buckets"`) // One per histogram sample.
	}
	require.Greater(t, histograms, 200, "the answers hold histogram samples")
	compare := func(when string) {
		t.Helper()
		for _, an := range answers {
			ac, ab := a.Query(t, tenant, clustertest.PromAPI+an.path, an.params)
			if d, _ := clustertest.DiffBodies(t, an.code, an.body, ac, ab, an.path == "/query"); d != "" {
				t.Errorf("%s: %s %s (-prometheus +argus):\n%s", when, an.path, an.params.Get("query"), d)
			}
		}
	}
	compare("from the head")

	// Stop the scrapes: every open chunk goes idle, is cut and persisted.
	p.Stop(t)
	exp.Stop()
	waitAllPersisted(t, a, tenant)
	compare("from persisted chunks")

	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 and restart")
}

// waitAllPersisted waits until tenant has no chunk left in a's memory (the
// open ones cut as idle, all flushed), with -ingester.max-chunk-idle short.
func waitAllPersisted(t *testing.T, a *clustertest.Process, tenant string) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		code, body := a.Query(t, tenant, clustertest.PromAPI+"/status/tsdb", nil)
		var st struct {
			Data struct {
				HeadStats struct {
					ChunkCount int64 `json:"chunkCount"`
				} `json:"headStats"`
			} `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
			return fmt.Sprintf("status %d: %s", code, body)
		}
		if n := st.Data.HeadStats.ChunkCount; n > 0 {
			return fmt.Sprintf("%d chunks still in memory", n)
		}
		return ""
	}, 60*time.Second)
	require.Positive(t, a.Metric(t, "argus_ingester_chunks_persisted_total", nil))
}
