package clustere2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// seqTarget serves agent_test_scrape N, N being the number of its scrapes
// so far, so that the stored values show every scrape that arrived.
type seqTarget struct {
	srv     *httptest.Server
	scrapes atomic.Int64
}

func startSeqTarget(t *testing.T) *seqTarget {
	s := &seqTarget{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "agent_test_scrape %d\n", s.scrapes.Add(1))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// outageProxy forwards remote writes to a receiver, or answers 503 while
// down, as a storage that is unreachable.
type outageProxy struct {
	down atomic.Bool
	srv  *httptest.Server
}

func startOutageProxy(t *testing.T, to string) *outageProxy {
	p := &outageProxy{}
	client := &http.Client{Timeout: 10 * time.Second}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "storage down", http.StatusServiceUnavailable)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, to, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// storedValues returns the raw values of agent_test_scrape{instance} that
// Prometheus holds over the last 10 minutes, in time order.
func storedValues(t *testing.T, p *clustertest.Prometheus, instance string) []int {
	t.Helper()
	code, body := p.Query(t, "/api/v1/query", url.Values{"query": {fmt.Sprintf(`agent_test_scrape{instance=%q}[10m]`, instance)}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	if len(r.Data.Result) == 0 {
		return nil
	}
	require.Len(t, r.Data.Result, 1)
	var out []int
	for _, v := range r.Data.Result[0].Values {
		n, err := strconv.Atoi(v[1].(string))
		require.NoError(t, err)
		out = append(out, n)
	}
	return out
}

// TestScraperAgentQueueSurvivesKill runs argus as an agent
// (-target=scraper alone) remote-writing to the real Prometheus (its
// remote-write receiver: any remote-write endpoint, not only Argus) through
// the WAL-backed queue of -scraper.wal-dir. The storage is down while the
// agent scrapes; the agent is killed with SIGKILL and started again; then
// the storage comes back. Every scrape the killed agent made reaches
// Prometheus, in order, exactly once, and the new agent's follow: the
// stored values of each target are 1, 2, ..., with one gap at most, the
// scrape in flight at the kill (served, not yet written to the queue).
func TestScraperAgentQueueSurvivesKill(t *testing.T) {
	skipIfShort(t)
	prom := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, Flags: []string{"--web.enable-remote-write-receiver"}})
	proxy := startOutageProxy(t, prom.URL()+"/api/v1/write")
	proxy.down.Store(true)
	targets := []*seqTarget{startSeqTarget(t), startSeqTarget(t), startSeqTarget(t)}
	var addrs []string
	for _, s := range targets {
		addrs = append(addrs, strconv.Quote(strings.TrimPrefix(s.srv.URL, "http://")))
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(
		"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: agent\n    static_configs:\n      - targets: [%s]\n", strings.Join(addrs, ", "))), 0o644))
	agent := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-target=scraper", "-scraper.config-file=" + cfgPath,
		"-scraper.remote-write-url=" + proxy.srv.URL + "/api/v1/write",
		"-scraper.wal-dir=" + filepath.Join(dir, "wal"),
		// A scraper gossips its ring: not on the default port, which
		// another test or CI run on the machine may hold.
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(clustertest.FreeMemberlistPorts(t, 1)[0]),
	}})

	// The storage is down: the agent scrapes, queues and retries.
	clustertest.Eventually(t, func() string {
		for i, s := range targets {
			if n := s.scrapes.Load(); n < 5 {
				return fmt.Sprintf("target %d scraped %d times", i, n)
			}
		}
		if r := agent.Metric(t, "argus_scraper_queue_retries_total", nil); r < 2 {
			return fmt.Sprintf("%v retries", r)
		}
		return ""
	}, time.Minute)
	require.Positive(t, agent.Metric(t, "argus_scraper_queue_bytes", nil))
	agent.Kill(t)
	served := make([]int, len(targets))
	for i, s := range targets {
		served[i] = int(s.scrapes.Load())
	}
	t.Logf("scrapes served before the kill -9: %v", served)

	agent.Restart(t)
	time.Sleep(2 * time.Second) // the new agent queues behind the old records
	proxy.down.Store(false)
	clustertest.Eventually(t, func() string {
		for i, s := range targets {
			inst := strings.TrimPrefix(s.srv.URL, "http://")
			got := storedValues(t, prom, inst)
			if len(got) == 0 || got[len(got)-1] < served[i]+3 {
				return fmt.Sprintf("target %d: prometheus holds %v, served %d before the kill", i, got, served[i])
			}
			if msg := consecutive(got, served[i]); msg != "" {
				return fmt.Sprintf("target %d (served %d before the kill): %s: %v", i, served[i], msg, got)
			}
		}
		return ""
	}, time.Minute)
	require.Zero(t, agent.Metric(t, "argus_scraper_queue_dropped_requests_total", nil))
}

// consecutive checks that got is 1, 2, ... in order with no repeat, and
// no gap but possibly the value inFlight (the scrape a kill interrupted).
func consecutive(got []int, inFlight int) string {
	want := 1
	for _, v := range got {
		if v == want+1 && want == inFlight {
			want++
		}
		if v != want {
			return fmt.Sprintf("want %d, got %d", want, v)
		}
		want++
	}
	return ""
}
