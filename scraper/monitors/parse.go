package monitors

import (
	"fmt"

	"github.com/prometheus/prometheus/config"
	// The generated jobs discover with kubernetes_sd_configs, which
	// Prometheus's config parser knows only once the package registers it.
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
	"go.yaml.in/yaml/v2"
)

// ScrapeConfigs parses generated configurations into Prometheus's own
// type, with the defaults (interval, timeout, protocols) of global, exactly
// as Prometheus loads the same YAML from a file.
func ScrapeConfigs(generated []yaml.MapSlice, global config.GlobalConfig) ([]*config.ScrapeConfig, error) {
	out := make([]*config.ScrapeConfig, 0, len(generated))
	for _, g := range generated {
		b, err := yaml.Marshal(g)
		if err != nil {
			return nil, err
		}
		sc := &config.ScrapeConfig{}
		if err := yaml.UnmarshalStrict(b, sc); err != nil {
			return nil, fmt.Errorf("generated scrape config %v: %w", g[0].Value, err)
		}
		if err := sc.Validate(global); err != nil {
			return nil, fmt.Errorf("generated scrape config %s: %w", sc.JobName, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// YAML renders generated configurations as the scrape_configs list of a
// prometheus.yml, for logs, status pages and tests.
func YAML(generated []yaml.MapSlice) ([]byte, error) {
	return yaml.Marshal(yaml.MapSlice{{Key: "scrape_configs", Value: generated}})
}
