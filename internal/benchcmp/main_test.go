package benchcmp

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestMain checks for leaked goroutines after the tests and benchmarks, and
// removes the argus binary that BenchmarkDiskBytes may have built.
func TestMain(m *testing.M) {
	code := clustertest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
