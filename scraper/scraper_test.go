package scraper

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// fakeMembership is a gossip cluster whose alive scrapers the test sets.
type fakeMembership struct {
	mu      sync.Mutex
	self    string
	members []string
}

func (f *fakeMembership) AliveMembers(string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *fakeMembership) LocalMember() string { return f.self }

func (f *fakeMembership) set(m ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = m
}

// jobsPushed returns the jobs whose up series the pusher has received.
func (p *recordingPusher) jobsPushed() []string {
	return p.jobsWhere(func(name string, _ *arguspb.TimeSeries) bool { return name == "up" })
}

// jobsWhere returns the jobs, sorted, of the series the pusher has
// received for which match holds.
func (p *recordingPusher) jobsWhere(match func(name string, ts *arguspb.TimeSeries) bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.reqs {
		for _, ts := range r.Timeseries {
			name, job := "", ""
			for _, l := range ts.Labels {
				switch l.Name {
				case "__name__":
					name = l.Value
				case "job":
					job = l.Value
				}
			}
			if match(name, ts) && !slices.Contains(out, job) {
				out = append(out, job)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (p *recordingPusher) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs, p.tenant = nil, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(50 * time.Millisecond)
	}
}

func startTestScraper(t *testing.T, cfgPath string, m Membership) (*Scraper, *recordingPusher) {
	t.Helper()
	p := &recordingPusher{}
	cfg := Config{ConfigFile: cfgPath, Tenant: DefaultTenant, RemoteTimeout: time.Second, MembershipPeriod: 50 * time.Millisecond}
	s, err := New(cfg, Deps{Pusher: p, Membership: m})
	require.NoError(t, err)
	require.NoError(t, s.Starting(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Running(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Stopping(context.Background()))
		require.NoError(t, s.Stopping(context.Background()), "Stopping is idempotent")
	})
	return s, p
}

func testTarget(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "test_value 1")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func jobYAML(name, target string) string {
	return fmt.Sprintf("  - job_name: %s\n    scrape_interval: 100ms\n    scrape_timeout: 100ms\n    static_configs: [{targets: [%q]}]\n", name, target)
}

func TestScraper_ReloadKeepsLastGoodConfig(t *testing.T) {
	target := testTarget(t)
	cfgPath := filepath.Join(t.TempDir(), "p.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("scrape_configs:\n"+jobYAML("a", target)), 0o644))
	s, p := startTestScraper(t, cfgPath, nil)
	waitFor(t, "job a scraped", func() bool { return slices.Equal(p.jobsPushed(), []string{"a"}) })

	for _, bad := range []string{
		"scrape_configs:\n" + jobYAML("a", target) + "    scrape_intervall: 1s\n",
		"scrape_configs:\n" + jobYAML("a", target) + "    relabel_configs: [{source_labels: [job], regex: '([', target_label: x}]\n",
		"scrape_configs:\n" + jobYAML("a", target) + jobYAML("a", target),
		"rule_files: [x.yml]\nscrape_configs:\n" + jobYAML("a", target),
	} {
		require.NoError(t, os.WriteFile(cfgPath, []byte(bad), 0o644))
		err := s.Reload()
		require.Error(t, err, bad)
		id, ok := apierror.IDOf(err)
		require.True(t, ok, "%v", err)
		require.Equal(t, apierror.InvalidScrapeConfig, id)
	}
	p.reset()
	waitFor(t, "job a still scraped after refused reloads", func() bool { return slices.Equal(p.jobsPushed(), []string{"a"}) })

	require.NoError(t, os.WriteFile(cfgPath, []byte("scrape_configs:\n"+jobYAML("b", target)), 0o644))
	require.NoError(t, s.Reload())
	waitFor(t, "job b scraped, a no more", func() bool {
		p.reset() // a scrape of a in flight during the reload may still land
		time.Sleep(300 * time.Millisecond)
		return slices.Equal(p.jobsPushed(), []string{"b"})
	})
}

func TestScraper_TakesOverOnMembershipChange(t *testing.T) {
	var targets []string
	var cfg strings.Builder
	cfg.WriteString("scrape_configs:\n")
	for i := range 20 {
		targets = append(targets, testTarget(t))
		cfg.WriteString(jobYAML(fmt.Sprintf("j%02d", i), targets[i]))
	}
	cfgPath := filepath.Join(t.TempDir(), "p.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg.String()), 0o644))
	m := &fakeMembership{self: "me", members: []string{"me", "other"}}
	s, p := startTestScraper(t, cfgPath, m)

	// The jobs this scraper owns, as the ring says.
	var mine []string
	waitFor(t, "the first filtering", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.assigned != nil && len(s.assigned.all) == 20
	})
	s.mu.Lock()
	for job, ts := range s.assigned.all {
		if ts[0].owner == "me" {
			mine = append(mine, job)
		}
	}
	s.mu.Unlock()
	slices.Sort(mine)
	require.NotEmpty(t, mine)
	require.Less(t, len(mine), 20)
	waitFor(t, "its own targets scraped", func() bool { return len(p.jobsPushed()) == len(mine) })
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, mine, p.jobsPushed(), "exactly its own targets are scraped")

	m.set("me") // the other scraper died
	waitFor(t, "every target scraped", func() bool { return len(p.jobsPushed()) == 20 })
}

// staleJobs returns the jobs for whose test_value series the pusher
// received a staleness marker.
// staleJobs returns the jobs whose up series got a staleness marker: only a
// stopped scrape loop writes one (a failed scrape, as a timeout on a loaded
// machine, marks the target's scraped series stale but writes up 0).
func (p *recordingPusher) staleJobs() []string {
	return p.jobsWhere(func(name string, ts *arguspb.TimeSeries) bool {
		return name == "up" && slices.ContainsFunc(ts.Samples, func(smp *arguspb.Sample) bool { return value.IsStaleNaN(smp.Value) })
	})
}

// TestScraper_GivenUpTargetsGoStale: when another scraper joins, the
// targets it takes are stopped here, and their series get staleness
// markers, as when a target disappears from discovery.
func TestScraper_GivenUpTargetsGoStale(t *testing.T) {
	var cfg strings.Builder
	cfg.WriteString("scrape_configs:\n")
	for i := range 20 {
		cfg.WriteString(jobYAML(fmt.Sprintf("j%02d", i), testTarget(t)))
	}
	cfgPath := filepath.Join(t.TempDir(), "p.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg.String()), 0o644))
	m := &fakeMembership{self: "me", members: []string{"me"}}
	s, p := startTestScraper(t, cfgPath, m)
	waitFor(t, "every target scraped", func() bool { return len(p.jobsPushed()) == 20 })
	require.Empty(t, p.staleJobs())

	m.set("me", "other")
	var given []string
	waitFor(t, "the filtering with two scrapers", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		given = given[:0]
		for job, ts := range s.assigned.all {
			if ts[0].owner == "other" {
				given = append(given, job)
			}
		}
		return len(s.assigned.ring.Members()) == 2
	})
	slices.Sort(given)
	require.NotEmpty(t, given)
	require.Less(t, len(given), 20)
	waitFor(t, "staleness markers of the given-up targets", func() bool { return slices.Equal(p.staleJobs(), given) })
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, given, p.staleJobs(), "only the given-up targets go stale")
}
