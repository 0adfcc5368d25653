package main

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func versionString() string { return "argus " + Version + " (" + runtime.Version() + ")" }

func registerBuildInfo(reg prometheus.Registerer) {
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "argus_build_info",
		Help: "A metric with a constant 1 value labelled by the version Argus was built from.",
	}, []string{"version", "goversion"}).WithLabelValues(Version, runtime.Version()).Set(1)
}
