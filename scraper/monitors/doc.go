// Package monitors turns the Prometheus Operator's ServiceMonitor and
// PodMonitor resources (monitoring.coreos.com/v1) into Prometheus scrape
// configurations, the ones the Operator itself would generate, so that a
// cluster that already describes its targets with these resources needs no
// prometheus.yml for them.
//
// generate.go is the translation, after the Operator's promcfg.go: one job
// per endpoint (serviceMonitor/NAMESPACE/NAME/INDEX,
// podMonitor/NAMESPACE/NAME/INDEX), kubernetes_sd_configs with the
// endpoints (or endpointslice) role for a ServiceMonitor and the pod role
// for a PodMonitor, the resource's label selector as keep and drop rules,
// port and targetPort matching, the job, endpoint, namespace, service, pod
// and container labels, targetLabels, podTargetLabels, jobLabel, the
// resource's relabelings and metricRelabelings, interval, timeout, path,
// params, scheme and limits. Two things differ on purpose: the Operator's
// hashmod sharding rules are left out (Argus shards targets over its
// scrapers itself), and, when the scraper is configured to take tenants
// from namespaces, rules that set __tenant__ from a namespace label or
// annotation come last (after the resource's own relabelings, which can
// therefore not choose the tenant). Authentication and TLS settings that
// reference Secrets are not translated yet: such an endpoint is scraped
// without them.
//
// watch.go follows the resources through client-go's dynamic informers
// (a watch, plus a full re-list every -scraper.monitors.resync-period) and
// hands every generated configuration, each time one changes, to the
// scraper, which applies them next to those of -scraper.config-file. A
// resource whose configuration does not parse is skipped and logged; the
// others still apply.
package monitors
