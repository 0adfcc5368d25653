package scraper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/scrape"
	"go.yaml.in/yaml/v2"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/scraper/monitors"

	// The service discoveries a scrape config may use besides static_configs.
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
)

// Role is the role name scrapers gossip in their memberlist metadata: the
// members that share the targets.
const Role = "scraper"

// Membership is the gossip cluster as the scraper reads it; *ring.KV
// satisfies it. Nil means this scraper is alone and scrapes every target.
type Membership interface {
	// AliveMembers returns the names of the alive members running role, sorted.
	AliveMembers(role string) []string
	// LocalMember returns this process's member name.
	LocalMember() string
}

// Deps are the runtime dependencies of a Scraper.
type Deps struct {
	Pusher     Pusher                // required: where scraped samples go
	Membership Membership            // nil: scrape every target
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
}

// Scraper runs Prometheus's discovery and scrape managers over the targets
// this scraper owns. It is a service: Starting loads the configuration (and
// fails on a bad one), Running discovers, filters and scrapes until its
// context ends, Stopping stops the scrape loops. Reload and the HTTP
// handlers are safe for concurrent use.
//
// Lock order: mu alone; no lock is held while calling into the managers,
// except applyMu, which serialises configuration changes (Starting,
// Reload) and is taken before mu, and reloadMu, which Reload holds
// around loading and applying and is taken before applyMu.
type Scraper struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	metrics *metrics
	app     *appendable

	applyMu sync.Mutex // serialises ApplyConfig of both managers
	// reloadMu serialises Reload (loading and applying as one), so that a
	// reload that read older generated jobs never applies after a newer one.
	reloadMu sync.Mutex
	watcher  *monitors.Watcher // ServiceMonitors and PodMonitors; nil unless -scraper.monitors.enabled

	// disc, scrape and cancel are set by Starting before started turns
	// true, and not changed after: readers outside the service's own
	// goroutine (Reload, the handlers) check started first.
	started atomic.Bool
	stopped atomic.Bool // Stopping ran
	disc    *discovery.Manager
	scrape  *scrape.Manager
	cancel  context.CancelFunc // ends discovery
	// out feeds the scrape manager the filtered target sets; one slot,
	// replaced by a newer set not yet read.
	out     chan map[string][]*targetgroup.Group
	refresh chan struct{} // a reload asks the loop to filter again

	mu      sync.Mutex
	prom    *config.Config                  // last good configuration; guarded by mu
	jobs    map[string]*config.ScrapeConfig // its scrape configs by job; guarded by mu
	lastErr error                           // last reload's error, nil after a good one; guarded by mu
	// generated are the jobs of the ServiceMonitor and PodMonitor resources
	// (scraper/monitors), applied next to the file's; guarded by mu.
	generated []yaml.MapSlice
	tsets     map[string][]*targetgroup.Group // last discovered, unfiltered; guarded by mu
	assigned  *assignment                     // last filtering; guarded by mu
}

// New returns a Scraper. It does no I/O and starts nothing.
func New(cfg Config, deps Deps) (*Scraper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Pusher == nil {
		return nil, errors.New("scraper: a Pusher is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(deps.Registerer)
	return &Scraper{
		cfg: cfg, deps: deps, logger: logger, metrics: m,
		app:     &appendable{pusher: deps.Pusher, defaultTenant: cfg.Tenant, metrics: m},
		out:     make(chan map[string][]*targetgroup.Group, 1),
		refresh: make(chan struct{}, 1),
	}, nil
}

// loadConfig reads and validates the configuration file: Prometheus's
// parser in agent mode (no rule_files, no alerting), strict about unknown
// fields; relabelling regexes are compiled by the parser.
func (s *Scraper) loadConfig() (*config.Config, map[string]*config.ScrapeConfig, error) {
	c, err := config.LoadFile(s.cfg.ConfigFile, true, s.logger)
	if err != nil {
		return nil, nil, apierror.Errorf(apierror.InvalidScrapeConfig, "%w", err)
	}
	scfgs, err := c.GetScrapeConfigs()
	if err != nil {
		return nil, nil, apierror.Errorf(apierror.InvalidScrapeConfig, "%s: %w", s.cfg.ConfigFile, err)
	}
	jobs := make(map[string]*config.ScrapeConfig, len(scfgs))
	for _, sc := range scfgs {
		jobs[sc.JobName] = sc
	}
	if err := s.addGenerated(c, jobs); err != nil {
		return nil, nil, err
	}
	return c, jobs, nil
}

// addGenerated adds the jobs generated from ServiceMonitors and PodMonitors
// to c and jobs, with the defaults of c's global section.
func (s *Scraper) addGenerated(c *config.Config, jobs map[string]*config.ScrapeConfig) error {
	s.mu.Lock()
	generated := s.generated
	s.mu.Unlock()
	extra, err := monitors.ScrapeConfigs(generated, c.GlobalConfig)
	if err != nil {
		return apierror.Errorf(apierror.InvalidScrapeConfig, "%w", err)
	}
	for _, sc := range extra {
		if _, ok := jobs[sc.JobName]; ok {
			return apierror.Errorf(apierror.InvalidScrapeConfig, "%s: job %q is also generated from a monitor resource", s.cfg.ConfigFile, sc.JobName)
		}
		jobs[sc.JobName] = sc
		c.ScrapeConfigs = append(c.ScrapeConfigs, sc)
	}
	return nil
}

// setGenerated makes generated the jobs of the monitor resources and
// reloads; it is the monitors.Watcher's Apply.
func (s *Scraper) setGenerated(generated []yaml.MapSlice) error {
	s.mu.Lock()
	s.generated = generated
	s.mu.Unlock()
	return s.Reload()
}

// Starting loads the configuration, refusing a bad one, and builds and
// configures the discovery and scrape managers.
func (s *Scraper) Starting(ctx context.Context) error {
	c, jobs, err := s.loadConfig()
	if err != nil {
		return err
	}
	reg := s.deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return fmt.Errorf("discovery metrics: %w", err)
	}
	discCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.disc = discovery.NewManager(discCtx, s.logger.With("component", "discovery"), reg, sdMetrics, discovery.Name("scrape"))
	if s.disc == nil {
		cancel()
		return errors.New("discovery manager: metrics registration failed")
	}
	s.scrape, err = scrape.NewManager(&scrape.Options{
		PassMetadataInContext: true, // the appender reads the target's tenant from it
		// Membership changes reach the scrape loops within a second, not
		// Prometheus's 5 s: a dead scraper's targets wait for it.
		DiscoveryReloadInterval: model.Duration(time.Second),
	}, s.logger.With("component", "scrape"), nil, nil, s.app, reg)
	if err != nil {
		cancel()
		return fmt.Errorf("scrape manager: %w", err)
	}
	if err := s.apply(c, jobs); err != nil {
		cancel()
		return err
	}
	if s.cfg.Monitors.Enabled {
		s.watcher, err = monitors.New(s.cfg.Monitors, monitors.Deps{Apply: s.setGenerated, Logger: s.logger})
		if err != nil {
			cancel()
			return err
		}
	}
	s.started.Store(true)
	return nil
}

// apply hands c to both managers and makes it the running configuration.
func (s *Scraper) apply(c *config.Config, jobs map[string]*config.ScrapeConfig) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if err := s.scrape.ApplyConfig(c); err != nil {
		return apierror.Errorf(apierror.InvalidScrapeConfig, "%s: %w", s.cfg.ConfigFile, err)
	}
	sd := make(map[string]discovery.Configs, len(jobs))
	for name, sc := range jobs {
		sd[name] = sc.ServiceDiscoveryConfigs
	}
	if err := s.disc.ApplyConfig(sd); err != nil {
		// Some discoverer failed to start; the others run. Prometheus
		// reports it as a failed reload too.
		return apierror.Errorf(apierror.InvalidScrapeConfig, "%s: service discovery: %w", s.cfg.ConfigFile, err)
	}
	s.mu.Lock()
	s.prom, s.jobs, s.lastErr = c, jobs, nil
	s.mu.Unlock()
	select {
	case s.refresh <- struct{}{}:
	default:
	}
	return nil
}

// Reload reads the configuration file again and applies it. A file that
// does not load (unknown fields, a bad relabelling regex, ...) is refused
// with an error carrying err-argus-invalid-scrape-config, and the last good
// configuration keeps running.
func (s *Scraper) Reload() error {
	if !s.started.Load() {
		return apierror.Errorf(apierror.NotReady, "the scraper is not started")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	c, jobs, err := s.loadConfig()
	if err == nil {
		err = s.apply(c, jobs)
	}
	if err != nil {
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.metrics.reloads.WithLabelValues("failure").Inc()
		s.metrics.reloadOK.Set(0)
		s.logger.Error("scrape configuration refused, the last good one keeps running", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	s.metrics.reloads.WithLabelValues("success").Inc()
	s.metrics.reloadOK.Set(1)
	s.logger.Info("scrape configuration reloaded", "file", s.cfg.ConfigFile, "jobs", len(jobs))
	return nil
}

// Running runs discovery and scraping, and filters what discovery finds
// through the ring of scrapers, again whenever the alive scrapers change,
// until ctx ends.
func (s *Scraper) Running(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.disc.Run() }()
	go func() { errc <- s.scrape.Run(s.out) }()
	if s.watcher != nil {
		// The monitors' jobs arrive by Reload, like a changed file; a
		// watcher that cannot list them is logged, never fatal.
		go func() {
			if err := s.watcher.Run(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("following ServiceMonitors and PodMonitors failed", "err", err)
			}
		}()
	}
	s.metrics.reloadOK.Set(1)
	tick := time.NewTicker(s.cfg.MembershipPeriod)
	defer tick.Stop()
	members := s.members()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("scraper stopped: %w", err)
		case ts := <-s.disc.SyncCh():
			s.mu.Lock()
			s.tsets = ts
			s.mu.Unlock()
			s.filter(members)
		case <-s.refresh:
			s.filter(members)
		case <-tick.C:
			if m := s.members(); !slices.Equal(m, members) {
				s.logger.Info("scrapers changed, sharing the targets again", "scrapers", m)
				members = m
				s.filter(members)
			}
		}
	}
}

// members returns the alive scrapers, sorted.
func (s *Scraper) members() []string {
	if s.deps.Membership == nil {
		return []string{s.self()}
	}
	m := s.deps.Membership.AliveMembers(Role)
	if self := s.self(); !slices.Contains(m, self) {
		// Not yet (or no longer) seen alive by the gossip: scrape as if
		// alone would scrape everything twice, so count itself in.
		m = append(slices.Clone(m), self)
		slices.Sort(m)
	}
	return m
}

func (s *Scraper) self() string {
	if s.deps.Membership == nil {
		return "local"
	}
	return s.deps.Membership.LocalMember()
}

// filter shares the last discovered targets out over members and hands
// this scraper's share to the scrape manager.
func (s *Scraper) filter(members []string) {
	s.mu.Lock()
	tsets, jobs := s.tsets, s.jobs
	s.mu.Unlock()
	if tsets == nil {
		return
	}
	r := newMemberRing(members)
	owned, a := shardFilter(tsets, jobs, s.self(), r)
	s.mu.Lock()
	s.assigned = a
	s.mu.Unlock()
	n, all := 0, 0
	for _, ts := range a.all {
		for _, t := range ts {
			all++
			if t.owner == a.self {
				n++
			}
		}
	}
	s.metrics.ownedTargets.Set(float64(n))
	s.metrics.allTargets.Set(float64(all))
	s.metrics.members.Set(float64(len(members)))
	// One slot: a set the scrape manager has not read yet is replaced.
	select {
	case <-s.out:
	default:
	}
	s.out <- owned
}

// Stopping stops the scrape loops and discovery. Prometheus's scrape
// manager does not write staleness markers on shutdown: the series of a
// stopped scraper go stale by the lookback delta, or, in a cluster, get
// fresh samples from the scraper that takes its targets over.
// It is idempotent, and a no-op if Starting did not succeed.
func (s *Scraper) Stopping(context.Context) error {
	if !s.started.Load() || s.stopped.Swap(true) {
		return nil
	}
	s.scrape.Stop()
	s.cancel()
	return nil
}
