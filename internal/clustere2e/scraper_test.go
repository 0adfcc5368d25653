package clustere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// countingTarget is an exporter of one constant gauge that counts its scrapes.
type countingTarget struct {
	srv     *httptest.Server
	scrapes atomic.Int64
}

func (c *countingTarget) addr() string { return strings.TrimPrefix(c.srv.URL, "http://") }

func startCountingTargets(t *testing.T, n int) []*countingTarget {
	out := make([]*countingTarget, n)
	for i := range out {
		c := &countingTarget{}
		c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			c.scrapes.Add(1)
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprintf(w, "scrape_test_value %d\n", i)
		}))
		t.Cleanup(c.srv.Close)
		out[i] = c
	}
	return out
}

// owners returns, as scraper s reports it (/prometheus/api/v1/targets),
// the owner of every active target by address.
func owners(t *testing.T, s *clustertest.Process) map[string]string {
	t.Helper()
	code, body := s.Query(t, "anonymous", clustertest.PromAPI+"/targets", nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels  map[string]string `json:"labels"`
				Scraper string            `json:"scraper"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	out := map[string]string{}
	for _, at := range r.Data.ActiveTargets {
		require.Empty(t, out[at.Labels["instance"]], "target %s listed twice by one scraper", at.Labels["instance"])
		out[at.Labels["instance"]] = at.Scraper
	}
	return out
}

// agreedOwners waits until every scraper of alive reports the same owner for
// each of the targets, each owner one of alive, and returns the owners.
func agreedOwners(t *testing.T, scrapers []*clustertest.Process, names []string, targets []*countingTarget, timeout time.Duration) map[string]string {
	t.Helper()
	var agreed map[string]string
	clustertest.Eventually(t, func() string {
		first := owners(t, scrapers[0])
		if len(first) != len(targets) {
			return fmt.Sprintf("%s lists %d targets", names[0], len(first))
		}
		for addr, o := range first {
			if !slices.Contains(names, o) {
				return fmt.Sprintf("target %s owned by %q, not an alive scraper", addr, o)
			}
		}
		for i, s := range scrapers[1:] {
			if got := owners(t, s); fmt.Sprint(got) != fmt.Sprint(first) {
				return fmt.Sprintf("%s and %s disagree on the owners", names[0], names[i+1])
			}
		}
		agreed = first
		return ""
	}, timeout)
	return agreed
}

// requireScrapedOncePerInterval counts each target's scrapes over window:
// scraped by exactly one scraper at a 1 s interval, each gets window/1s
// scrapes, give or take the one at each edge of the window (and one tick a
// loaded machine may delay past it); scraped by two it would get twice as
// many.
func requireScrapedOncePerInterval(t *testing.T, targets []*countingTarget, window time.Duration) {
	t.Helper()
	before := make([]int64, len(targets))
	for i, c := range targets {
		before[i] = c.scrapes.Load()
	}
	time.Sleep(window)
	want := int64(window / time.Second)
	for i, c := range targets {
		n := c.scrapes.Load() - before[i]
		require.True(t, n >= want-2 && n <= want+1, "target %d scraped %d times in %s (want %d, one scraper per target)", i, n, window, want)
	}
}

// TestScrapersShareTargets runs three scrapers (-target=scraper, one
// memberlist cluster, remote-writing to one Argus) over 30 static targets:
// each target is owned and scraped by exactly one of them; after a kill -9
// of one, its targets are taken over by the two others, and again each
// target is scraped once per interval; when it joins again, its targets
// (and only they) come back to it; when another leaves (SIGTERM), only the
// leaver's targets move.
func TestScrapersShareTargets(t *testing.T) {
	skipIfShort(t)
	targets := startCountingTargets(t, 30)
	addrs := make([]string, len(targets))
	for i, c := range targets {
		addrs[i] = strconv.Quote(c.addr())
	}
	cfgPath := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(
		"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: [%s]\n", strings.Join(addrs, ", "))), 0o644))

	storage := clustertest.StartArgus(t, clustertest.Options{})
	ports := clustertest.FreeMemberlistPorts(t, 3)
	join := make([]string, len(ports))
	for i, p := range ports {
		join[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	names := []string{"scraper-0", "scraper-1", "scraper-2"}
	scrapers := make([]*clustertest.Process, 3)
	for i := range scrapers {
		scrapers[i] = clustertest.StartArgus(t, clustertest.Options{Flags: []string{
			"-target=scraper", "-scraper.config-file=" + cfgPath, "-scraper.remote-write-url=" + storage.PushURL(),
			"-memberlist.nodename=" + names[i], "-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(ports[i]),
			"-memberlist.join=" + strings.Join(join, ","), "-memberlist.rejoin-interval=1s",
		}})
	}

	own := agreedOwners(t, scrapers, names, targets, 60*time.Second)
	perScraper := map[string]int{}
	for _, o := range own {
		perScraper[o]++
	}
	t.Logf("targets per scraper: %v", perScraper)
	require.Len(t, perScraper, 3, "every scraper owns some of the 30 targets")
	requireScrapedOncePerInterval(t, targets, 10*time.Second)
	clustertest.Eventually(t, func() string {
		code, body := storage.Query(t, "anonymous", clustertest.PromAPI+"/query", map[string][]string{"query": {`count(up{job="t"} == 1)`}})
		if code != http.StatusOK || !strings.Contains(string(body), `"30"`) {
			return fmt.Sprintf("storage: %s", body)
		}
		return ""
	}, 30*time.Second)

	// kill -9 scraper-0: its targets go to the two others.
	var orphans []int
	for i, c := range targets {
		if own[c.addr()] == names[0] {
			orphans = append(orphans, i)
		}
	}
	killed := time.Now()
	scrapers[0].Kill(t)
	before := make([]int64, len(targets))
	for i, c := range targets {
		before[i] = c.scrapes.Load()
	}
	// The bound: memberlist's failure detection (a few seconds) plus the
	// membership check and the scrape manager's reload (a second each)
	// plus one interval, well within the ring's heartbeat timeout (1 min).
	clustertest.Eventually(t, func() string {
		for _, i := range orphans {
			if targets[i].scrapes.Load() == before[i] {
				return fmt.Sprintf("target %d (scraper-0's) not scraped since the kill", i)
			}
		}
		return ""
	}, time.Minute)
	t.Logf("scraper-0's %d targets scraped again %s after its kill -9", len(orphans), time.Since(killed).Round(100*time.Millisecond))
	after := agreedOwners(t, scrapers[1:], names[1:], targets, 30*time.Second)
	for i, c := range targets {
		if !slices.Contains(orphans, i) {
			require.Equal(t, own[c.addr()], after[c.addr()], "target %d of a surviving scraper moved", i)
		}
	}
	requireStatusPage(t, scrapers[1], names[1:], after)
	requireScrapedOncePerInterval(t, targets, 10*time.Second)

	// scraper-0 comes back (joins again under its name): its tokens are
	// those it had, so exactly its old targets move back to it, the others
	// stay, and again each target is scraped once per interval.
	scrapers[0].Restart(t)
	rejoined := agreedOwners(t, scrapers, names, targets, time.Minute)
	require.Equal(t, own, rejoined, "after the rejoin every target has its first owner")
	requireScrapedOncePerInterval(t, targets, 10*time.Second)

	// scraper-2 leaves (SIGTERM): only its targets move, to the two others.
	scrapers[2].Stop(t)
	left := agreedOwners(t, scrapers[:2], names[:2], targets, time.Minute)
	for _, c := range targets {
		if own[c.addr()] != names[2] {
			require.Equal(t, own[c.addr()], left[c.addr()], "target %s of a staying scraper moved", c.addr())
		}
	}
	requireScrapedOncePerInterval(t, targets, 10*time.Second)
}

// requireStatusPage requires /scraper/targets of s to list exactly the
// scrapers names, each with the targets that owners gives it.
func requireStatusPage(t *testing.T, s *clustertest.Process, names []string, owners map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/scraper/targets", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	code, body := s.Do(t, req)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var page struct {
		Scrapers map[string][]struct {
			Labels map[string]string `json:"labels"`
		} `json:"scrapers"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	got := map[string]string{}
	var listed []string
	for name, ts := range page.Scrapers {
		listed = append(listed, name)
		for _, tg := range ts {
			got[tg.Labels["instance"]] = name
		}
	}
	slices.Sort(listed)
	require.Equal(t, names, listed)
	require.Equal(t, owners, got)
}
