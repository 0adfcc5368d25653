package clustere2e

import (
	"os"
	"testing"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test with real processes: skipped in -short mode")
	}
}

func TestIsLeaveSequence(t *testing.T) {
	f := func(want bool, states ...string) {
		t.Helper()
		if got := isLeaveSequence(states); got != want {
			t.Errorf("isLeaveSequence(%v) = %v, want %v", states, got, want)
		}
	}
	f(true, "ACTIVE", "LEAVING", "LEFT")
	f(true, "ACTIVE", "LEFT", stateAbsent)
	f(true, "LEFT")
	f(false, "ACTIVE")
	f(false, "ACTIVE", "LEAVING")
	f(false, "ACTIVE", "LEFT", "ACTIVE")
	f(false, "ACTIVE", "UNHEALTHY", "LEFT")
}
