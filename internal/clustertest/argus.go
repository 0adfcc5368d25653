package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Options configures one argus process.
type Options struct {
	// StorageDir is passed as -storage.path. Empty means a new t.TempDir().
	StorageDir string
	// Flags are extra command-line flags, appended after the harness's own
	// so that they override them (the last occurrence of a flag wins).
	Flags []string
	// ReadyTimeout bounds each wait for /ready. Zero means 90s.
	ReadyTimeout time.Duration
}

// Process is a running (or stopped) argus process: -target=all from
// StartArgus, one role of a cluster from StartCluster. It keeps its ports and
// storage directory across Kill, Stop and Restart.
type Process struct {
	proc         *process
	opts         Options
	storageDir   string
	httpPort     int
	grpcPort     int
	client       *httpClient
	readyTimeout time.Duration
}

// StartArgus starts argus on free 127.0.0.1 ports with its own storage
// directory and waits until GET /ready answers 200. The process is killed at
// the end of the test if it is still running, and its log tail is printed if
// the test failed.
func StartArgus(t testing.TB, opts Options) *Process {
	t.Helper()
	p := newArgus(t, "argus", "all", opts)
	p.proc.start(t, p.readyTimeout)
	return p
}

// newArgus prepares (but does not start) an argus process with the given
// -target on free ports; name names its log file and its log tail.
func newArgus(t testing.TB, name, target string, opts Options) *Process {
	t.Helper()
	bin := argusBinary(t)
	dir := opts.StorageDir
	if dir == "" {
		dir = t.TempDir()
	}
	ports := FreePorts(t, 2)
	p := &Process{
		opts:         opts,
		storageDir:   dir,
		httpPort:     ports[0],
		grpcPort:     ports[1],
		client:       newArgusHTTPClient(),
		readyTimeout: opts.ReadyTimeout,
	}
	args := []string{
		"-target=" + target,
		"-storage.path=" + dir,
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(p.httpPort),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(p.grpcPort),
		"-log.level=info",
	}
	args = append(args, opts.Flags...)
	p.proc = newProcess(t, name, bin, args, p.URL()+"/ready")
	return p
}

// URL is the base HTTP URL, e.g. http://127.0.0.1:41234.
func (p *Process) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.httpPort) }

// GRPCAddr is the gRPC address (host:port), where a querier serves the
// public gRPC query API.
func (p *Process) GRPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.grpcPort) }

// PushURL is the remote-write endpoint.
func (p *Process) PushURL() string { return p.URL() + "/api/v1/push" }

// HostPort is the HTTP listen address, e.g. 127.0.0.1:41234, as a scrape target.
func (p *Process) HostPort() string { return fmt.Sprintf("127.0.0.1:%d", p.httpPort) }

// StorageDir is the -storage.path of the process.
func (p *Process) StorageDir() string { return p.storageDir }

// PID is the process ID of the current run, or 0 before the first start.
func (p *Process) PID() int { return p.proc.pid() }

// Running reports whether the current run has not exited yet.
func (p *Process) Running() bool { return p.proc.running() }

// Kill sends SIGKILL (a crash: no flush, no WAL sync on exit) and waits for
// the process to be gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.proc.kill(t)
}

// Stop sends SIGTERM, waits for the process to exit and requires exit status
// 0. It returns how long the graceful shutdown took.
func (p *Process) Stop(t testing.TB) time.Duration {
	t.Helper()
	return p.proc.stop(t)
}

// Restart starts the process again with the same flags, ports and storage
// directory, and waits for /ready. A process that is still running is first
// stopped gracefully (Stop); to simulate a crash call Kill before Restart.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if p.proc.running() {
		p.proc.stop(t)
	}
	p.proc.start(t, p.readyTimeout)
}

// LogTail prints the end of the process log to the test log.
func (p *Process) LogTail(t testing.TB) {
	t.Helper()
	p.proc.logTail(t)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildDir  string
	buildErr  error
)

// ArgusBinary returns the argus binary the harness runs: ARGUS_BIN, or one
// built once per test binary (removed by Main).
func ArgusBinary(t testing.TB) string {
	t.Helper()
	return argusBinary(t)
}

// argusBinary returns ARGUS_BIN, or builds ./cmd/argus once per test binary.
func argusBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("ARGUS_BIN"); bin != "" {
		_, err := os.Stat(bin)
		require.NoError(t, err, "ARGUS_BIN=%s", bin)
		return bin
	}
	buildOnce.Do(func() { builtBin, buildErr = buildArgus() })
	require.NoError(t, buildErr, "build argus (set ARGUS_BIN to skip building)")
	return builtBin
}

func buildArgus() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the argus module (go env GOMOD is %q)", gomod)
	}
	buildDir, err = os.MkdirTemp("", "argus-clustertest-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(buildDir, "argus")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/argus")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/argus: %w\n%s", err, out)
	}
	return bin, nil
}

// Main runs the tests of a package that uses the harness and then removes
// the argus binary it may have built. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}

// Log returns everything the argus process logged so far (every run).
func (p *Process) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.proc.logPath)
	require.NoError(t, err)
	return string(b)
}
