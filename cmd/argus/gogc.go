package main

import (
	"os"
	"runtime/debug"
)

// ingesterGOGC is the garbage collector's target of a process that runs an
// ingester, unless the GOGC environment variable sets one. An ingester's
// heap is mostly long-lived series, and Go's default of 100 lets the heap
// grow to twice that before a collection: with a million series that is
// hundreds of MB of RSS that hold nothing. Prometheus runs at 75 and
// VictoriaMetrics at 30; 50 keeps the heap within 1.5x of the live series
// for a GC cost per sample that stays small, as the series are few objects
// with few pointers (docs/benchmarks.md, "Memory per series").
const ingesterGOGC = 50

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
