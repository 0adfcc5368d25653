package clustertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Alertmanager is a running real Alertmanager (single node, no cluster).
type Alertmanager struct {
	proc   *process
	port   int
	client *httpClient
}

// AlertmanagerBinary returns ALERTMANAGER_BIN. When it is unset or absent
// the test is skipped loudly, or fails under CI=true so that CI never skips.
func AlertmanagerBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ALERTMANAGER_BIN")
	msg := ""
	if bin == "" {
		msg = "ALERTMANAGER_BIN not set"
	} else if _, err := os.Stat(bin); err != nil {
		msg = fmt.Sprintf("ALERTMANAGER_BIN absent (%v)", err)
	}
	if msg == "" {
		return bin
	}
	msg = "!!!!!!!! " + msg + ": run .ci/run or scripts/install-tools.sh alertmanager !!!!!!!! (this test needs the real Alertmanager)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}

// StartAlertmanager starts the real Alertmanager on a free 127.0.0.1 port
// with one receiver that notifies nobody (the test reads its API), and
// waits for /-/ready. It is killed at the end of the test.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin := AlertmanagerBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n"), 0o644))
	am := &Alertmanager{port: FreePorts(t, 1)[0], client: newHTTPClient()}
	args := []string{
		"--config.file=" + cfg,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(am.port),
		"--cluster.listen-address=", // a single node
		"--log.level=info",
	}
	am.proc = newProcess(t, "alertmanager", bin, args, am.URL()+"/-/ready")
	am.proc.start(t, 0)
	return am
}

// URL is the base URL, e.g. http://127.0.0.1:9093.
func (a *Alertmanager) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", a.port) }

// AMAlert is an alert as Alertmanager's /api/v2/alerts lists it.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// Alerts returns the alerts Alertmanager holds that are not resolved
// (GET /api/v2/alerts with its default filters).
func (a *Alertmanager) Alerts(t testing.TB) []AMAlert {
	t.Helper()
	code, body := a.client.get(t, a.URL()+"/api/v2/alerts", "", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var out []AMAlert
	require.NoError(t, json.Unmarshal(body, &out), string(body))
	return out
}

// AmtoolBinary returns the real amtool beside ALERTMANAGER_BIN (the
// install script builds both). When it is absent the test is skipped
// loudly, or fails under CI=true.
func AmtoolBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(AlertmanagerBinary(t)), "amtool")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	msg := "!!!!!!!! amtool absent beside ALERTMANAGER_BIN (" + bin + "): run .ci/run or scripts/install-tools.sh alertmanager !!!!!!!!"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip)")
	}
	t.Skip(msg)
	return ""
}

// Amtool runs the real `amtool alert query` against this Alertmanager with
// matchers (amtool's syntax) and output format ("simple", "extended",
// "json"), and returns its standard output.
func (a *Alertmanager) Amtool(t testing.TB, output string, matchers ...string) string {
	t.Helper()
	args := append([]string{"alert", "query", "--alertmanager.url=" + a.URL(), "--output=" + output}, matchers...)
	out, err := exec.Command(AmtoolBinary(t), args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("amtool %v: %v: %s", args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return string(out)
}

// Kill stops Alertmanager with SIGKILL.
func (a *Alertmanager) Kill(t testing.TB) { a.proc.kill(t) }
