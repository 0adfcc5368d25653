package limits

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argus-tsdb/argus/internal/filereload"
)

// newMetrics registers the runtime config loader's metrics, which
// filereload updates. They carry no tenant label.
func newMetrics(reg prometheus.Registerer) *filereload.Metrics {
	return filereload.NewMetrics(reg, prometheus.GaugeOpts{
		Name: "argus_runtime_config_last_reload_successful",
		Help: "1 if the last load of the runtime config file succeeded, 0 if it failed and the last good config is still in force.",
	}, prometheus.CounterOpts{
		Name: "argus_runtime_config_reloads_total",
		Help: "Loads of the runtime config file (-runtime-config.file), by status (success, failure).",
	})
}
