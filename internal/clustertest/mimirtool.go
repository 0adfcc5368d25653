package clustertest

import (
	"fmt"
	"os"
	"testing"
)

// MimirtoolBinary returns the path of mimirtool (MIMIRTOOL_BIN, which
// scripts/install-tools.sh mimirtool builds from tools/mimirtool), the
// rules client of the ruler's end-to-end test. Without it the test skips
// loudly, and fails under CI=true.
func MimirtoolBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("MIMIRTOOL_BIN")
	msg := ""
	if bin == "" {
		msg = "MIMIRTOOL_BIN not set"
	} else if _, err := os.Stat(bin); err != nil {
		msg = fmt.Sprintf("MIMIRTOOL_BIN absent (%v)", err)
	}
	if msg == "" {
		return bin
	}
	msg = "!!!!!!!! " + msg + ": run .ci/run or scripts/install-tools.sh mimirtool !!!!!!!! (this test needs mimirtool)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}
