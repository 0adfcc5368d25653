package clustertest

import (
	"fmt"
	"os"
	"testing"
)

// GrpcurlBinary returns the path of grpcurl (GRPCURL_BIN, which
// scripts/install-tools.sh grpcurl builds), the gRPC client of the query
// API's end-to-end test. Without it the test skips loudly, and fails under
// CI=true.
func GrpcurlBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("GRPCURL_BIN")
	msg := ""
	if bin == "" {
		msg = "GRPCURL_BIN not set"
	} else if _, err := os.Stat(bin); err != nil {
		msg = fmt.Sprintf("GRPCURL_BIN absent (%v)", err)
	}
	if msg == "" {
		return bin
	}
	msg = "!!!!!!!! " + msg + ": run .ci/run or scripts/install-tools.sh grpcurl !!!!!!!! (this test needs grpcurl)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}
