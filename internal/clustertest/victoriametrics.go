package clustertest

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// VictoriaMetricsBinary returns VICTORIAMETRICS_BIN, the single-node
// VictoriaMetrics server that the storage benchmarks compare with
// (scripts/bench.sh builds it from its Go module and sets it). When it is
// unset or absent the benchmark is skipped loudly, or fails under CI=true.
func VictoriaMetricsBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("VICTORIAMETRICS_BIN")
	msg := ""
	if bin == "" {
		msg = "VICTORIAMETRICS_BIN not set"
	} else if _, err := os.Stat(bin); err != nil {
		msg = fmt.Sprintf("VICTORIAMETRICS_BIN absent (%v)", err)
	}
	if msg == "" {
		return bin
	}
	msg = "!!!!!!!! " + msg + ": run scripts/bench.sh, which builds it !!!!!!!!"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}

// VictoriaMetrics is a running single-node VictoriaMetrics server.
type VictoriaMetrics struct {
	proc    *process
	port    int
	dataDir string
	client  *httpClient
}

// StartVictoriaMetrics starts VictoriaMetrics on a free 127.0.0.1 port with
// its data in a temporary directory, keeping everything (-retentionPeriod=100y),
// answering from fresh data (no response cache, no latency offset), with
// extra flags after those, and waits for /health. It is killed at the end
// of the test.
func StartVictoriaMetrics(t testing.TB, flags ...string) *VictoriaMetrics {
	t.Helper()
	bin := VictoriaMetricsBinary(t)
	v := &VictoriaMetrics{port: FreePorts(t, 1)[0], dataDir: t.TempDir(), client: newHTTPClient()}
	args := []string{
		"-storageDataPath=" + v.dataDir,
		"-httpListenAddr=" + fmt.Sprintf("127.0.0.1:%d", v.port),
		"-retentionPeriod=100y",
		"-search.disableCache",
		"-search.latencyOffset=0",
		"-loggerLevel=WARN",
	}
	v.proc = newProcess(t, "victoria-metrics", bin, append(args, flags...), v.URL()+"/health")
	v.proc.start(t, 0)
	return v
}

// URL is the base URL, e.g. http://127.0.0.1:8428.
func (v *VictoriaMetrics) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", v.port) }

// WriteURL is the remote-write endpoint.
func (v *VictoriaMetrics) WriteURL() string { return v.URL() + "/api/v1/write" }

// DataDir is the -storageDataPath.
func (v *VictoriaMetrics) DataDir() string { return v.dataDir }

// PID is the process ID.
func (v *VictoriaMetrics) PID() int { return v.proc.pid() }

// ForceFlush makes the samples received so far searchable and persisted
// (/internal/force_flush), for a measurement or a query right after a push.
func (v *VictoriaMetrics) ForceFlush(t testing.TB) {
	t.Helper()
	code, body := v.client.get(t, v.URL()+"/internal/force_flush", "", nil)
	require.Equal(t, http.StatusOK, code, "force_flush: %s", body)
}

// Query sends GET path?params (path from the root, e.g. "/api/v1/query").
func (v *VictoriaMetrics) Query(t testing.TB, path string, params url.Values) (status int, body []byte) {
	t.Helper()
	return v.client.get(t, v.URL()+path, "", params)
}

// Stop sends SIGTERM and requires exit status 0.
func (v *VictoriaMetrics) Stop(t testing.TB) {
	t.Helper()
	v.proc.stop(t)
}
