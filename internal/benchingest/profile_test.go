package benchingest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// profileEnv names a directory: when set, Argus runs with its /debug/pprof
// handlers and a CPU profile of it is taken from the start of each shape's
// timed pushes, for `go tool pprof -top <dir>/argus-per-request-<n>.pprof`.
// It lasts profileSecondsEnv seconds (default 10); the measure waits for
// it, so a profile longer than the pushes adds idle time, not CPU.
const (
	profileEnv        = "BENCH_INGEST_CPUPROFILE"
	profileSecondsEnv = "BENCH_INGEST_CPUPROFILE_SECONDS"
)

// argusProfileFlags are the flags Argus needs for profileEnv.
func argusProfileFlags() []string {
	if os.Getenv(profileEnv) == "" {
		return nil
	}
	return []string{"-server.register-instrumentation=true"}
}

// startProfile starts the CPU profile of s for the shape of spr samples
// per request if profileEnv is set and s can be profiled, and returns a
// function that waits for it.
func startProfile(b *testing.B, s ingestServer, spr int) (wait func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" || s.profile == nil {
		return func() {}
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv(profileSecondsEnv)); err == nil && v > 0 {
		secs = v
	}
	path := filepath.Join(dir, fmt.Sprintf("argus-per-request-%d.pprof", spr))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.profile(secs, path); err != nil {
			b.Logf("profile %s: %v", path, err)
		}
	}()
	return func() { <-done }
}
