package ruler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// Deps are the runtime dependencies of a Ruler.
type Deps struct {
	// Queryable answers the rules' queries for the tenant in the context
	// (the querier's Queryable: the whole cluster). Required.
	Queryable storage.Queryable
	// Pusher writes recording-rule results and the ALERTS series. Required.
	Pusher     Pusher
	Membership Membership // nil: evaluate every group
	// Limits gives each tenant's limits (the runtime overrides); nil: the
	// ruler limits are off.
	Limits     Limits
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
}

// Limits returns the limits in force for a tenant (limits.Overrides
// fits). The result is not modified.
type Limits interface {
	For(tenant string) *limits.Limits
}

// Ruler evaluates every tenant's rule groups that it owns on the ring of
// rulers. It is a service: Starting opens the store (and imports
// -ruler.rule-path), Running re-syncs the tenants' managers whenever the
// store or the alive rulers change, Stopping stops them. The HTTP handlers
// and TenantView are safe for concurrent use.
//
// Lock order: syncMu before mu. No lock is held while a manager
// evaluates; syncMu is held while managers are built, updated and stopped.
type Ruler struct {
	cfg         Config
	deps        Deps
	logger      *slog.Logger
	metrics     *metrics
	prefixed    prometheus.Registerer // argus_ruler_ on Deps.Registerer; nil without one
	engine      *promql.Engine
	externalURL *url.URL
	render      *renderer
	store       *Store // set by Starting
	poked       chan struct{}

	syncMu      sync.Mutex // serialises sync
	lastMembers []string   // guarded by syncMu
	lastVersion uint64     // guarded by syncMu
	synced      bool       // guarded by syncMu

	mu      sync.Mutex
	tenants map[string]*tenantRules // guarded by mu
}

// New returns a Ruler. It does no I/O and starts nothing.
func New(cfg Config, deps Deps) (*Ruler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Queryable == nil || deps.Pusher == nil {
		return nil, errors.New("ruler: a Queryable and a Pusher are required")
	}
	if cfg.StoragePath == "" {
		return nil, errors.New("ruler: -ruler.storage-path is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ext, err := url.Parse(cfg.ExternalURL)
	if err != nil {
		return nil, fmt.Errorf("-ruler.external.url: %w", err)
	}
	var prefixed prometheus.Registerer
	if deps.Registerer != nil {
		prefixed = prometheus.WrapRegistererWithPrefix("argus_ruler_", deps.Registerer)
	}
	return &Ruler{
		cfg: cfg, deps: deps, logger: logger, metrics: newMetrics(deps.Registerer),
		prefixed: prefixed,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger: logger.With("component", "engine"), Reg: prefixed,
			MaxSamples: cfg.MaxSamples, Timeout: cfg.QueryTimeout, LookbackDelta: cfg.LookbackDelta,
			NoStepSubqueryIntervalFn: func(int64) int64 { return cfg.EvaluationInterval.Milliseconds() },
			EnableAtModifier:         true, EnableNegativeOffset: true,
			Parser: promParser,
		}),
		externalURL: ext,
		render:      newRenderer(logger),
		poked:       make(chan struct{}, 1),
		tenants:     map[string]*tenantRules{},
	}, nil
}

// Starting opens the store and imports -ruler.rule-path; a bad file fails
// the start.
func (r *Ruler) Starting(context.Context) error {
	s, err := OpenStore(r.cfg.StoragePath)
	if err != nil {
		return err
	}
	r.store = s
	if r.cfg.RulePath != "" {
		n, err := s.ImportDir(r.cfg.RulePath)
		if err != nil {
			return err
		}
		r.logger.Info("imported rule files", "dir", r.cfg.RulePath, "files", n)
	}
	r.sync()
	return nil
}

// Running re-syncs every -ruler.poll-interval and after each change made
// through the configuration API.
func (r *Ruler) Running(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.poked:
		}
		r.sync()
	}
}

// Stopping stops every tenant's evaluation and sends the queued alerts.
func (r *Ruler) Stopping(context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	ts := r.tenants
	r.tenants = map[string]*tenantRules{}
	r.mu.Unlock()
	for _, t := range ts {
		t.stop()
	}
	return nil
}

// poke asks the loop to sync now.
func (r *Ruler) poke() {
	select {
	case r.poked <- struct{}{}:
	default:
	}
}

// members returns the alive rulers and this ruler's name.
func (r *Ruler) members() ([]string, string) {
	if r.deps.Membership == nil {
		return []string{"self"}, "self"
	}
	self := r.deps.Membership.LocalMember()
	ms := r.deps.Membership.AliveMembers(Role)
	if !slices.Contains(ms, self) {
		ms = append(slices.Clone(ms), self) // alive to itself before the gossip says so
		slices.Sort(ms)
	}
	return ms, self
}

// sync gives each tenant's manager the groups this ruler owns, if the store
// (written by this ruler's API, or by another ruler sharing its directory)
// or the alive rulers changed since the last sync.
func (r *Ruler) sync() {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if _, err := r.store.Refresh(); err != nil {
		// Keep evaluating what was loaded last; the next poll retries.
		r.logger.Error("cannot reload the rule store", "err", err)
		r.metrics.syncFailures.Inc()
	}
	members, self := r.members()
	snap, version := r.store.Snapshot()
	if r.synced && version == r.lastVersion && slices.Equal(members, r.lastMembers) && !r.settingsChanged() {
		return
	}
	r.metrics.syncs.Inc()
	ring := newMemberRing(members)
	all, owned := 0, 0
	wanted := map[string]map[string][]rulefmt.RuleGroup{}
	for tid, nss := range snap {
		for ns, gs := range nss {
			for _, g := range gs {
				all++
				if o := ring.Owner(groupToken(tid, ns, g.Name)); o == self || o == "" {
					owned++
					if wanted[tid] == nil {
						wanted[tid] = map[string][]rulefmt.RuleGroup{}
					}
					wanted[tid][ns] = append(wanted[tid][ns], g)
				}
			}
		}
	}
	ok := r.apply(wanted)
	r.metrics.allGroups.Set(float64(all))
	r.metrics.ownedGroups.Set(float64(owned))
	r.metrics.members.Set(float64(len(members)))
	r.metrics.tenants.Set(float64(len(wanted)))
	if ok {
		r.synced, r.lastVersion, r.lastMembers = true, version, members
	}
}

// apply starts, updates and stops the tenants' managers so that each
// evaluates exactly its wanted groups. It reports whether every tenant
// took its groups. syncMu is held.
func (r *Ruler) apply(wanted map[string]map[string][]rulefmt.RuleGroup) bool {
	r.mu.Lock()
	current := make(map[string]*tenantRules, len(r.tenants))
	for id, t := range r.tenants {
		current[id] = t
	}
	r.mu.Unlock()
	ok := true
	for id, t := range current {
		if _, keep := wanted[id]; !keep || !t.settings.equal(r.settingsOf(id)) {
			// Gone, or its Alertmanagers or external labels changed: a
			// new manager restores the for: state from ALERTS_FOR_STATE.
			delete(current, id)
			r.mu.Lock()
			delete(r.tenants, id)
			r.mu.Unlock()
			t.stop()
		}
	}
	for id, groups := range wanted {
		t := current[id]
		if t == nil {
			var err error
			if t, err = r.newTenantRules(id); err != nil {
				r.logger.Error("cannot start the tenant's rules", "tenant", id, "err", err)
				r.metrics.syncFailures.Inc()
				ok = false
				continue
			}
			r.mu.Lock()
			r.tenants[id] = t
			r.mu.Unlock()
		}
		if err := t.update(groups, r.cfg.EvaluationInterval, r.cfg.ExternalURL); err != nil {
			r.logger.Error("the tenant's rule groups were refused", "tenant", id, "err", err)
			r.metrics.syncFailures.Inc()
			ok = false
		}
	}
	return ok
}

// settingsChanged reports whether the settings of a running tenant
// changed in the runtime overrides. syncMu is held.
func (r *Ruler) settingsChanged() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, t := range r.tenants {
		if !t.settings.equal(r.settingsOf(id)) {
			return true
		}
	}
	return false
}

// TenantView returns what the Prometheus API shows of the rules of the
// tenant in ctx (/api/v1/rules, /api/v1/alerts, /api/v1/alertmanagers): the
// groups this ruler evaluates. A nil Ruler, or a tenant without rules here,
// has none.
func (r *Ruler) TenantView(ctx context.Context) *TenantView {
	if r == nil {
		return &TenantView{}
	}
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return &TenantView{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &TenantView{t: r.tenants[id]}
}

// limitsFor returns the tenant's limits, or zero limits (all off) without
// Deps.Limits.
func (r *Ruler) limitsFor(tenantID string) *limits.Limits {
	if r.deps.Limits == nil {
		return &limits.Limits{}
	}
	return r.deps.Limits.For(tenantID)
}
