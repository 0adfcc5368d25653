package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// Pusher sends one remote-write 1.0 request (snappy-compressed protobuf
// WriteRequest) of a tenant and returns once it is stored or refused.
// scraper.HandlerPusher and scraper.RemoteWriter fit. It must be safe for
// concurrent use; body is the caller's again when Push returns.
type Pusher interface {
	Push(ctx context.Context, tenantID string, body []byte) error
}

// tenantRules is one tenant's evaluation: a rules.Manager over the groups
// this ruler owns and a notifier.Manager to its Alertmanagers. Its methods
// are called by the Ruler's loop only, except the retrievers, which the
// managers make safe for concurrent use.
type tenantRules struct {
	id       string
	settings tenantSettings // the tenant's limits this was built with
	manager  *rules.Manager
	notifier *notifier.Manager // nil without -ruler.alertmanager-url
	loader   *groupLoader
	cancel   context.CancelFunc
}

// newTenantRules builds and starts the tenant's managers.
func (r *Ruler) newTenantRules(id string) (*tenantRules, error) {
	logger := r.logger.With("tenant", id)
	ctx, cancel := context.WithCancel(tenant.With(context.Background(), id))
	set := r.settingsOf(id)
	t := &tenantRules{id: id, settings: set, loader: &groupLoader{}, cancel: cancel}
	var notify rules.NotifyFunc = func(context.Context, string, ...*rules.Alert) {}
	urls, err := parseAMURLs(set.alertmanagerURL)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("alertmanager URL: %w", err)
	}
	if len(urls) > 0 {
		n, err := r.newNotifier(ctx, id, urls, set.externalLabels, logger)
		if err != nil {
			cancel()
			return nil, err
		}
		t.notifier = n
		notify = rules.SendAlerts(n, r.cfg.ExternalURL)
	}
	t.manager = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:          r.externalURL,
		QueryFunc:            rules.EngineQueryFunc(r.engine, r.deps.Queryable),
		NotifyFunc:           notify,
		Context:              ctx,
		AppendableV2:         &pushAppendable{tenant: id, pusher: r.deps.Pusher, metrics: r.metrics, external: set.externalLabels},
		Queryable:            r.deps.Queryable,
		Logger:               logger,
		OutageTolerance:      r.cfg.ForOutageTolerance,
		ForGracePeriod:       r.cfg.ForGracePeriod,
		ResendDelay:          r.cfg.ResendDelay,
		GroupLoader:          t.loader,
		RestoreNewRuleGroups: true, // a group that moves here restores its for: state too
		Metrics:              r.groupMetrics,
		Parser:               promParser,
	})
	go t.manager.Run()
	return t, nil
}

// update makes owned (namespace → groups) the groups the manager evaluates;
// unchanged groups keep their state.
func (t *tenantRules) update(owned map[string][]rulefmt.RuleGroup, interval time.Duration, externalURL string) error {
	t.loader.set(owned)
	nss := make([]string, 0, len(owned))
	for ns := range owned {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	return t.manager.Update(interval, nss, t.settings.externalLabels, externalURL, nil)
}

// stop stops evaluation, then the notifier (which sends what is queued).
func (t *tenantRules) stop() {
	t.manager.Stop()
	if t.notifier != nil {
		t.notifier.Stop()
	}
	t.cancel()
}

// groupLoader hands the rules manager the tenant's groups of a namespace
// (the manager's "file"), from memory. It is safe for concurrent use.
type groupLoader struct {
	mu     sync.Mutex
	groups map[string][]rulefmt.RuleGroup // guarded by mu
}

func (l *groupLoader) set(groups map[string][]rulefmt.RuleGroup) {
	l.mu.Lock()
	l.groups = groups
	l.mu.Unlock()
}

// Load returns the groups of namespace ns.
func (l *groupLoader) Load(ns string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &rulefmt.RuleGroups{Groups: l.groups[ns]}, nil
}

// Parse parses a rule's expression.
func (*groupLoader) Parse(query string) (parser.Expr, error) { return promParser.ParseExpr(query) }

// newNotifier returns a running notifier.Manager sending the tenant's
// alerts to every address of urls (looked up again until ctx ends), with
// X-Scope-OrgID set to the tenant (the convention of Mimir's multi-tenant
// Alertmanager; a plain Alertmanager ignores it) and the tenant in
// -ruler.tenant-label.
func (r *Ruler) newNotifier(ctx context.Context, id string, urls []amURL, external labels.Labels, logger *slog.Logger) (*notifier.Manager, error) {
	n := notifier.NewManager(&notifier.Options{
		QueueCapacity: r.cfg.NotificationQueueCapacity,
		Do: func(ctx context.Context, client *http.Client, req *http.Request) (*http.Response, error) {
			req.Header.Set(tenant.HeaderName, id)
			return client.Do(req.WithContext(ctx))
		},
	}, model.UTF8Validation, logger.With("component", "notifier"))
	cfg := &config.Config{}
	b := labels.NewBuilder(external)
	if r.cfg.TenantLabel != "" {
		b.Set(r.cfg.TenantLabel, id)
	}
	cfg.GlobalConfig.ExternalLabels = b.Labels()
	for _, a := range urls {
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &config.AlertmanagerConfig{
			APIVersion: config.AlertmanagerAPIVersionV2, Scheme: a.u.Scheme, PathPrefix: a.u.Path,
			Timeout: model.Duration(r.cfg.NotificationTimeout), HTTPClientConfig: commoncfg.DefaultHTTPClientConfig,
		})
	}
	if err := n.ApplyConfig(cfg); err != nil {
		return nil, fmt.Errorf("alertmanager configuration: %w", err)
	}
	ch := make(chan map[string][]*targetgroup.Group)
	go discoverAlertmanagers(ctx, urls, r.cfg.AlertmanagerRefreshInterval, ch, logger)
	go n.Run(ch)
	return n, nil
}

// pushAppendable is the storage of one tenant's rules manager: every
// appender (one per rule evaluation) becomes one remote-write request of
// the tenant, pushed at Commit.
type pushAppendable struct {
	tenant   string
	pusher   Pusher
	metrics  *metrics
	external labels.Labels // added to each series that lacks them
}

func (a *pushAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &pushAppender{ctx: ctx, parent: a}
}

// pushAppender collects one evaluation's samples. It is used by one
// goroutine and discarded after Commit or Rollback.
type pushAppender struct {
	ctx    context.Context
	parent *pushAppendable
	req    prompb.WriteRequest
}

// Append adds one sample of ls. Exemplars and metadata are not sent: rules
// produce none.
func (a *pushAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if !a.parent.external.IsEmpty() {
		b := labels.NewBuilder(ls)
		a.parent.external.Range(func(l labels.Label) {
			if !ls.Has(l.Name) {
				b.Set(l.Name, l.Value)
			}
		})
		ls = b.Labels()
	}
	ts := prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)}
	switch {
	case fh != nil:
		ts.Histograms = []prompb.Histogram{prompb.FromFloatHistogram(t, fh)}
	case h != nil:
		ts.Histograms = []prompb.Histogram{prompb.FromIntHistogram(t, h)}
	default:
		ts.Samples = []prompb.Sample{{Value: v, Timestamp: t}}
	}
	a.req.Timeseries = append(a.req.Timeseries, ts)
	return storage.SeriesRef(ls.Hash()), nil
}

// Commit pushes the samples as one request.
func (a *pushAppender) Commit() error {
	if len(a.req.Timeseries) == 0 {
		return nil
	}
	b, err := a.req.Marshal()
	if err != nil {
		return fmt.Errorf("encode rule results: %w", err)
	}
	n := len(a.req.Timeseries)
	a.req.Timeseries = nil
	if err := a.parent.pusher.Push(a.ctx, a.parent.tenant, snappy.Encode(nil, b)); err != nil {
		a.parent.metrics.pushFailures.Inc()
		return fmt.Errorf("write rule results: %w", err)
	}
	a.parent.metrics.pushedSamples.Add(float64(n))
	return nil
}

func (a *pushAppender) Rollback() error {
	a.req.Timeseries = nil
	return nil
}

// tenantSettings are a tenant's limits that shape its evaluation: a change
// rebuilds the tenant's managers.
type tenantSettings struct {
	alertmanagerURL string
	externalLabels  labels.Labels
}

func (s tenantSettings) equal(o tenantSettings) bool {
	return s.alertmanagerURL == o.alertmanagerURL && labels.Equal(s.externalLabels, o.externalLabels)
}

// settingsOf returns the tenant's settings in force: its
// ruler_alertmanager_url, else -ruler.alertmanager-url, and its
// ruler_external_labels.
func (r *Ruler) settingsOf(id string) tenantSettings {
	lim := r.limitsFor(id)
	s := tenantSettings{alertmanagerURL: r.cfg.AlertmanagerURL, externalLabels: labels.FromMap(lim.RulerExternalLabels)}
	if lim.RulerAlertmanagerURL != "" {
		s.alertmanagerURL = lim.RulerAlertmanagerURL
	}
	return s
}
