package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/storage"
)

// TestKill9AtStorageSteps kills the real argus binary (SIGKILL, from
// inside: storage.FailpointEnv) at named steps of flushing, sealing,
// merging, retention and clean_tombstones, then restarts it on the same directory
// and checks that every acknowledged sample is there exactly once, that
// deleted samples and samples past the retention stay gone, and that
// `argus tsdb verify` finds the store clean once the restarted process has
// finished the interrupted work and stopped.
//
// Two tenants: "keep" (no retention, with deletions) and "short", whose
// retention_period puts its cut-off 25 h into its history. Two starting
// points, both made by the real binary once and copied for each crash:
//
//	l0:       the history pushed with -ingester.flush-period=1h, then a clean stop: level-0 windows,
//	          tombstones over them; a run crashes at a step of the retention pass at start (dropping
//	          "short" from level-0 files, removing a file only "short" had), of sealing and merging, or
//	          of the flush of an hour more of "keep" pushed to it (into a new level-0 file)
//	sealed:   l0 compacted by a run with -ingester.flush-period=1s, more deletions over the sealed parts,
//	          a clean stop; a run crashes rewriting a sealed part by retention, or in clean_tombstones
//
// The samples were acknowledged before the crash (the hour pushed to a run
// that crashes at a flush is expected whole if it was acknowledged, whole
// or not at all if the answer was lost): what is tested is that no crash
// in the DB's writes and maintenance loses, duplicates or resurrects any.
func TestKill9AtStorageSteps(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	keep := history{name: "kp", series: 20, step: 60_000}
	short := history{name: "sh", series: 10, step: 60_000}
	start, end := pastHistoryRange()
	at := func(hours float64) int64 { return start + int64(hours*float64(hourMs)) }
	l0Dels := []deletion{
		{[]string{`{__name__="kp_gauge", group="g1"}`}, at(5), at(7.5)},
		{[]string{`kp_counter{series=~"s0[0-3]"}`}, at(16), at(28)},
		{[]string{`{__name__=~"kp_.+", group!~"g[01]"}`}, at(33), at(33.25)},
	}
	sealedDels := []deletion{
		{[]string{`{series="s05"}`}, at(10), at(12)},
		{[]string{`kp_counter{group!="g0"}`}, at(30) + 30_000, at(31)},
	}
	shortDels := []deletion{{[]string{`{series="s02"}`}, at(40), at(41)}}

	// The two starting points.
	base := []string{"-api.enable-admin-api=true", "-distributor.ingestion-rate-limit=0", "-log.level=warn"}
	l0Dir := t.TempDir()
	a := clustertest.StartArgus(t, clustertest.Options{StorageDir: l0Dir, Flags: slices.Concat(base, []string{"-ingester.flush-period=1h"})})
	keep.push(t, start, end, argusTarget(a, "keep"))
	short.push(t, start-4*hourMs, end, argusTarget(a, "short"))
	deleteSeries(t, a, "keep", l0Dels)
	deleteSeries(t, a, "short", shortDels)
	a.Stop(t)
	sealedDir := t.TempDir()
	copyDir(t, l0Dir, sealedDir)
	a = clustertest.StartArgus(t, clustertest.Options{StorageDir: sealedDir, Flags: slices.Concat(base, []string{"-ingester.flush-period=1s"})})
	waitCompacted(t, sealedDir, start-4*hourMs, end)
	deleteSeries(t, a, "keep", sealedDels)
	a.Stop(t)

	// The runs that crash, and those after, apply the retention of short.
	retention := time.Duration(time.Now().UnixMilli()-at(25)) * time.Millisecond
	retention = retention.Truncate(time.Second)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, overrides, fmt.Sprintf("overrides:\n  short:\n    retention_period: %s\n", retention))
	flags := slices.Concat(base, []string{"-runtime-config.file=" + overrides, "-ingester.flush-period=1s", "-ingester.wal-truncate-period=1s"})

	const (
		atStart = iota // the step comes at start or in the background
		clean          // the step is reached by clean_tombstones
		push           // by the flush of an hour more of "keep"
	)
	cases := []struct {
		from, failpoint string
		trigger         int
	}{
		{"l0", "retention:cutoffs", atStart},
		{"l0", "retention:dropped", atStart},
		{"l0", "retention:removed", atStart},
		{"l0", "seal:part-tenant@2", atStart},
		{"l0", "seal:written", atStart},
		{"l0", "seal:manifest", atStart},
		{"l0", "seal:removed", atStart},
		{"l0", "compact:written", atStart},
		{"l0", "compact:manifest", atStart},
		{"l0", "compact:removed@2", atStart},
		{"l0", "compact:forgotten", atStart},
		{"l0", "append:file", push},
		{"l0", "append:committed", push},
		{"sealed", "retention:written", atStart},
		{"sealed", "clean:part-tenant", clean},
		{"sealed", "clean:manifest", clean},
		{"sealed", "clean:removed", clean},
		{"sealed", "clean:dropped", clean},
	}
	for _, c := range cases {
		t.Run(c.from+"/"+c.failpoint, func(t *testing.T) {
			dir := t.TempDir()
			keepDels := l0Dels
			if c.from == "l0" {
				copyDir(t, l0Dir, dir)
			} else {
				copyDir(t, sealedDir, dir)
				keepDels = append(append([]deletion(nil), l0Dels...), sealedDels...)
			}
			r := startWithFailpoint(t, dir, c.failpoint, flags)
			// keepEnds are the ends of "keep" the crash may leave: a push
			// that got no answer is in the WAL whole or not at all.
			keepEnds := []int64{end}
			switch {
			case c.trigger == clean && r.waitReady(t):
				r.post(t, "keep", clustertest.PromAPI+"/admin/tsdb/clean_tombstones")
			case c.trigger == push && r.waitReady(t):
				acked := r.push(t, "keep", keep.batch(end, end+hourMs))
				if keepEnds = append(keepEnds, end+hourMs); acked {
					keepEnds = keepEnds[1:]
				}
				t.Logf("push of an hour more acknowledged: %v", acked)
			}
			t.Logf("killed: %s", r.waitKilled(t))

			a := clustertest.StartArgus(t, clustertest.Options{StorageDir: dir, Flags: flags})
			check := func(stage string) {
				keepEnds = []int64{requireExact(t, a, "keep", keep, start, keepEnds, keepDels, stage)}
				requireRetained(t, a, "short", short, retention, end, shortDels, stage)
			}
			check("after the restart")
			if c.trigger == clean {
				code, body := a.QueryPost(t, "keep", clustertest.PromAPI+"/admin/tsdb/clean_tombstones", nil)
				require.Equal(t, http.StatusNoContent, code, string(body))
			}
			waitCompacted(t, dir, start, end)
			check("once compacted again")
			a.Stop(t)
			tsdbVerify(t, dir)
		})
	}
}

// deleteSeries sends dels to a as tenant.
func deleteSeries(t testing.TB, a *clustertest.Process, tenant string, dels []deletion) {
	t.Helper()
	for _, d := range dels {
		code, body := a.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/delete_series", d.params())
		require.Equal(t, http.StatusNoContent, code, "tenant %s: %s", tenant, body)
	}
}

// waitCompacted waits until the store of dir is compacted (compactedUpTo)
// for a history in [from, end) that ends 1h30 into a 2 h window.
func waitCompacted(t testing.TB, dir string, from, end int64) {
	t.Helper()
	clustertest.Eventually(t, func() string {
		return compactedUpTo(partitionFiles(t, dir), from, end-3*hourMs/2)
	}, 60*time.Second)
}

// requireExact requires a to hold exactly what is left of h in [start,
// end) after dels, for one of ends, and returns that end.
func requireExact(t testing.TB, a *clustertest.Process, tenant string, h history, start int64, ends []int64, dels []deletion, stage string) int64 {
	t.Helper()
	got := h.stored(t, a, tenant, start-dayMs, slices.Max(ends))
	var diffs []string
	for _, end := range ends {
		d := clustertest.DiffSamples(h.want(t, start, end-1, dels), got)
		if d == "" {
			return end
		}
		diffs = append(diffs, fmt.Sprintf("up to %d: %s", end, d))
	}
	t.Fatalf("tenant %s %s:\n%s", tenant, stage, strings.Join(diffs, "\n"))
	return 0
}

// requireRetained requires a to hold exactly what is left of h after dels
// from the retention cut-off (now - retention, moving on with the wall
// clock) to end, and nothing older.
func requireRetained(t testing.TB, a *clustertest.Process, tenant string, h history, retention time.Duration, end int64, dels []deletion, stage string) {
	t.Helper()
	// The cut-off is now-retention, as of the last retention pass (every
	// second) for persisted data: at least this.
	before := time.Now().Add(-retention - 2*time.Minute).UnixMilli()
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{
		"query": {fmt.Sprintf(`{__name__=~"%s_.+"}[5d]`, h.name)}, "time": {clustertest.FormatAPITime(before - 1)}})
	require.Empty(t, clustertest.MatrixData(t, code, body), "tenant %s %s: nothing before the cut-off", tenant, stage)
	after := time.Now().Add(time.Minute - retention).UnixMilli() // the cut-off is at most this while we read
	want := h.want(t, after+1, end-1, dels)
	require.Empty(t, clustertest.DiffSamples(want, h.stored(t, a, tenant, after+1, end)), "tenant %s %s: after the cut-off", tenant, stage)
}

// copyDir copies the data dir of a stopped argus.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
}

// crashRun is an argus process started with storage.FailpointEnv, which is
// expected to kill itself at that step. clustertest does not set a
// process's environment, and waits for /ready, which a run that crashes at
// start never answers: so it is started here, with clustertest's flags.
type crashRun struct {
	cmd     *exec.Cmd
	done    chan struct{}
	url     string
	logPath string
}

func startWithFailpoint(t *testing.T, storageDir, failpoint string, flags []string) *crashRun {
	t.Helper()
	ports := clustertest.FreePorts(t, 2)
	args := append([]string{
		"-target=all",
		"-storage.path=" + storageDir,
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(ports[0]),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(ports[1]),
	}, flags...)
	r := &crashRun{done: make(chan struct{}), url: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		logPath: filepath.Join(t.TempDir(), "argus-failpoint.log")}
	f, err := os.Create(r.logPath)
	require.NoError(t, err)
	r.cmd = exec.Command(clustertest.ArgusBinary(t), args...)
	r.cmd.Env = append(os.Environ(), storage.FailpointEnv+"="+failpoint)
	r.cmd.Stdout, r.cmd.Stderr = f, f
	err = r.cmd.Start()
	require.NoError(t, f.Close())
	require.NoError(t, err)
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// waitReady waits until the run answers /ready, and reports false if it
// died first.
func (r *crashRun) waitReady(t testing.TB) bool {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return false
		default:
		}
		if resp, err := client.Get(r.url + "/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("argus with %s is neither ready nor dead after 90s:\n%s", storage.FailpointEnv, r.log(t))
	return false
}

// post sends a POST as tenant and ignores the outcome: the process may die
// while it serves it.
func (r *crashRun) post(t testing.TB, tenant, path string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, nil)
	require.NoError(t, err)
	req.Header.Set(clustertest.TenantHeader, tenant)
	if resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req); err == nil {
		_ = resp.Body.Close()
	}
}

// push sends series as tenant and reports whether the push was
// acknowledged; the process may die while it serves it.
func (r *crashRun) push(t testing.TB, tenant string, series []clustertest.TimeSeries) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/api/v1/push", bytes.NewReader(clustertest.EncodeWriteRequest(t, series)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set(clustertest.TenantHeader, tenant)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

// waitKilled waits until the run has killed itself at its failpoint and
// returns the step it named.
func (r *crashRun) waitKilled(t testing.TB) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("argus with %s did not reach it in 90s:\n%s", storage.FailpointEnv, r.log(t))
	}
	ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "argus exited with %v, not SIGKILL:\n%s", r.cmd.ProcessState, r.log(t))
	log := r.log(t)
	_, line, found := strings.Cut(log, storage.FailpointEnv+": killing the process at step ")
	require.True(t, found, "argus was killed, but not at its failpoint:\n%s", log)
	line, _, _ = strings.Cut(line, "\n")
	return line
}

func (r *crashRun) log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(r.logPath)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	return clustertest.Truncate(string(b), 8000)
}

// runArgusCommand runs the argus binary with args (a subcommand such as
// `tsdb verify`) and returns its combined output.
func runArgusCommand(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(clustertest.ArgusBinary(t), args...).CombinedOutput()
	return string(out), err
}
