package benchcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// profileEnv names a directory: when set, each sub-benchmark fetches a CPU
// profile of every argus process over its timed rounds, for
// `go tool pprof -top <dir>/<topology>-<role>-<i>.pprof`. The profile lasts
// profileSecondsEnv seconds (default 10): give enough rounds
// (-benchtime=300x) for the rounds to outlast it.
const (
	profileEnv        = "BENCH_CLUSTER_CPUPROFILE"
	profileSecondsEnv = "BENCH_CLUSTER_CPUPROFILE_SECONDS"
)

func init() {
	if os.Getenv(profileEnv) != "" {
		commonFlags = append(commonFlags, "-server.register-instrumentation=true") // serves /debug/pprof/
	}
}

// startProfiles starts the CPU profiles of every process of topo if
// profileEnv is set, and returns a function that waits for them.
func startProfiles(b *testing.B, name string, topo topology) (wait func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	secs := 10
	if s, err := strconv.Atoi(os.Getenv(profileSecondsEnv)); err == nil && s > 0 {
		secs = s
	}
	var wg sync.WaitGroup
	for role, ps := range topo.procs {
		for i, p := range ps {
			path := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", name, role, i))
			wg.Go(func() {
				if err := p.CPUProfile(secs, path); err != nil {
					b.Logf("profile of %s: %v", path, err)
				}
			})
		}
	}
	return wg.Wait
}
