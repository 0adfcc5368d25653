package filereload

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Values of the status label of the reloads counter.
const (
	statusSuccess = "success"
	statusFailure = "failure"
)

// Metrics are the reload metrics of one file. File updates them on every
// load; the owner may read them, and set LastReloadSuccessful when it has no
// file to load. They carry no tenant label.
type Metrics struct {
	// LastReloadSuccessful is 1 if the last load succeeded, 0 if it failed
	// and the last good value is still in force.
	LastReloadSuccessful prometheus.Gauge
	// ReloadSuccesses and ReloadFailures are the reloads counter's two
	// series, status="success" and status="failure".
	ReloadSuccesses prometheus.Counter
	ReloadFailures  prometheus.Counter

	// lastReloadName is the full name of LastReloadSuccessful, which the
	// reload warnings name.
	lastReloadName string
}

// NewMetrics registers the reload metrics of one file with reg (nil
// registers nowhere): the gauge lastReload and the counter reloads, which
// gets one label, status, whose two values exist at zero from the start.
// The owner names both, after CONTRIBUTING.md, "Metrics" (argus_<component>_..., the counter
// ending in _total).
func NewMetrics(reg prometheus.Registerer, lastReload prometheus.GaugeOpts, reloads prometheus.CounterOpts) *Metrics {
	f := promauto.With(reg)
	byStatus := f.NewCounterVec(reloads, []string{"status"})
	return &Metrics{
		LastReloadSuccessful: f.NewGauge(lastReload),
		ReloadSuccesses:      byStatus.WithLabelValues(statusSuccess),
		ReloadFailures:       byStatus.WithLabelValues(statusFailure),
		lastReloadName:       prometheus.BuildFQName(lastReload.Namespace, lastReload.Subsystem, lastReload.Name),
	}
}
