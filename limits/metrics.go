package limits

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Values of the status label of argus_runtime_config_reloads_total.
const (
	statusSuccess = "success"
	statusFailure = "failure"
)

// metrics are the runtime config loader's metrics. They carry no tenant
// label.
type metrics struct {
	lastReloadSuccessful prometheus.Gauge
	reloadSuccesses      prometheus.Counter
	reloadFailures       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	reloads := f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_runtime_config_reloads_total",
		Help: "Loads of the runtime config file (-runtime-config.file), by status (success, failure).",
	}, []string{"status"})
	return &metrics{
		lastReloadSuccessful: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_runtime_config_last_reload_successful",
			Help: "1 if the last load of the runtime config file succeeded, 0 if it failed and the last good config is still in force.",
		}),
		// Both statuses exist at zero from the start.
		reloadSuccesses: reloads.WithLabelValues(statusSuccess),
		reloadFailures:  reloads.WithLabelValues(statusFailure),
	}
}
