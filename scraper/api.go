package scraper

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// Paths the scraper serves (cmd mounts them).
const (
	TargetsPath         = "/prometheus/api/v1/targets"
	TargetsMetadataPath = "/prometheus/api/v1/targets/metadata"
	StatusPath          = "/scraper/targets"
	ReloadPath          = "/-/reload"
)

// apiTarget is one active target in Prometheus's JSON shape
// (web/api/v1.Target), plus the scraper that owns it.
type apiTarget struct {
	DiscoveredLabels   labels.Labels       `json:"discoveredLabels"`
	Labels             labels.Labels       `json:"labels"`
	ScrapePool         string              `json:"scrapePool"`
	ScrapeURL          string              `json:"scrapeUrl"`
	GlobalURL          string              `json:"globalUrl"`
	LastError          string              `json:"lastError"`
	LastScrape         time.Time           `json:"lastScrape"`
	LastScrapeDuration float64             `json:"lastScrapeDuration"`
	Health             scrape.TargetHealth `json:"health"`
	ScrapeInterval     string              `json:"scrapeInterval"`
	ScrapeTimeout      string              `json:"scrapeTimeout"`
	// Scraper is the member name of the scraper that owns the target. Only
	// the owner knows the scrape's health; the others say "unknown".
	Scraper string `json:"scraper"`
	tenant  string
}

type apiDroppedTarget struct {
	DiscoveredLabels labels.Labels `json:"discoveredLabels"`
	ScrapePool       string        `json:"scrapePool"`
}

type targetDiscovery struct {
	ActiveTargets       []*apiTarget        `json:"activeTargets"`
	DroppedTargets      []*apiDroppedTarget `json:"droppedTargets"`
	DroppedTargetCounts map[string]int      `json:"droppedTargetCounts"`
}

// activeTargets returns every active target of the cluster as this
// scraper sees it, by pool then scrape URL: its own with their scrape
// state, the others' with their owner.
func (s *Scraper) activeTargets() []*apiTarget {
	s.mu.Lock()
	a, jobs := s.assigned, s.jobs
	s.mu.Unlock()
	lb := labels.NewBuilder(labels.EmptyLabels())
	var out []*apiTarget
	self := s.self()
	// While targets move, the scrape manager may still scrape a target the
	// last filtering gave another scraper (it applies a new set within its
	// reload interval): it is listed once, as this scraper's, which it is
	// until its loop stops.
	scraping := map[string]bool{}
	if s.started.Load() {
		for pool, ts := range s.scrape.TargetsActive() {
			for _, t := range ts {
				at := ownTarget(pool, t, self, s.cfg.Tenant, lb)
				scraping[pool+at.Labels.String()] = true
				out = append(out, at)
			}
		}
	}
	if a != nil {
		for pool, ts := range a.all {
			cfg := jobs[pool]
			for _, at := range ts {
				if at.owner == self || cfg == nil {
					continue
				}
				t := scrape.NewTarget(at.labels, cfg, nil, nil)
				public := t.Labels(lb)
				if scraping[pool+public.String()] {
					continue
				}
				u := t.URL().String()
				out = append(out, &apiTarget{
					DiscoveredLabels: at.discovered, Labels: public, ScrapePool: pool,
					ScrapeURL: u, GlobalURL: u, Health: scrape.HealthUnknown,
					ScrapeInterval: at.labels.Get(model.ScrapeIntervalLabel), ScrapeTimeout: at.labels.Get(model.ScrapeTimeoutLabel),
					Scraper: at.owner, tenant: tenantOf(at.labels.Get(TenantLabel), s.cfg.Tenant),
				})
			}
		}
	}
	slices.SortFunc(out, func(x, y *apiTarget) int {
		if c := strings.Compare(x.ScrapePool, y.ScrapePool); c != 0 {
			return c
		}
		return strings.Compare(x.ScrapeURL, y.ScrapeURL)
	})
	return out
}

func ownTarget(pool string, t *scrape.Target, self, defaultTenant string, lb *labels.Builder) *apiTarget {
	lastErr := ""
	if err := t.LastError(); err != nil {
		lastErr = err.Error()
	}
	u := t.URL().String()
	return &apiTarget{
		DiscoveredLabels: t.DiscoveredLabels(lb), Labels: t.Labels(lb), ScrapePool: pool,
		ScrapeURL: u, GlobalURL: u, LastError: lastErr,
		LastScrape: t.LastScrape(), LastScrapeDuration: t.LastScrapeDuration().Seconds(), Health: t.Health(),
		ScrapeInterval: t.GetValue(model.ScrapeIntervalLabel), ScrapeTimeout: t.GetValue(model.ScrapeTimeoutLabel),
		Scraper: self, tenant: tenantOf(t.GetValue(TenantLabel), defaultTenant),
	}
}

func tenantOf(label, def string) string {
	if label != "" {
		return label
	}
	return def
}

// TargetsHandler serves /prometheus/api/v1/targets as Prometheus does
// (parameters state and scrapePool), each active target with the scraper
// that owns it. With a tenant in the request's context (the auth
// middleware), only that tenant's active targets are listed.
func (s *Scraper) TargetsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pool := r.FormValue("scrapePool")
		state := strings.ToLower(r.FormValue("state"))
		res := targetDiscovery{ActiveTargets: []*apiTarget{}, DroppedTargets: []*apiDroppedTarget{}}
		reqTenant, _ := tenant.FromContext(r.Context())
		if state == "" || state == "any" || state == "active" {
			for _, t := range s.activeTargets() {
				if (pool == "" || t.ScrapePool == pool) && (reqTenant == "" || t.tenant == reqTenant) {
					res.ActiveTargets = append(res.ActiveTargets, t)
				}
			}
		}
		if (state == "" || state == "any" || state == "dropped") && s.started.Load() {
			res.DroppedTargetCounts = s.scrape.TargetsDroppedCounts()
			lb := labels.NewBuilder(labels.EmptyLabels())
			dropped := s.scrape.TargetsDropped()
			for _, p := range sortedKeys(dropped) {
				if pool != "" && p != pool {
					continue
				}
				for _, t := range dropped[p] {
					res.DroppedTargets = append(res.DroppedTargets, &apiDroppedTarget{DiscoveredLabels: t.DiscoveredLabels(lb), ScrapePool: p})
				}
			}
		}
		writeSuccess(w, res)
	})
}

type metricMetadata struct {
	Target       labels.Labels    `json:"target"`
	MetricFamily string           `json:"metric,omitempty"`
	Type         model.MetricType `json:"type"`
	Help         string           `json:"help"`
	Unit         string           `json:"unit"`
}

// TargetsMetadataHandler serves /prometheus/api/v1/targets/metadata as
// Prometheus does (match_target, metric, limit), over the targets this
// scraper scrapes: the metadata of a target is known to its owner only.
func (s *Scraper) TargetsMetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := -1
		if v := r.FormValue("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "bad_data", "limit must be a number")
				return
			}
			limit = n
		}
		var matchers []*labels.Matcher
		if v := r.FormValue("match_target"); v != "" {
			m, err := selectorParser.ParseMetricSelector(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid parameter \"match_target\": %s", err))
				return
			}
			matchers = m
		}
		metric := r.FormValue("metric")
		reqTenant, _ := tenant.FromContext(r.Context())
		res := []metricMetadata{}
		if !s.started.Load() {
			writeSuccess(w, res)
			return
		}
		lb := labels.NewBuilder(labels.EmptyLabels())
		active := s.scrape.TargetsActive()
		for _, pool := range sortedKeys(active) {
			for _, t := range active[pool] {
				if limit >= 0 && len(res) >= limit {
					break
				}
				if reqTenant != "" && tenantOf(t.GetValue(TenantLabel), s.cfg.Tenant) != reqTenant {
					continue
				}
				tl := t.Labels(lb)
				if !matchAll(tl, matchers) {
					continue
				}
				if metric == "" {
					for _, md := range t.ListMetadata() {
						res = append(res, metricMetadata{Target: tl, MetricFamily: md.MetricFamily, Type: md.Type, Help: md.Help, Unit: md.Unit})
					}
					continue
				}
				if md, ok := t.GetMetadata(metric); ok {
					res = append(res, metricMetadata{Target: tl, Type: md.Type, Help: md.Help, Unit: md.Unit})
				}
			}
		}
		writeSuccess(w, res)
	})
}

func matchAll(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// StatusHandler serves /scraper/targets: the scrapers and the targets
// each owns, as this scraper computes it (JSON with Accept:
// application/json, else text).
func (s *Scraper) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		byScraper := map[string][]*apiTarget{}
		for _, m := range s.members() {
			byScraper[m] = []*apiTarget{}
		}
		for _, t := range s.activeTargets() {
			byScraper[t.Scraper] = append(byScraper[t.Scraper], t)
		}
		s.mu.Lock()
		lastErr := s.lastErr
		s.mu.Unlock()
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"self": s.self(), "scrapers": byScraper})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "This scraper: %s\n", s.self())
		if lastErr != nil {
			fmt.Fprintf(w, "Last reload refused (the previous configuration runs): %v\n", lastErr)
		}
		for _, name := range sortedKeys(byScraper) {
			ts := byScraper[name]
			fmt.Fprintf(w, "\nScraper %s: %d targets\n", name, len(ts))
			for _, t := range ts {
				fmt.Fprintf(w, "  %-20s %-8s %s %s\n", t.ScrapePool, t.Health, t.ScrapeURL, t.Labels)
			}
		}
	})
}

// ReloadHandler serves POST /-/reload: 200 once the configuration file is
// reloaded, 400 with err-argus-invalid-scrape-config (and the old
// configuration still running) when it is refused.
func (s *Scraper) ReloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, string(apierror.MethodNotAllowed)+": "+r.Method+", a reload is a POST or a PUT", http.StatusMethodNotAllowed)
			return
		}
		if err := s.Reload(); err != nil {
			id, ok := apierror.IDOf(err)
			if !ok {
				id = apierror.Internal
			}
			msg := err.Error()
			if !ok {
				msg = string(id) + ": " + msg
			}
			http.Error(w, msg, id.Status())
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func writeSuccess(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", data})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", typ, msg})
}

var selectorParser = parser.NewParser(parser.Options{})
