package monitors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/config"
	"go.yaml.in/yaml/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	serviceMonitors = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
	podMonitors     = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}
)

// Deps are the collaborators of a Watcher.
type Deps struct {
	// Apply receives the generated scrape configurations, every one of them
	// each time (sorted by job name), whenever they change. It is called
	// from the Watcher's goroutine only, never concurrently.
	Apply func(generated []yaml.MapSlice) error
	// Client reads the resources; nil builds one from Config.Kubeconfig.
	Client dynamic.Interface
	Logger *slog.Logger
}

// Watcher follows the ServiceMonitor and PodMonitor resources through
// client-go informers (a watch plus a full re-list every resync period)
// and hands the scrape configurations they generate to Deps.Apply.
//
// Lifecycle: New builds (no goroutines, no I/O); Run starts the informers,
// waits for their first list, applies, and then re-applies after every
// change until ctx is cancelled. A resource that does not decode is
// skipped and logged, as the Operator rejects it; the others still apply.
type Watcher struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	changed chan struct{} // capacity 1: a pending regeneration
	last    []byte        // YAML of the last applied configurations; Run's goroutine only
}

// New returns a Watcher of the resources cfg selects.
func New(cfg Config, deps Deps) (*Watcher, error) {
	if deps.Apply == nil {
		return nil, fmt.Errorf("monitors: no Apply")
	}
	if deps.Client == nil {
		rc, err := restConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		if deps.Client, err = dynamic.NewForConfig(rc); err != nil {
			return nil, fmt.Errorf("monitors: kubernetes client: %w", err)
		}
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, deps: deps, logger: logger.With("component", "scraper-monitors"), changed: make(chan struct{}, 1)}, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("monitors: in-cluster kubernetes config (set -scraper.monitors.kubeconfig outside a cluster): %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("monitors: kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}

// Run follows the resources until ctx is cancelled. It returns an error
// only when the informers cannot sync or Apply fails on the first
// configurations; later Apply failures are logged and retried on the next
// change or resync.
func (w *Watcher) Run(ctx context.Context) error {
	var informers []cache.SharedIndexInformer
	for _, ns := range w.cfg.namespaces() {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.deps.Client, w.cfg.ResyncPeriod, ns, func(o *metav1.ListOptions) {
			o.LabelSelector = w.cfg.Selector
		})
		for _, gvr := range []schema.GroupVersionResource{serviceMonitors, podMonitors} {
			inf := f.ForResource(gvr).Informer()
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(any) { w.notify() },
				UpdateFunc: func(any, any) { w.notify() },
				DeleteFunc: func(any) { w.notify() },
			}); err != nil {
				return err
			}
			informers = append(informers, inf)
		}
		f.Start(ctx.Done())
	}
	synced := make([]cache.InformerSynced, len(informers))
	for i, inf := range informers {
		synced[i] = inf.HasSynced
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("monitors: informers did not sync: %w", context.Cause(ctx))
	}
	if err := w.regenerate(informers); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			if err := w.regenerate(informers); err != nil {
				w.logger.Error("applying scrape configurations of monitors failed, keeping the previous ones", "err", err)
			}
		}
	}
}

func (w *Watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// regenerate builds the configurations of every resource in the informers'
// caches and applies them if they differ from the last applied ones.
func (w *Watcher) regenerate(informers []cache.SharedIndexInformer) error {
	var generated []yaml.MapSlice
	for _, inf := range informers {
		for _, obj := range inf.GetStore().List() {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			cfgs, err := w.generate(u)
			if err != nil {
				w.logger.Warn("skipping monitor resource", "kind", u.GetKind(), "namespace", u.GetNamespace(), "name", u.GetName(), "err", err)
				continue
			}
			generated = append(generated, cfgs...)
		}
	}
	sort.Slice(generated, func(i, j int) bool {
		return generated[i][0].Value.(string) < generated[j][0].Value.(string)
	})
	b, err := YAML(generated)
	if err != nil {
		return err
	}
	if w.last != nil && bytes.Equal(b, w.last) {
		return nil
	}
	if err := w.deps.Apply(generated); err != nil {
		return err
	}
	w.last = b
	w.logger.Info("applied scrape configurations of monitors", "jobs", len(generated))
	return nil
}

// generate returns the configurations of one resource, refusing the
// resource when any of them does not parse (a bad regex in its
// relabelings), so that one bad resource cannot stop the others.
func (w *Watcher) generate(u *unstructured.Unstructured) ([]yaml.MapSlice, error) {
	cfgs, err := w.decode(u)
	if err != nil {
		return nil, err
	}
	if _, err := ScrapeConfigs(cfgs, config.DefaultGlobalConfig); err != nil {
		return nil, err
	}
	return cfgs, nil
}

func (w *Watcher) decode(u *unstructured.Unstructured) ([]yaml.MapSlice, error) {
	switch u.GetKind() {
	case monitoringv1.ServiceMonitorsKind:
		var m monitoringv1.ServiceMonitor
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &m); err != nil {
			return nil, err
		}
		return ServiceMonitorConfigs(&m, w.cfg.options()), nil
	case monitoringv1.PodMonitorsKind:
		var m monitoringv1.PodMonitor
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &m); err != nil {
			return nil, err
		}
		return PodMonitorConfigs(&m, w.cfg.options()), nil
	}
	return nil, fmt.Errorf("unknown kind %q", u.GetKind())
}
