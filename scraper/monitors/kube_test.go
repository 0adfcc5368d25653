package monitors

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/internal/kubetest"
)

// shop is the cluster of the monitor tests: namespace shop (tenant team-a by
// its label), two api pods behind service api (port web), one worker pod
// (port metrics), a finished worker pod and a pod of another app.
type shop struct {
	api1, api2, worker, other int32 // exporter ports
}

func createShop(t *testing.T, s *kubetest.Server) shop {
	ip := kubetest.HostIP(t)
	sh := shop{api1: kubetest.Exporter(t, ""), api2: kubetest.Exporter(t, ""), worker: kubetest.Exporter(t, ""), other: kubetest.Exporter(t, "")}
	s.CreateNamespace(t, "shop", map[string]string{"argus.io/tenant": "team-a"}, nil)
	pod := func(name string, labels map[string]string, port string, number int32) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "main", Image: "example.invalid/app",
				Ports: []corev1.ContainerPort{{Name: port, ContainerPort: number}},
			}}},
		}
	}
	a1 := s.CreateRunningPod(t, pod("api-1", map[string]string{"app": "api", "version": "v1"}, "web", sh.api1), ip, "")
	a2 := s.CreateRunningPod(t, pod("api-2", map[string]string{"app": "api", "version": "v2"}, "web", sh.api2), ip, "")
	s.CreateRunningPod(t, pod("worker-1", map[string]string{"role": "worker"}, "metrics", sh.worker), ip, "")
	s.CreateRunningPod(t, pod("worker-done", map[string]string{"role": "worker"}, "metrics", sh.worker+1), ip, corev1.PodSucceeded)
	s.CreateRunningPod(t, pod("other-1", map[string]string{"app": "other"}, "metrics", sh.other), ip, "")
	s.CreateService(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Labels: map[string]string{"app": "api", "team": "payments"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "api"},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("web")}},
		},
	})
	subset := func(p *corev1.Pod, port int32) corev1.EndpointSubset { //nolint:staticcheck // core/v1 Endpoints, read by the endpoints role
		return corev1.EndpointSubset{
			Addresses: []corev1.EndpointAddress{{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: p.Name, UID: p.UID}}},
			Ports:     []corev1.EndpointPort{{Name: "web", Port: port}},
		}
	}
	s.CreateEndpoints(t, &corev1.Endpoints{ //nolint:staticcheck // as above
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Labels: map[string]string{"app": "api", "team": "payments"}},
		Subsets:    []corev1.EndpointSubset{subset(a1, sh.api1), subset(a2, sh.api2)},
	})
	return sh
}

const serviceMonitorYAML = `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {namespace: shop, name: api}
spec:
  selector: {matchLabels: {app: api}}
  targetLabels: [team]
  podTargetLabels: [version]
  endpoints:
  - port: web
    interval: 1s
`

const podMonitorYAML = `
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {namespace: shop, name: workers}
spec:
  selector: {matchLabels: {role: worker}}
  podMetricsEndpoints:
  - port: metrics
    interval: 1s
`

// operatorConfig is the prometheus.yml the Operator generates for the two
// resources above (written out by hand from its promcfg.go, v0.95, without
// its hashmod sharding): what the real Prometheus runs.
func operatorConfig(kubeconfig string) string {
	return strings.ReplaceAll(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: serviceMonitor/shop/api/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    kubeconfig_file: KUBECONFIG
    namespaces: {names: [shop]}
  scrape_interval: 1s
  relabel_configs:
  - {source_labels: [job], target_label: __tmp_prometheus_job_name}
  - {action: keep, source_labels: [__meta_kubernetes_service_label_app, __meta_kubernetes_service_labelpresent_app], regex: (api);true}
  - {action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: web}
  - {source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name], separator: ;, regex: Node;(.*), replacement: '${1}', target_label: node}
  - {source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name], separator: ;, regex: Pod;(.*), replacement: '${1}', target_label: pod}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_service_name], target_label: service}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
  - {action: drop, source_labels: [__meta_kubernetes_pod_phase], regex: (Failed|Succeeded)}
  - {source_labels: [__meta_kubernetes_service_label_team], target_label: team, regex: (.+), replacement: '${1}'}
  - {source_labels: [__meta_kubernetes_pod_label_version], target_label: version, regex: (.+), replacement: '${1}'}
  - {source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: '${1}'}
  - {target_label: endpoint, replacement: web}
- job_name: podMonitor/shop/workers/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: pod
    kubeconfig_file: KUBECONFIG
    namespaces: {names: [shop]}
  scrape_interval: 1s
  relabel_configs:
  - {source_labels: [job], target_label: __tmp_prometheus_job_name}
  - {action: drop, source_labels: [__meta_kubernetes_pod_phase], regex: (Failed|Succeeded)}
  - {action: keep, source_labels: [__meta_kubernetes_pod_label_role, __meta_kubernetes_pod_labelpresent_role], regex: (worker);true}
  - {action: keep, source_labels: [__meta_kubernetes_pod_container_port_name], regex: metrics}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {target_label: job, replacement: shop/workers}
  - {target_label: endpoint, replacement: metrics}
`, "KUBECONFIG", kubeconfig)
}

func createMonitor(t *testing.T, s *kubetest.Server, doc string) {
	u := &unstructured.Unstructured{}
	require.NoError(t, sigyaml.Unmarshal([]byte(doc), &u.Object))
	gvr := kubetest.ServiceMonitors
	if u.GetKind() == "PodMonitor" {
		gvr = kubetest.PodMonitors
	}
	_, err := s.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{})
	require.NoError(t, err)
}

// discoverer runs Prometheus's discovery manager in the test on the
// configurations a Watcher applies and relabels the groups it finds, the
// way the scrape manager would: the targets a scraper fed by the Watcher
// scrapes, with the labels it gives them.
type discoverer struct {
	mgr     *discovery.Manager
	configs map[string]*config.ScrapeConfig
}

func (d *discoverer) apply(t *testing.T, generated []yaml.MapSlice) {
	global := config.DefaultGlobalConfig
	global.ScrapeInterval, global.ScrapeTimeout = 1e9, 1e9
	cfgs, err := ScrapeConfigs(generated, global)
	require.NoError(t, err)
	d.configs = map[string]*config.ScrapeConfig{}
	sd := map[string]discovery.Configs{}
	for _, c := range cfgs {
		d.configs[c.JobName] = c
		sd[c.JobName] = c.ServiceDiscoveryConfigs
	}
	require.NoError(t, d.mgr.ApplyConfig(sd))
}

// targets relabels the groups of one discovery update into targets, keyed
// as kubetest.Target.Key keys them, with their tenant (__tenant__).
func (d *discoverer) targets(groups map[string][]*targetgroup.Group) (keys []string, tenants map[string]string) {
	tenants = map[string]string{}
	lb := labels.NewBuilder(labels.EmptyLabels())
	for job, tgs := range groups {
		cfg := d.configs[job]
		if cfg == nil {
			continue
		}
		for _, tg := range tgs {
			ts, _ := scrape.TargetsFromGroup(tg, cfg, nil, lb)
			for _, tr := range ts {
				ls := tr.Labels(lb)
				if ls.IsEmpty() {
					continue // dropped by relabelling
				}
				kt := kubetest.Target{ScrapePool: job, Labels: ls.Map()}
				keys = append(keys, kt.Key())
				tenants[kt.Key()] = tr.GetValue(TenantLabel)
			}
		}
	}
	sort.Strings(keys)
	return keys, tenants
}

// TestWatcherMatchesOperatorConfigOnPrometheus creates a ServiceMonitor and
// a PodMonitor in a real API server, follows them with a Watcher, and
// checks that the jobs it generates find exactly the targets, with exactly
// the labels, that the real Prometheus finds when it runs the Operator's
// configuration for the same resources against the same API server; then
// that an edit and a deletion change the targets.
func TestWatcherMatchesOperatorConfigOnPrometheus(t *testing.T) {
	s := kubetest.Start(t)
	createShop(t, s)
	createMonitor(t, s, serviceMonitorYAML)
	createMonitor(t, s, podMonitorYAML)
	promURL := kubetest.StartPrometheus(t, operatorConfig(s.Kubeconfig))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	require.NoError(t, err)
	d := &discoverer{mgr: discovery.NewManager(ctx, nil, reg, sdMetrics, discovery.Updatert(100*time.Millisecond))}
	go func() { _ = d.mgr.Run() }()

	applied := make(chan []yaml.MapSlice, 16)
	w, err := New(Config{Enabled: true, ResyncPeriod: 2 * time.Second, TenantNamespaceLabel: "argus.io/tenant"},
		Deps{Client: s.Dynamic, Apply: func(g []yaml.MapSlice) error { applied <- g; return nil }})
	require.NoError(t, err)
	w.cfg.Kubeconfig = s.Kubeconfig // the jobs' kubeconfig_file; the client is Deps.Client
	go func() { _ = w.Run(ctx) }()

	var keys []string
	var tenants map[string]string
	// wait drains configurations and discovery updates until the
	// discovered targets equal want (the real Prometheus's, when nil).
	wait := func(want func() string) {
		deadline := time.After(2 * time.Minute)
		last := "(nothing discovered)"
		for {
			select {
			case g := <-applied:
				d.apply(t, g)
			case groups := <-d.mgr.SyncCh():
				keys, tenants = d.targets(groups)
				got := strings.Join(keys, "\n")
				if len(keys) > 0 {
					got += "\n"
				}
				if got == want() {
					return
				}
				last = got
			case <-time.After(500 * time.Millisecond):
			case <-deadline:
				require.Equal(t, want(), last, "targets of the generated jobs")
				return
			}
		}
	}
	prom := func() string {
		ts, err := kubetest.ActiveTargets(promURL, "")
		if err != nil {
			return err.Error()
		}
		return kubetest.Keys(ts)
	}
	clustertest.Eventually(t, func() string {
		if n := strings.Count(prom(), "\n"); n != 3 {
			return fmt.Sprintf("prometheus has %d targets, want 3:\n%s", n, prom())
		}
		return ""
	}, 2*time.Minute)
	wait(prom)
	require.Len(t, keys, 3, "two api pods and one running worker")
	for _, k := range keys {
		require.Equal(t, "team-a", tenants[k], "tenant of %s, from the namespace label", k)
	}
	require.Contains(t, prom(), `serviceMonitor/shop/api/0 {container="main", endpoint="web", instance="`+kubetest.HostIP(t)+`:`)
	require.Contains(t, prom(), `team="payments", version="v1"}`)

	// Editing the ServiceMonitor to select nothing removes its targets;
	// deleting the PodMonitor removes the rest.
	sm, err := s.Dynamic.Resource(kubetest.ServiceMonitors).Namespace("shop").Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedStringMap(sm.Object, map[string]string{"app": "nothing"}, "spec", "selector", "matchLabels"))
	_, err = s.Dynamic.Resource(kubetest.ServiceMonitors).Namespace("shop").Update(ctx, sm, metav1.UpdateOptions{})
	require.NoError(t, err)
	wait(func() string {
		ts, _ := kubetest.ActiveTargets(promURL, "")
		var only []kubetest.Target
		for _, tg := range ts {
			if strings.HasPrefix(tg.ScrapePool, "podMonitor/") {
				only = append(only, tg)
			}
		}
		return kubetest.Keys(only)
	})
	require.Len(t, keys, 1)
	require.NoError(t, s.Dynamic.Resource(kubetest.PodMonitors).Namespace("shop").Delete(ctx, "workers", metav1.DeleteOptions{}))
	wait(func() string { return "" })
}
