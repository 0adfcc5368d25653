package kubee2e

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/internal/kubetest"
)

// sdConfig uses every role of kubernetes_sd_configs, with the relabelling
// that a typical prometheus.yml has.
const sdConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: k8s-pods
  kubernetes_sd_configs: [{role: pod, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}}]
  relabel_configs:
  - {action: keep, source_labels: [__meta_kubernetes_pod_label_app], regex: web}
  - {action: drop, source_labels: [__meta_kubernetes_pod_phase], regex: Succeeded|Failed}
  - {action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_pod_container_port_name], target_label: port}
- job_name: k8s-namespace-tenant
  kubernetes_sd_configs: [{role: pod, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}, attach_metadata: {namespace: true}}]
  relabel_configs:
  - {action: keep, source_labels: [__meta_kubernetes_pod_label_app], regex: db}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_namespace_label_team], target_label: __tenant__, replacement: 'team-$1'}
- job_name: k8s-endpoints
  kubernetes_sd_configs: [{role: endpoints, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}}]
  relabel_configs:
  - {action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: metrics}
  - {source_labels: [__meta_kubernetes_service_name], target_label: service}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
  - {source_labels: [__meta_kubernetes_endpoint_ready], target_label: ready}
- job_name: k8s-endpointslice
  kubernetes_sd_configs: [{role: endpointslice, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}}]
  relabel_configs:
  - {action: keep, source_labels: [__meta_kubernetes_endpointslice_port_name], regex: metrics}
  - {source_labels: [__meta_kubernetes_endpointslice_name], target_label: slice}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
- job_name: k8s-services
  kubernetes_sd_configs: [{role: service, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}}]
  relabel_configs:
  - {action: labelmap, regex: __meta_kubernetes_service_label_(.+)}
  - {source_labels: [__meta_kubernetes_service_port_name], target_label: port}
- job_name: k8s-nodes
  kubernetes_sd_configs: [{role: node, kubeconfig_file: KUBECONFIG}]
  relabel_configs:
  - {action: labelmap, regex: __meta_kubernetes_node_label_(.+)}
- job_name: k8s-ingress
  kubernetes_sd_configs: [{role: ingress, kubeconfig_file: KUBECONFIG, namespaces: {names: [apps]}}]
  relabel_configs:
  - {source_labels: [__meta_kubernetes_ingress_name], target_label: ingress}
  - {source_labels: [__meta_kubernetes_ingress_path], target_label: path}
`

// cluster creates the objects of TestKubernetesSDMatchesPrometheus: in
// namespace apps two web pods, a db pod, a finished web pod, service web
// with its Endpoints and two EndpointSlices, and an ingress; in namespace
// other a web pod; one node. Pods and the node point at exporters on
// kubetest.HostIP. The Endpoints and EndpointSlices are written by the test, as
// no controller runs.
func cluster(t *testing.T, s *kubetest.Server) {
	ip := kubetest.HostIP(t)
	ctx := context.Background()
	s.CreateNamespace(t, "apps", map[string]string{"team": "a"}, nil)
	s.CreateNamespace(t, "other", nil, nil)
	pod := func(ns, name, app string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "main", Image: "example.invalid/" + app,
				Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: kubetest.Exporter(t, name)}},
			}}},
		}
	}
	pods := map[string]*corev1.Pod{}
	for _, p := range []*corev1.Pod{pod("apps", "web-1", "web"), pod("apps", "web-2", "web"), pod("apps", "db-1", "db"), pod("other", "web-3", "web")} {
		pods[p.Name] = s.CreateRunningPod(t, p, ip, "")
	}
	s.CreateRunningPod(t, pod("apps", "web-done", "web"), ip, corev1.PodSucceeded)

	s.CreateService(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 8080, TargetPort: intstr.FromString("metrics")}},
		},
	})
	webPort := func(name string) int32 { return pods[name].Spec.Containers[0].Ports[0].ContainerPort }
	ref := func(name string) *corev1.ObjectReference {
		return &corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: name, UID: pods[name].UID}
	}
	var subsets []corev1.EndpointSubset //nolint:staticcheck // core/v1 Endpoints, read by the endpoints role
	for _, name := range []string{"web-1", "web-2"} {
		subsets = append(subsets, corev1.EndpointSubset{
			Addresses: []corev1.EndpointAddress{{IP: ip, TargetRef: ref(name)}},
			Ports:     []corev1.EndpointPort{{Name: "metrics", Port: webPort(name)}},
		})
		ready := true
		s.CreateEndpointSlice(t, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "apps", Name: "web-" + strings.TrimPrefix(name, "web-"), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, TargetRef: ref(name)}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("metrics"), Port: ptr(webPort(name))}},
		})
	}
	s.CreateEndpoints(t, &corev1.Endpoints{ //nolint:staticcheck // as above
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", Labels: map[string]string{"app": "web"}},
		Subsets:    subsets,
	})

	prefix := networkingv1.PathTypePrefix
	_, err := s.Client.NetworkingV1().Ingresses("apps").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "web.example.invalid",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/metrics", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 8080}}},
			}}}},
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	node, err := s.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"zone": "z1"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	node.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubetest.Exporter(t, "node-1")}},
	}
	_, err = s.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func ptr[T any](v T) *T { return &v }

// TestKubernetesSDMatchesPrometheus runs argus and the real Prometheus on
// the same prometheus.yml (every kubernetes_sd_configs role) against the
// same API server: argus must have exactly Prometheus's targets, with
// exactly its labels, and store what it scrapes (a job's targets under the
// tenant their namespace's label names, through attach_metadata and
// __tenant__); deleting a pod makes its series stale in both.
func TestKubernetesSDMatchesPrometheus(t *testing.T) {
	s := kubetest.Start(t)
	cluster(t, s)
	cfg := strings.ReplaceAll(sdConfig, "KUBECONFIG", s.Kubeconfig)
	promURL := kubetest.StartPrometheus(t, cfg)
	argus := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-scraper.config-file=" + writeFile(t, "prometheus.yml", cfg),
		"-scraper.tenant=kube",
	}})

	// pods 2 (web-1, web-2), endpoints 2, endpointslice 2, services 1,
	// nodes 1, ingress 1; and db-1 of tenant team-a, the label of its
	// namespace.
	targets := sameTargets(t, argus, []string{"kube", "team-a"}, promURL, 10)
	var pools []string
	for _, tg := range targets {
		pools = append(pools, tg.ScrapePool)
	}
	sort.Strings(pools)
	require.Equal(t, "k8s-endpoints k8s-endpoints k8s-endpointslice k8s-endpointslice k8s-ingress k8s-namespace-tenant k8s-nodes k8s-pods k8s-pods k8s-services", strings.Join(pools, " "))
	teamA, err := kubetest.ActiveTargets(argus.URL()+"/prometheus", "team-a")
	require.NoError(t, err)
	require.Len(t, teamA, 1)
	require.Equal(t, "db-1", teamA[0].Labels["pod"])

	// What argus scraped from the two web pods is stored, with the target's
	// labels.
	const q = `kubetest_up{job="k8s-pods"}`
	clustertest.Eventually(t, func() string {
		got := instantVector(t, argus, "kube", q)
		if len(got) != 2 {
			return "argus: " + strings.Join(got, "\n")
		}
		require.Contains(t, got[0], `app="web"`)
		require.Contains(t, got[0], `exporter="web-1"`)
		require.Contains(t, got[0], `namespace="apps"`)
		if db := instantVector(t, argus, "team-a", `kubetest_up`); len(db) != 1 || !strings.Contains(db[0], `exporter="db-1"`) {
			return "argus, tenant team-a: " + strings.Join(db, "\n")
		}
		return ""
	}, time.Minute)

	// Deleting web-1 removes its target from both and makes its series
	// stale in both (staleness markers): an instant query no longer
	// returns it, well before the 5 min lookback.
	require.NoError(t, s.Client.CoreV1().Pods("apps").Delete(context.Background(), "web-1", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))
	sameTargets(t, argus, []string{"kube", "team-a"}, promURL, 9)
	clustertest.Eventually(t, func() string {
		got := instantVector(t, argus, "kube", q)
		if len(got) != 1 || !strings.Contains(got[0], `pod="web-2"`) {
			return "argus, after deleting web-1: " + strings.Join(got, "\n")
		}
		if p := promVector(t, promURL, q); len(p) != 1 || p[0] != got[0] {
			return "prometheus, after deleting web-1: " + strings.Join(p, "\n") + "\nargus: " + got[0]
		}
		return ""
	}, time.Minute)
}
