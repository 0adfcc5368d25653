package e2e

import (
	"os/exec"
	"testing"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// runArgusCommand runs the argus binary with args (a subcommand such as
// `tsdb verify`) and returns its combined output.
func runArgusCommand(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(clustertest.ArgusBinary(t), args...).CombinedOutput()
	return string(out), err
}
