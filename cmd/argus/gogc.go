package main

import (
	"os"
	"runtime/debug"
)

// ingesterGOGC is the garbage collector's target of a process that runs an
// ingester, unless the GOGC environment variable sets one. An ingester's
// heap is mostly long-lived series, and Go's default of 100 lets the heap
// grow to twice that before a collection: with a million series, hundreds
// of MB of RSS that hold nothing. Lower costs CPU on every sample, as the
// collector runs more often over the same series: pushing 200K series one
// sample per request, GOGC 75 took 11 % more CPU per sample than 100, and
// 50 took 30 % more (docs/benchmarks.md, "Memory per in-memory series").
// 75 is Prometheus's default (VictoriaMetrics runs at 30).
const ingesterGOGC = 75

// setDefaultGOGC sets the GC target of a process running an ingester to
// ingesterGOGC when GOGC is not set in the environment, and returns the
// percentage it set (0: none, the runtime's choice stands).
func setDefaultGOGC(runsIngester bool) int {
	if !runsIngester {
		return 0
	}
	if _, set := os.LookupEnv("GOGC"); set {
		return 0
	}
	debug.SetGCPercent(ingesterGOGC)
	return ingesterGOGC
}
