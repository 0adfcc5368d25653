package monitors

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Config configures reading ServiceMonitor and PodMonitor resources.
type Config struct {
	Enabled                   bool          `yaml:"enabled"`
	Kubeconfig                string        `yaml:"kubeconfig_file"`
	Namespaces                string        `yaml:"namespaces"`
	Selector                  string        `yaml:"selector"`
	ResyncPeriod              time.Duration `yaml:"resync_period" category:"advanced"`
	TenantNamespaceLabel      string        `yaml:"tenant_namespace_label"`
	TenantNamespaceAnnotation string        `yaml:"tenant_namespace_annotation"`
}

// RegisterFlags registers the flags of c under -scraper.monitors.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&c.Enabled, "scraper.monitors.enabled", false, "Scrape the targets of the Prometheus Operator's ServiceMonitor and PodMonitor resources (monitoring.coreos.com/v1), with the scrape configurations the Operator would generate, besides those of -scraper.config-file.")
	f.StringVar(&c.Kubeconfig, "scraper.monitors.kubeconfig", "", "Kubeconfig file of the Kubernetes API that holds the resources and whose objects the generated jobs discover. Empty uses the in-cluster service account.")
	f.StringVar(&c.Namespaces, "scraper.monitors.namespaces", "", "Comma-separated namespaces whose resources are read. Empty reads every namespace.")
	f.StringVar(&c.Selector, "scraper.monitors.selector", "", "Label selector (Kubernetes syntax, e.g. team=a,tier!=test) the resources must match, as the Prometheus resource's serviceMonitorSelector and podMonitorSelector. Empty matches every resource.")
	f.DurationVar(&c.ResyncPeriod, "scraper.monitors.resync-period", 5*time.Minute, "How often every resource is read again in full, on top of the watch that sees each change as it happens.")
	f.StringVar(&c.TenantNamespaceLabel, "scraper.monitors.tenant-namespace-label", "", "Label of a target's namespace whose value is the tenant of the target's samples. When it or -scraper.monitors.tenant-namespace-annotation is set, a resource's relabelings cannot choose the tenant; a namespace without either uses -scraper.tenant.")
	f.StringVar(&c.TenantNamespaceAnnotation, "scraper.monitors.tenant-namespace-annotation", "", "Annotation of a target's namespace whose value is the tenant of the target's samples; it wins over -scraper.monitors.tenant-namespace-label.")
}

// Validate reports an invalid configuration.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if _, err := labels.Parse(c.Selector); err != nil {
		return fmt.Errorf("-scraper.monitors.selector: %w", err)
	}
	if c.ResyncPeriod <= 0 {
		return errors.New("-scraper.monitors.resync-period must be positive")
	}
	return nil
}

// namespaces returns the namespaces to watch; one empty name means all.
func (c *Config) namespaces() []string {
	var out []string
	for _, n := range strings.Split(c.Namespaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

func (c *Config) options() Options {
	return Options{Kubeconfig: c.Kubeconfig, TenantNamespaceLabel: c.TenantNamespaceLabel, TenantNamespaceAnnotation: c.TenantNamespaceAnnotation}
}
