package monitors

import (
	"fmt"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/config"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// The expected texts are the Operator's generated jobs for the same
// resources (its promcfg.go, v0.95), less the hashmod sharding rules that
// Argus replaces with its own target sharding.
func TestServiceMonitorConfigs(t *testing.T) {
	m := &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
		Spec: monitoringv1.ServiceMonitorSpec{
			JobLabel:        "app.kubernetes.io/name",
			TargetLabels:    []string{"team"},
			PodTargetLabels: []string{"version"},
			Selector: metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "api"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"test", "dev"}}},
			},
			NamespaceSelector: monitoringv1.NamespaceSelector{MatchNames: []string{"shop", "shop-canary"}},
			SampleLimit:       ptr(int64(1000)),
			Endpoints: []monitoringv1.Endpoint{
				{
					Port: "web", Path: "/custom", Interval: "5s",
					RelabelConfigs:       []monitoringv1.RelabelConfig{{SourceLabels: []monitoringv1.LabelName{"__meta_kubernetes_pod_node_name"}, TargetLabel: "host"}},
					MetricRelabelConfigs: []monitoringv1.RelabelConfig{{Action: "drop", SourceLabels: []monitoringv1.LabelName{"__name__"}, Regex: "go_.*"}},
				},
				{TargetPort: ptr(intstr.FromInt32(9100))},
			},
		},
	}
	got, err := YAML(ServiceMonitorConfigs(m, Options{Kubeconfig: "/k/config"}))
	require.NoError(t, err)
	require.Equal(t, `scrape_configs:
- job_name: serviceMonitor/shop/api/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    kubeconfig_file: /k/config
    namespaces:
      names:
      - shop
      - shop-canary
  scrape_interval: 5s
  metrics_path: /custom
  relabel_configs:
  - source_labels:
    - job
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels:
    - __meta_kubernetes_service_label_app
    - __meta_kubernetes_service_labelpresent_app
    regex: (api);true
  - action: drop
    source_labels:
    - __meta_kubernetes_service_label_tier
    - __meta_kubernetes_service_labelpresent_tier
    regex: (test|dev);true
  - action: keep
    source_labels:
    - __meta_kubernetes_endpoint_port_name
    regex: web
  - source_labels:
    - __meta_kubernetes_endpoint_address_target_kind
    - __meta_kubernetes_endpoint_address_target_name
    separator: ;
    regex: Node;(.*)
    replacement: ${1}
    target_label: node
  - source_labels:
    - __meta_kubernetes_endpoint_address_target_kind
    - __meta_kubernetes_endpoint_address_target_name
    separator: ;
    regex: Pod;(.*)
    replacement: ${1}
    target_label: pod
  - source_labels:
    - __meta_kubernetes_namespace
    target_label: namespace
  - source_labels:
    - __meta_kubernetes_service_name
    target_label: service
  - source_labels:
    - __meta_kubernetes_pod_name
    target_label: pod
  - source_labels:
    - __meta_kubernetes_pod_container_name
    target_label: container
  - action: drop
    source_labels:
    - __meta_kubernetes_pod_phase
    regex: (Failed|Succeeded)
  - source_labels:
    - __meta_kubernetes_service_label_team
    target_label: team
    regex: (.+)
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_pod_label_version
    target_label: version
    regex: (.+)
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_service_name
    target_label: job
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_service_label_app_kubernetes_io_name
    target_label: job
    regex: (.+)
    replacement: ${1}
  - target_label: endpoint
    replacement: web
  - source_labels:
    - __meta_kubernetes_pod_node_name
    target_label: host
  sample_limit: 1000
  metric_relabel_configs:
  - source_labels:
    - __name__
    regex: go_.*
    action: drop
- job_name: serviceMonitor/shop/api/1
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    kubeconfig_file: /k/config
    namespaces:
      names:
      - shop
      - shop-canary
  relabel_configs:
  - source_labels:
    - job
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels:
    - __meta_kubernetes_service_label_app
    - __meta_kubernetes_service_labelpresent_app
    regex: (api);true
  - action: drop
    source_labels:
    - __meta_kubernetes_service_label_tier
    - __meta_kubernetes_service_labelpresent_tier
    regex: (test|dev);true
  - action: keep
    source_labels:
    - __meta_kubernetes_pod_container_port_number
    regex: "9100"
  - source_labels:
    - __meta_kubernetes_endpoint_address_target_kind
    - __meta_kubernetes_endpoint_address_target_name
    separator: ;
    regex: Node;(.*)
    replacement: ${1}
    target_label: node
  - source_labels:
    - __meta_kubernetes_endpoint_address_target_kind
    - __meta_kubernetes_endpoint_address_target_name
    separator: ;
    regex: Pod;(.*)
    replacement: ${1}
    target_label: pod
  - source_labels:
    - __meta_kubernetes_namespace
    target_label: namespace
  - source_labels:
    - __meta_kubernetes_service_name
    target_label: service
  - source_labels:
    - __meta_kubernetes_pod_name
    target_label: pod
  - source_labels:
    - __meta_kubernetes_pod_container_name
    target_label: container
  - action: drop
    source_labels:
    - __meta_kubernetes_pod_phase
    regex: (Failed|Succeeded)
  - source_labels:
    - __meta_kubernetes_service_label_team
    target_label: team
    regex: (.+)
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_pod_label_version
    target_label: version
    regex: (.+)
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_service_name
    target_label: job
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_service_label_app_kubernetes_io_name
    target_label: job
    regex: (.+)
    replacement: ${1}
  - target_label: endpoint
    replacement: "9100"
  sample_limit: 1000
`, string(got))
}

func TestPodMonitorConfigsTenantFromNamespace(t *testing.T) {
	m := &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "workers"},
		Spec: monitoringv1.PodMonitorSpec{
			Selector:            metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "role", Operator: metav1.LabelSelectorOpExists}}},
			NamespaceSelector:   monitoringv1.NamespaceSelector{Any: true},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr("metrics"), RelabelConfigs: []monitoringv1.RelabelConfig{{TargetLabel: "__tenant__", Replacement: ptr("stolen")}}}},
		},
	}
	got, err := YAML(PodMonitorConfigs(m, Options{TenantNamespaceLabel: "argus.io/tenant", TenantNamespaceAnnotation: "argus.io/tenant"}))
	require.NoError(t, err)
	require.Equal(t, `scrape_configs:
- job_name: podMonitor/shop/workers/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: pod
    attach_metadata:
      namespace: true
  relabel_configs:
  - source_labels:
    - job
    target_label: __tmp_prometheus_job_name
  - action: drop
    source_labels:
    - __meta_kubernetes_pod_phase
    regex: (Failed|Succeeded)
  - action: keep
    source_labels:
    - __meta_kubernetes_pod_labelpresent_role
    regex: "true"
  - action: keep
    source_labels:
    - __meta_kubernetes_pod_container_port_name
    regex: metrics
  - source_labels:
    - __meta_kubernetes_namespace
    target_label: namespace
  - source_labels:
    - __meta_kubernetes_pod_container_name
    target_label: container
  - source_labels:
    - __meta_kubernetes_pod_name
    target_label: pod
  - target_label: job
    replacement: shop/workers
  - target_label: endpoint
    replacement: metrics
  - target_label: __tenant__
    replacement: stolen
  - target_label: __tenant__
    replacement: ""
  - source_labels:
    - __meta_kubernetes_namespace_label_argus_io_tenant
    target_label: __tenant__
    regex: (.+)
    replacement: ${1}
  - source_labels:
    - __meta_kubernetes_namespace_annotation_argus_io_tenant
    target_label: __tenant__
    regex: (.+)
    replacement: ${1}
`, string(got))

	// What Prometheus makes of it: the interval and timeout of the global
	// section, a relabelling that clears the stolen tenant.
	cfgs, err := ScrapeConfigs(PodMonitorConfigs(m, Options{TenantNamespaceLabel: "argus.io/tenant"}), config.DefaultGlobalConfig)
	require.NoError(t, err)
	require.Len(t, cfgs, 1)
	require.Equal(t, config.DefaultGlobalConfig.ScrapeInterval, cfgs[0].ScrapeInterval)
	require.Equal(t, "/metrics", cfgs[0].MetricsPath)
}

func TestScrapeConfigsRefusesBadRegex(t *testing.T) {
	m := &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b"},
		Spec: monitoringv1.PodMonitorSpec{PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{
			Port:           ptr("m"),
			RelabelConfigs: []monitoringv1.RelabelConfig{{SourceLabels: []monitoringv1.LabelName{"x"}, Regex: "(unclosed", Action: "keep"}},
		}}},
	}
	_, err := ScrapeConfigs(PodMonitorConfigs(m, Options{}), config.DefaultGlobalConfig)
	require.ErrorContains(t, err, "podMonitor/a/b/0")
	require.ErrorContains(t, err, "missing closing )")
}

// With serviceDiscoveryRole: EndpointSlice the job discovers endpoint
// slices and matches the port and the address target on their meta labels.
func TestServiceMonitorEndpointSliceRole(t *testing.T) {
	role := monitoringv1.EndpointSliceRole
	m := &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "s"},
		Spec: monitoringv1.ServiceMonitorSpec{
			ServiceDiscoveryRole: &role,
			Endpoints:            []monitoringv1.Endpoint{{Port: "web", FilterRunning: ptr(false)}},
		},
	}
	cfgs, err := ScrapeConfigs(ServiceMonitorConfigs(m, Options{}), config.DefaultGlobalConfig)
	require.NoError(t, err)
	require.Len(t, cfgs, 1)
	var got []string
	for _, r := range cfgs[0].RelabelConfigs {
		got = append(got, fmt.Sprintf("%s [%s] %s", r.Action, r.SourceLabels, r.TargetLabel))
	}
	require.Equal(t, []string{
		"replace [job] __tmp_prometheus_job_name",
		"keep [__meta_kubernetes_endpointslice_port_name] ",
		"replace [__meta_kubernetes_endpointslice_address_target_kind, __meta_kubernetes_endpointslice_address_target_name] node",
		"replace [__meta_kubernetes_endpointslice_address_target_kind, __meta_kubernetes_endpointslice_address_target_name] pod",
		"replace [__meta_kubernetes_namespace] namespace",
		"replace [__meta_kubernetes_service_name] service",
		"replace [__meta_kubernetes_pod_name] pod",
		"replace [__meta_kubernetes_pod_container_name] container",
		"replace [__meta_kubernetes_service_name] job",
		"replace [] endpoint",
	}, got, "no running-pod filter: filterRunning is false")
	b, err := YAML(ServiceMonitorConfigs(m, Options{}))
	require.NoError(t, err)
	require.Contains(t, string(b), "- role: endpointslice\n")
}
