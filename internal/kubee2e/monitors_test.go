package kubee2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// unselectedYAML are PodMonitors that select the same worker pod but that
// argus must not read: one in a namespace outside
// -scraper.monitors.namespaces, one whose labels -scraper.monitors.selector
// excludes (as a Prometheus resource's podMonitorNamespaceSelector and
// podMonitorSelector would leave them out).
var unselectedYAML = []string{`
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {namespace: elsewhere, name: all-workers}
spec:
  selector: {matchLabels: {role: worker}}
  namespaceSelector: {any: true}
  podMetricsEndpoints: [{port: metrics, interval: 1s}]
`, `
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {namespace: shop, name: ignored, labels: {argus.io/ignore: "true"}}
spec:
  selector: {matchLabels: {role: worker}}
  podMetricsEndpoints: [{port: metrics, interval: 1s}]
`}

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

// TestMonitorsMatchOperatorConfigOnPrometheus creates a ServiceMonitor and
// a PodMonitor in a real API server. Argus, reading them
// (-scraper.monitors.enabled), must scrape exactly the targets, with
// exactly the labels, that the real Prometheus scrapes when it runs the
// configuration the Operator generates for them, and store the samples
// under the tenant its namespace's label names, or once annotated the
// tenant its annotation names; editing the ServiceMonitor
// and deleting the PodMonitor must change argus's targets within a resync.
func TestMonitorsMatchOperatorConfigOnPrometheus(t *testing.T) {
	s := kubetest.Start(t)
	sh := createShop(t, s)
	createMonitor(t, s, serviceMonitorYAML)
	createMonitor(t, s, podMonitorYAML)
	s.CreateNamespace(t, "elsewhere", nil, nil)
	for _, doc := range unselectedYAML {
		createMonitor(t, s, doc)
	}
	promURL := kubetest.StartPrometheus(t, operatorConfig(s.Kubeconfig))
	argus := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-scraper.config-file=" + writeFile(t, "prometheus.yml", "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"),
		"-scraper.tenant=kube",
		"-scraper.monitors.enabled=true",
		"-scraper.monitors.kubeconfig=" + s.Kubeconfig,
		"-scraper.monitors.resync-period=2s",
		"-scraper.monitors.namespaces=shop",
		"-scraper.monitors.selector=argus.io/ignore!=true",
		"-scraper.monitors.tenant-namespace-label=argus.io/tenant",
		"-scraper.monitors.tenant-namespace-annotation=argus.io/tenant",
	}})

	// Two api pods behind the service and the running worker; not the
	// finished worker, not the other app, and no job of the unselected
	// PodMonitors.
	targets := sameTargets(t, argus, []string{"team-a"}, promURL, 3)
	byPod := map[string]kubetest.Target{}
	for _, tg := range targets {
		byPod[tg.Labels["pod"]] = tg
	}
	api2 := byPod["api-2"]
	require.Equal(t, "serviceMonitor/shop/api/0", api2.ScrapePool)
	require.Equal(t, map[string]string{
		"container": "main", "endpoint": "web", "instance": fmt.Sprintf("%s:%d", kubetest.HostIP(t), sh.api2), "job": "api",
		"namespace": "shop", "pod": "api-2", "service": "api", "team": "payments", "version": "v2",
	}, api2.Labels)
	require.Equal(t, "podMonitor/shop/workers/0", byPod["worker-1"].ScrapePool)
	none, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "kube")
	require.NoError(t, err)
	require.Empty(t, none, "every target's tenant comes from its namespace")

	// The samples are stored under the namespace's tenant.
	clustertest.Eventually(t, func() string {
		got := instantVector(t, argus, "team-a", `kubetest_up`)
		if len(got) != 3 {
			return "argus, tenant team-a: " + strings.Join(got, "\n")
		}
		return ""
	}, time.Minute)

	// Annotating the namespace moves its targets to the annotation's
	// tenant, which wins over the label's.
	ctx := context.Background()
	ns, err := s.Client.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	ns.Annotations = map[string]string{"argus.io/tenant": "team-b"}
	_, err = s.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	clustertest.Eventually(t, func() string {
		a, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "team-a")
		if err != nil {
			return err.Error()
		}
		b, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "team-b")
		if err != nil {
			return err.Error()
		}
		if len(a) != 0 || kubetest.Keys(b) != kubetest.Keys(targets) {
			return "team-a:\n" + kubetest.Keys(a) + "team-b:\n" + kubetest.Keys(b)
		}
		return ""
	}, time.Minute)
	clustertest.Eventually(t, func() string {
		if got := instantVector(t, argus, "team-b", `kubetest_up`); len(got) != 3 {
			return "argus, tenant team-b: " + strings.Join(got, "\n")
		}
		return ""
	}, time.Minute)

	// Editing the ServiceMonitor to select no service removes its two
	// targets; deleting the PodMonitor removes the last one.
	sms := s.Dynamic.Resource(kubetest.ServiceMonitors).Namespace("shop")
	sm, err := sms.Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedStringMap(sm.Object, map[string]string{"app": "nothing"}, "spec", "selector", "matchLabels"))
	_, err = sms.Update(ctx, sm, metav1.UpdateOptions{})
	require.NoError(t, err)
	onlyWorker := func() string {
		a, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "team-b")
		if err != nil {
			return err.Error()
		}
		if len(a) != 1 || a[0].ScrapePool != "podMonitor/shop/workers/0" || a[0].Labels["pod"] != "worker-1" {
			return "argus after the edit:\n" + kubetest.Keys(a)
		}
		return ""
	}
	clustertest.Eventually(t, onlyWorker, time.Minute)
	require.NoError(t, s.Dynamic.Resource(kubetest.PodMonitors).Namespace("shop").Delete(ctx, "workers", metav1.DeleteOptions{}))
	clustertest.Eventually(t, func() string {
		a, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "team-b")
		if err != nil {
			return err.Error()
		}
		if len(a) != 0 {
			return "argus after the deletion:\n" + kubetest.Keys(a)
		}
		return ""
	}, time.Minute)
}
