package storage

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FailpointEnv names the environment variable that makes a process crash
// at one step of the DB, for the end-to-end crash tests of the real binary
// (internal/e2e): its value is a step prefix, optionally followed by @n to
// crash at the n-th step that has it (default the first), such as
// "compact:written" or "seal:part-commit@3". The steps are those of the
// test hook (DBOptions.testHook): every durable step of a flush, a
// compaction (an early seal's are "earlyseal:..."), a retention pass, a
// tenant deletion or a clean_tombstones; and those Failpoint names.
//
// At that step the process kills itself with SIGKILL, as kill -9 would: no
// deferred function, no close, no flush runs. It prints the step on
// standard error first, so that a test can tell its crash from another.
// Unset (production), it costs one environment lookup per OpenDB.
const FailpointEnv = "ARGUS_FAILPOINT"

// Failpoint returns the hook FailpointEnv asks for, or nil when it is
// unset, for the steps that happen outside the DB: the ingester's WAL
// truncation calls it at each of its steps, named "wal:<step>" (such as
// "wal:checkpointed"), and argus tsdb delete-tenant at "wal-delete:<step>".
// Each call returns a hook with its own count of steps.
func Failpoint() func(step string) error { return failpointFromEnv() }

// failpointFromEnv returns the test hook FailpointEnv asks for, or nil.
// A malformed value is reported and ignored rather than crashing at start.
func failpointFromEnv() func(step string) error {
	v := os.Getenv(FailpointEnv)
	if v == "" {
		return nil
	}
	prefix, nth := v, 1
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		n, err := strconv.Atoi(v[i+1:])
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: want PREFIX or PREFIX@N with N >= 1; ignored\n", FailpointEnv, v)
			return nil
		}
		prefix, nth = v[:i], n
	}
	var seen atomic.Int64
	return func(step string) error {
		if !strings.HasPrefix(step, prefix) || seen.Add(1) != int64(nth) {
			return nil
		}
		fmt.Fprintf(os.Stderr, "%s: killing the process at step %q\n", FailpointEnv, step)
		p, err := os.FindProcess(os.Getpid())
		if err == nil {
			err = p.Kill()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: kill failed: %v; exiting\n", FailpointEnv, err)
			os.Exit(137)
		}
		// SIGKILL is delivered asynchronously: go no further meanwhile.
		for {
			time.Sleep(time.Hour)
		}
	}
}
