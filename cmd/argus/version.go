package main

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/version"
)

// Version and Revision are stamped by the build (the Makefile's LDFLAGS:
// -X main.Version=... -X main.Revision=...). They are the one version of the
// process: -version, the / page, argus_build_info and the Prometheus API's
// status/buildinfo (as "argus-" + Version, so that no client takes it for a
// Prometheus version) all show them.
var (
	Version  = "0.1.0-dev"
	Revision = "unknown"
)

func init() {
	// The Prometheus API's status/buildinfo reads Prometheus's version
	// package: point it at ours.
	version.Version, version.Revision = Version, Revision
}

func versionString() string {
	return "argus " + Version + " (revision " + Revision + ", " + runtime.Version() + ")"
}

func registerBuildInfo(reg prometheus.Registerer) {
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "argus_build_info",
		Help: "A metric with a constant 1 value labelled by the version Argus was built from.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(Version, Revision, runtime.Version()).Set(1)
}
