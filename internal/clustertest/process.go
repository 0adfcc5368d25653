package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// defaultReadyTimeout bounds the wait for a process to become ready. WAL
	// replay after a crash is included, so it is generous.
	defaultReadyTimeout = 90 * time.Second
	// stopTimeout bounds a graceful stop after SIGTERM.
	stopTimeout = 60 * time.Second
	// killTimeout bounds the wait for a process to die after SIGKILL.
	killTimeout = 15 * time.Second
	// logTailBytes is how much of a process log a failing test prints.
	logTailBytes = 16 << 10
)

// process is one child process that can be started, stopped and started
// again with the same arguments. Its methods are called from the test's
// goroutine only.
type process struct {
	name    string
	bin     string
	args    []string
	logPath string
	// readyURL answers 200 once the process serves requests.
	readyURL string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	// waitErr is the result of cmd.Wait, readable once done is closed.
	waitErr error
	starts  int
}

// newProcess prepares a process and registers a cleanup that kills it if it
// is still running and prints its log tail if the test failed. The log file
// lives in a directory of the test's own, so it survives restarts.
func newProcess(t testing.TB, name, bin string, args []string, readyURL string) *process {
	t.Helper()
	p := &process{
		name:     name,
		bin:      bin,
		args:     args,
		logPath:  filepath.Join(t.TempDir(), name+".log"),
		readyURL: readyURL,
	}
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(killTimeout):
				t.Errorf("%s (pid %d) did not die after SIGKILL", p.name, p.cmd.Process.Pid)
			}
		}
		p.checkLog(t)
		if t.Failed() {
			p.logTail(t)
		}
	})
	return p
}

// logAlarms are log lines that fail the test whatever it asserted: a data
// race report (binaries built with -race) and a handler panic that net/http
// recovered from, which a client sees only as a dropped connection.
var logAlarms = []string{"WARNING: DATA RACE", "http: panic serving"}

// checkLog fails the test if the process log holds one of logAlarms.
func (p *process) checkLog(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	for _, alarm := range logAlarms {
		if i := bytes.Index(b, []byte(alarm)); i >= 0 {
			end := min(len(b), i+4000)
			t.Errorf("%s log has %q:\n%s", p.name, alarm, b[i:end])
		}
	}
}

// start runs the process and waits until readyURL answers 200, failing the
// test (with the log tail) if the process exits first or timeout passes.
func (p *process) start(t testing.TB, timeout time.Duration) {
	t.Helper()
	require.False(t, p.running(), "%s is already running", p.name)
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	p.starts++
	fmt.Fprintf(f, "=== clustertest: start #%d at %s: %s %s\n", p.starts,
		time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	dieWithParent(cmd)
	cmd.Stdout = f
	cmd.Stderr = f
	err = cmd.Start()
	// The child holds its own copy of the descriptor.
	require.NoError(t, f.Close())
	require.NoError(t, err, "start %s", p.name)
	p.cmd = cmd
	p.done = make(chan struct{})
	done := p.done
	go func() {
		p.waitErr = cmd.Wait()
		close(done)
	}()
	p.waitReady(t, timeout)
}

func (p *process) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-p.done:
			p.logTail(t)
			t.Fatalf("%s exited before it was ready: %v", p.name, p.waitErr)
		default:
		}
		resp, err := client.Get(p.readyURL)
		if err == nil {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(buf.String()))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			p.logTail(t)
			t.Fatalf("%s not ready after %v at %s: last answer: %s", p.name, timeout, p.readyURL, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill(t testing.TB) {
	t.Helper()
	require.True(t, p.running(), "kill: %s is not running", p.name)
	require.NoError(t, p.cmd.Process.Kill())
	select {
	case <-p.done:
	case <-time.After(killTimeout):
		t.Fatalf("%s (pid %d) did not die within %v of SIGKILL", p.name, p.cmd.Process.Pid, killTimeout)
	}
}

// stop sends SIGTERM, waits for the exit and requires exit status 0. It
// returns how long the shutdown took.
func (p *process) stop(t testing.TB) time.Duration {
	t.Helper()
	require.True(t, p.running(), "stop: %s is not running", p.name)
	begin := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not exit within %v of SIGTERM; killed it", p.name, stopTimeout)
	}
	took := time.Since(begin)
	if p.waitErr != nil {
		var exitErr *exec.ExitError
		if errors.As(p.waitErr, &exitErr) {
			t.Fatalf("%s exited after SIGTERM with %v (want exit status 0)", p.name, exitErr.ProcessState)
		}
		t.Fatalf("wait for %s: %v", p.name, p.waitErr)
	}
	return took
}

// pid returns the process ID of the current run, or 0.
func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// logTail prints the last logTailBytes of the process log.
func (p *process) logTail(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Logf("%s log %s: %v", p.name, p.logPath, err)
		return
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	t.Logf("---- tail of %s log (%s) ----\n%s---- end of %s log ----", p.name, p.logPath, b, p.name)
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. The ports come from below the kernel's ephemeral range (see
// pickPort), so that no outgoing connection and no listener on port 0 of any
// process on the machine can take one between this call and the child's bind,
// or while a killed process is restarted on the same port. A port is handed
// out at most once per test binary (see claimPort), so two processes of one
// test never get the same port even when one of them has not bound it yet.
// Another test binary picking the same port in the same instant is a race
// accepted for tests.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		require.Less(t, attempts, 100*n, "no unclaimed free TCP port found")
		port := pickPort()
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		if claimPort(port) {
			ports = append(ports, port)
		}
	}
	return ports
}

// pickPort returns a random port from the 16,000 below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default).
// The kernel hands out ephemeral ports to every connect and every listen on
// port 0; on a machine where several test binaries open thousands of
// connections, a port taken from that range (as listening on port 0 does)
// was seen taken by an unrelated connection before a restarted ingester
// could bind it again. Ports below the range are only ever taken by an
// explicit bind.
func pickPort() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2048 {
				low = v
			}
		}
	}
	span := min(16000, low-1024)
	return low - 1 - rand.IntN(span)
}

var (
	claimedMu sync.Mutex
	claimed   = map[int]bool{} // ports handed out by this test binary; guarded by claimedMu
)

// claimPort records port as handed out and reports whether it was not
// already: a port picked for one process but not yet bound looks free to the
// kernel, and would otherwise be picked again for the next process.
func claimPort(port int) bool {
	claimedMu.Lock()
	defer claimedMu.Unlock()
	if claimed[port] {
		return false
	}
	claimed[port] = true
	return true
}
