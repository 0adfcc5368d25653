package monitors

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TenantLabel is the target label the scraper reads a target's tenant
// from; the generated relabelling sets it from the namespace.
const TenantLabel = "__tenant__"

// Options are the parts of the generated scrape configurations that come
// from the scraper rather than from the resources.
type Options struct {
	// Kubeconfig is the kubeconfig_file of every generated
	// kubernetes_sd_config; empty uses the in-cluster service account, as
	// the Operator's generated configurations do.
	Kubeconfig string
	// TenantNamespaceLabel and TenantNamespaceAnnotation name the label and
	// the annotation of a target's namespace that hold its tenant (the
	// annotation wins when both are set). When either is set, relabelling
	// in a resource cannot choose the tenant: __tenant__ is cleared after
	// the resource's own relabelings and then set from the namespace only.
	TenantNamespaceLabel      string
	TenantNamespaceAnnotation string
}

// relabel is one relabel_configs entry, its keys in the Operator's order.
type relabel = yaml.MapSlice

// ServiceMonitorConfigs returns the scrape configurations the Prometheus
// Operator generates for m: one job per endpoint, named
// serviceMonitor/NAMESPACE/NAME/INDEX, discovering with the endpoints (or
// endpointslice) role, selecting services by relabelling on their labels.
// The Operator's hashmod sharding is left out: Argus shards targets itself.
func ServiceMonitorConfigs(m *monitoringv1.ServiceMonitor, opts Options) []yaml.MapSlice {
	role := "endpoints"
	portLabel, targetKind := "__meta_kubernetes_endpoint_port_name", "__meta_kubernetes_endpoint_address_target_"
	if m.Spec.ServiceDiscoveryRole != nil && *m.Spec.ServiceDiscoveryRole == monitoringv1.EndpointSliceRole {
		role = "endpointslice"
		portLabel, targetKind = "__meta_kubernetes_endpointslice_port_name", "__meta_kubernetes_endpointslice_address_target_"
	}
	var out []yaml.MapSlice
	for i, ep := range m.Spec.Endpoints {
		cfg := endpointHeader(fmt.Sprintf("serviceMonitor/%s/%s/%d", m.Namespace, m.Name, i), ep.HonorLabels, ep.HonorTimestamps)
		cfg = append(cfg, yaml.MapItem{Key: "kubernetes_sd_configs", Value: []yaml.MapSlice{sdConfig(role, m.Namespace, m.Spec.NamespaceSelector, opts)}})
		cfg = appendScrapeParams(cfg, string(ep.Interval), string(ep.ScrapeTimeout), ep.Path, ep.Params, ep.Scheme)

		rs := []relabel{{{Key: "source_labels", Value: []string{"job"}}, {Key: "target_label", Value: "__tmp_prometheus_job_name"}}}
		rs = append(rs, selectorRelabels("service", m.Spec.Selector)...)
		switch {
		case ep.Port != "":
			rs = append(rs, keep(portLabel, ep.Port))
		case ep.TargetPort != nil && ep.TargetPort.StrVal != "":
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_name", ep.TargetPort.StrVal))
		case ep.TargetPort != nil && ep.TargetPort.IntVal != 0:
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_number", fmt.Sprint(ep.TargetPort.IntVal)))
		}
		kind := []string{targetKind + "kind", targetKind + "name"}
		rs = append(rs,
			relabel{{Key: "source_labels", Value: kind}, {Key: "separator", Value: ";"}, {Key: "regex", Value: "Node;(.*)"}, {Key: "replacement", Value: "${1}"}, {Key: "target_label", Value: "node"}},
			relabel{{Key: "source_labels", Value: kind}, {Key: "separator", Value: ";"}, {Key: "regex", Value: "Pod;(.*)"}, {Key: "replacement", Value: "${1}"}, {Key: "target_label", Value: "pod"}},
			copyLabel("__meta_kubernetes_namespace", "namespace"),
			copyLabel("__meta_kubernetes_service_name", "service"),
			copyLabel("__meta_kubernetes_pod_name", "pod"),
			copyLabel("__meta_kubernetes_pod_container_name", "container"),
		)
		if ep.FilterRunning == nil || *ep.FilterRunning {
			rs = append(rs, runningFilter())
		}
		for _, l := range m.Spec.TargetLabels {
			rs = append(rs, copyNonEmpty("__meta_kubernetes_service_label_"+sanitize(l), sanitize(l)))
		}
		for _, l := range m.Spec.PodTargetLabels {
			rs = append(rs, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(l), sanitize(l)))
		}
		rs = append(rs, relabel{{Key: "source_labels", Value: []string{"__meta_kubernetes_service_name"}}, {Key: "target_label", Value: "job"}, {Key: "replacement", Value: "${1}"}})
		if m.Spec.JobLabel != "" {
			rs = append(rs, copyNonEmpty("__meta_kubernetes_service_label_"+sanitize(m.Spec.JobLabel), "job"))
		}
		cfg = appendEndpointTail(cfg, rs, ep.Port, ep.TargetPort, ep.RelabelConfigs, ep.MetricRelabelConfigs, m.Spec.SampleLimit, m.Spec.TargetLimit, opts)
		out = append(out, cfg)
	}
	return out
}

// PodMonitorConfigs returns the scrape configurations the Prometheus
// Operator generates for m: one job per endpoint, named
// podMonitor/NAMESPACE/NAME/INDEX, discovering with the pod role. As for
// ServiceMonitorConfigs, the hashmod sharding is left out.
func PodMonitorConfigs(m *monitoringv1.PodMonitor, opts Options) []yaml.MapSlice {
	var out []yaml.MapSlice
	for i, ep := range m.Spec.PodMetricsEndpoints {
		cfg := endpointHeader(fmt.Sprintf("podMonitor/%s/%s/%d", m.Namespace, m.Name, i), ep.HonorLabels, ep.HonorTimestamps)
		cfg = append(cfg, yaml.MapItem{Key: "kubernetes_sd_configs", Value: []yaml.MapSlice{sdConfig("pod", m.Namespace, m.Spec.NamespaceSelector, opts)}})
		cfg = appendScrapeParams(cfg, string(ep.Interval), string(ep.ScrapeTimeout), ep.Path, ep.Params, ep.Scheme)

		rs := []relabel{{{Key: "source_labels", Value: []string{"job"}}, {Key: "target_label", Value: "__tmp_prometheus_job_name"}}}
		if ep.FilterRunning == nil || *ep.FilterRunning {
			rs = append(rs, runningFilter())
		}
		rs = append(rs, selectorRelabels("pod", m.Spec.Selector)...)
		port := ""
		if ep.Port != nil {
			port = *ep.Port
		}
		switch {
		case port != "":
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_name", port))
		case ep.PortNumber != nil && *ep.PortNumber != 0:
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_number", fmt.Sprint(*ep.PortNumber)))
		case ep.TargetPort != nil && ep.TargetPort.StrVal != "":
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_name", ep.TargetPort.StrVal))
		case ep.TargetPort != nil && ep.TargetPort.IntVal != 0:
			rs = append(rs, keep("__meta_kubernetes_pod_container_port_number", fmt.Sprint(ep.TargetPort.IntVal)))
		}
		rs = append(rs,
			copyLabel("__meta_kubernetes_namespace", "namespace"),
			copyLabel("__meta_kubernetes_pod_container_name", "container"),
			copyLabel("__meta_kubernetes_pod_name", "pod"),
		)
		for _, l := range m.Spec.PodTargetLabels {
			rs = append(rs, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(l), sanitize(l)))
		}
		rs = append(rs, setLabel("job", m.Namespace+"/"+m.Name))
		if m.Spec.JobLabel != "" {
			rs = append(rs, copyNonEmpty("__meta_kubernetes_pod_label_"+sanitize(m.Spec.JobLabel), "job"))
		}
		cfg = appendEndpointTail(cfg, rs, port, ep.TargetPort, ep.RelabelConfigs, ep.MetricRelabelConfigs, m.Spec.SampleLimit, m.Spec.TargetLimit, opts)
		out = append(out, cfg)
	}
	return out
}

// appendEndpointTail appends to cfg what a ServiceMonitor's and a
// PodMonitor's endpoint end with alike: to rs the endpoint label (port,
// else targetPort), the resource's relabelings and the tenant's, then the
// relabel_configs, the limits and the metric relabelings.
func appendEndpointTail(cfg yaml.MapSlice, rs []relabel, port string, targetPort *intstr.IntOrString,
	relabelings, metricRelabelings []monitoringv1.RelabelConfig, sampleLimit, targetLimit *int64, opts Options,
) yaml.MapSlice {
	if port != "" {
		rs = append(rs, setLabel("endpoint", port))
	} else if targetPort != nil && targetPort.String() != "" {
		rs = append(rs, setLabel("endpoint", targetPort.String()))
	}
	rs = append(rs, userRelabels(relabelings)...)
	rs = append(rs, tenantRelabels(opts)...)
	cfg = append(cfg, yaml.MapItem{Key: "relabel_configs", Value: rs})
	cfg = appendLimits(cfg, sampleLimit, targetLimit)
	if len(metricRelabelings) > 0 {
		cfg = append(cfg, yaml.MapItem{Key: "metric_relabel_configs", Value: userRelabels(metricRelabelings)})
	}
	return cfg
}

func endpointHeader(job string, honorLabels bool, honorTimestamps *bool) yaml.MapSlice {
	cfg := yaml.MapSlice{{Key: "job_name", Value: job}, {Key: "honor_labels", Value: honorLabels}}
	if honorTimestamps != nil {
		cfg = append(cfg, yaml.MapItem{Key: "honor_timestamps", Value: *honorTimestamps})
	}
	return cfg
}

// sdConfig is the kubernetes_sd_config of one job: the resource's own
// namespace unless its namespaceSelector says otherwise (any: every
// namespace).
func sdConfig(role, namespace string, sel monitoringv1.NamespaceSelector, opts Options) yaml.MapSlice {
	sd := yaml.MapSlice{{Key: "role", Value: role}}
	if opts.Kubeconfig != "" {
		sd = append(sd, yaml.MapItem{Key: "kubeconfig_file", Value: opts.Kubeconfig})
	}
	if !sel.Any {
		names := sel.MatchNames
		if len(names) == 0 {
			names = []string{namespace}
		}
		sd = append(sd, yaml.MapItem{Key: "namespaces", Value: yaml.MapSlice{{Key: "names", Value: names}}})
	}
	if opts.TenantNamespaceLabel != "" || opts.TenantNamespaceAnnotation != "" {
		sd = append(sd, yaml.MapItem{Key: "attach_metadata", Value: yaml.MapSlice{{Key: "namespace", Value: true}}})
	}
	return sd
}

func appendScrapeParams(cfg yaml.MapSlice, interval, timeout, path string, params map[string][]string, scheme *monitoringv1.Scheme) yaml.MapSlice {
	if interval != "" {
		cfg = append(cfg, yaml.MapItem{Key: "scrape_interval", Value: interval})
	}
	if timeout != "" {
		cfg = append(cfg, yaml.MapItem{Key: "scrape_timeout", Value: timeout})
	}
	if path != "" {
		cfg = append(cfg, yaml.MapItem{Key: "metrics_path", Value: path})
	}
	if params != nil {
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ps := yaml.MapSlice{}
		for _, k := range keys {
			ps = append(ps, yaml.MapItem{Key: k, Value: params[k]})
		}
		cfg = append(cfg, yaml.MapItem{Key: "params", Value: ps})
	}
	if scheme != nil && *scheme != "" {
		cfg = append(cfg, yaml.MapItem{Key: "scheme", Value: strings.ToLower(string(*scheme))})
	}
	return cfg
}

func appendLimits(cfg yaml.MapSlice, sampleLimit, targetLimit *int64) yaml.MapSlice {
	if sampleLimit != nil {
		cfg = append(cfg, yaml.MapItem{Key: "sample_limit", Value: *sampleLimit})
	}
	if targetLimit != nil {
		cfg = append(cfg, yaml.MapItem{Key: "target_limit", Value: *targetLimit})
	}
	return cfg
}

// selectorRelabels turns a label selector on the discovered objects of
// kind (service or pod) into keep and drop rules, as the Operator does
// (its RelabelOnly selector mechanism, the default).
func selectorRelabels(kind string, sel metav1.LabelSelector) []relabel {
	label := func(k string) string { return "__meta_kubernetes_" + kind + "_label_" + sanitize(k) }
	present := func(k string) string { return "__meta_kubernetes_" + kind + "_labelpresent_" + sanitize(k) }
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rs []relabel
	for _, k := range keys {
		rs = append(rs, relabel{{Key: "action", Value: "keep"}, {Key: "source_labels", Value: []string{label(k), present(k)}}, {Key: "regex", Value: fmt.Sprintf("(%s);true", sel.MatchLabels[k])}})
	}
	for _, e := range sel.MatchExpressions {
		values := fmt.Sprintf("(%s);true", strings.Join(e.Values, "|"))
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			rs = append(rs, relabel{{Key: "action", Value: "keep"}, {Key: "source_labels", Value: []string{label(e.Key), present(e.Key)}}, {Key: "regex", Value: values}})
		case metav1.LabelSelectorOpNotIn:
			rs = append(rs, relabel{{Key: "action", Value: "drop"}, {Key: "source_labels", Value: []string{label(e.Key), present(e.Key)}}, {Key: "regex", Value: values}})
		case metav1.LabelSelectorOpExists:
			rs = append(rs, relabel{{Key: "action", Value: "keep"}, {Key: "source_labels", Value: []string{present(e.Key)}}, {Key: "regex", Value: "true"}})
		case metav1.LabelSelectorOpDoesNotExist:
			rs = append(rs, relabel{{Key: "action", Value: "drop"}, {Key: "source_labels", Value: []string{present(e.Key)}}, {Key: "regex", Value: "true"}})
		}
	}
	return rs
}

func keep(source, regex string) relabel {
	return relabel{{Key: "action", Value: "keep"}, {Key: "source_labels", Value: []string{source}}, {Key: "regex", Value: regex}}
}

func copyLabel(source, target string) relabel {
	return relabel{{Key: "source_labels", Value: []string{source}}, {Key: "target_label", Value: target}}
}

func copyNonEmpty(source, target string) relabel {
	return relabel{{Key: "source_labels", Value: []string{source}}, {Key: "target_label", Value: target}, {Key: "regex", Value: "(.+)"}, {Key: "replacement", Value: "${1}"}}
}

func setLabel(target, value string) relabel {
	return relabel{{Key: "target_label", Value: target}, {Key: "replacement", Value: value}}
}

func runningFilter() relabel {
	return relabel{{Key: "action", Value: "drop"}, {Key: "source_labels", Value: []string{"__meta_kubernetes_pod_phase"}}, {Key: "regex", Value: "(Failed|Succeeded)"}}
}

// tenantRelabels clears __tenant__ and sets it from the namespace's label,
// then from its annotation, when the scraper is configured to take tenants
// from namespaces.
func tenantRelabels(opts Options) []relabel {
	if opts.TenantNamespaceLabel == "" && opts.TenantNamespaceAnnotation == "" {
		return nil
	}
	rs := []relabel{setLabel(TenantLabel, "")}
	if opts.TenantNamespaceLabel != "" {
		rs = append(rs, copyNonEmpty("__meta_kubernetes_namespace_label_"+sanitize(opts.TenantNamespaceLabel), TenantLabel))
	}
	if opts.TenantNamespaceAnnotation != "" {
		rs = append(rs, copyNonEmpty("__meta_kubernetes_namespace_annotation_"+sanitize(opts.TenantNamespaceAnnotation), TenantLabel))
	}
	return rs
}

// userRelabels renders a resource's relabelings with the Operator's field
// names mapped to Prometheus's, leaving Prometheus's defaults to Prometheus.
func userRelabels(cs []monitoringv1.RelabelConfig) []relabel {
	rs := make([]relabel, 0, len(cs))
	for _, c := range cs {
		r := relabel{}
		if len(c.SourceLabels) > 0 {
			ls := make([]string, len(c.SourceLabels))
			for i, l := range c.SourceLabels {
				ls[i] = string(l)
			}
			r = append(r, yaml.MapItem{Key: "source_labels", Value: ls})
		}
		if c.Separator != nil {
			r = append(r, yaml.MapItem{Key: "separator", Value: *c.Separator})
		}
		if c.TargetLabel != "" {
			r = append(r, yaml.MapItem{Key: "target_label", Value: c.TargetLabel})
		}
		if c.Regex != "" {
			r = append(r, yaml.MapItem{Key: "regex", Value: c.Regex})
		}
		if c.Modulus != 0 {
			r = append(r, yaml.MapItem{Key: "modulus", Value: c.Modulus})
		}
		if c.Replacement != nil {
			r = append(r, yaml.MapItem{Key: "replacement", Value: *c.Replacement})
		}
		if c.Action != "" {
			r = append(r, yaml.MapItem{Key: "action", Value: strings.ToLower(c.Action)})
		}
		rs = append(rs, r)
	}
	return rs
}

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// sanitize makes a Kubernetes label name a Prometheus label name, as both
// Prometheus's discovery and the Operator do.
func sanitize(name string) string {
	return invalidLabelChars.ReplaceAllString(name, "_")
}
