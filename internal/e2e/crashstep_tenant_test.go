package e2e

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/storage"
)

// TestKill9AtTenantDeletionAndWALSteps kills the real argus binary
// (SIGKILL, from inside: storage.FailpointEnv) at each step of the two
// kinds of write TestKill9AtStorageSteps leaves out:
//
//   - a whole tenant's deletion, `argus tsdb delete-tenant`: the rewrite of
//     the WAL without the tenant ("wal-delete:..."), then the store's
//     deletion ("delete:...": recorded, level-0 buckets dropped, sealed
//     parts rewritten, manifest, sources removed, record cleared);
//   - the WAL's checkpoint and truncation ("wal:..."), here the one a clean
//     stop runs after an hour more of samples was acknowledged;
//   - and the early seal of the newest window ("earlyseal:..."), which the
//     first compaction after a start runs on the level-0 file the clean
//     stop left.
//
// The starting point is made once by the real binary: two tenants pushed
// through days of history, compacted, a clean stop (the WAL then holds the
// open chunks' samples of both). After a crash at a deletion step the
// store either has recorded the deletion, and the next start of argus
// finishes it, or the command is run again; either way "gone" then holds
// nothing, "keep" every sample once, and `argus tsdb verify` is clean.
// After a crash in a truncation every acknowledged sample is there once.
func TestKill9AtTenantDeletionAndWALSteps(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	keep := history{name: "kp", series: 20, step: 60_000}
	gone := history{name: "gn", series: 10, step: 60_000}
	start, end := pastHistoryRange()
	base := []string{"-distributor.ingestion-rate-limit=0", "-log.level=warn", "-ingester.flush-period=1s"}

	stopped := t.TempDir()
	a := clustertest.StartArgus(t, clustertest.Options{StorageDir: stopped, Flags: base})
	keep.push(t, start, end, argusTarget(a, "keep"))
	gone.push(t, start, end, argusTarget(a, "gone"))
	waitCompacted(t, stopped, start, end)
	// An hour more, flushed as level 0 by the clean stop: deletion drops
	// the tenant's level-0 buckets too.
	keep.push(t, end, end+hourMs, argusTarget(a, "keep"))
	gone.push(t, end, end+hourMs, argusTarget(a, "gone"))
	end += hourMs
	a.Stop(t)
	out, err := runArgusCommand(t, "tsdb", "list", "-storage.path="+stopped)
	require.NoError(t, err, out)
	t.Logf("the starting point:\n%s", out)

	const (
		deleteTenant  = iota // the step is reached by argus tsdb delete-tenant
		stopAfterPush        // by the WAL truncation of a clean stop, after a push
		atStart              // by the first compaction: the early seal of the newest level-0 window
	)
	cases := []struct {
		failpoint string
		trigger   int
	}{
		{"wal-delete:checkpointed", deleteTenant},
		{"wal-delete:segments_deleted", deleteTenant},
		{"wal-delete:old_checkpoints_deleted", deleteTenant},
		{"delete:recorded", deleteTenant},
		{"delete:dropped", deleteTenant},
		{"delete:part-tenant", deleteTenant},
		{"delete:written", deleteTenant},
		{"delete:manifest", deleteTenant},
		{"delete:removed", deleteTenant},
		{"delete:forgotten", deleteTenant},
		{"delete:cleared", deleteTenant},
		{"wal:flushed", stopAfterPush},
		{"wal:series_removed", stopAfterPush},
		{"wal:segment_cut", stopAfterPush},
		{"wal:checkpointed", stopAfterPush},
		{"wal:segments_deleted", stopAfterPush},
		{"wal:old_checkpoints_deleted", stopAfterPush},
		{"earlyseal:part-tenant", atStart},
		{"earlyseal:written", atStart},
		{"earlyseal:manifest", atStart},
		{"earlyseal:removed", atStart},
		{"earlyseal:forgotten", atStart},
	}
	for _, c := range cases {
		t.Run(c.failpoint, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, stopped, dir)
			keepEnd, goneEnd := end, end
			switch c.trigger {
			case deleteTenant:
				t.Logf("killed: %s", deleteTenantKilled(t, dir, "gone", c.failpoint))
				if !strings.HasPrefix(c.failpoint, "delete:") {
					// Killed before the store recorded the deletion: the
					// command is run again, as its help says.
					out, err := runArgusCommand(t, "tsdb", "delete-tenant", "-storage.path="+dir, "-tenant=gone")
					require.NoError(t, err, out)
				}
				goneEnd = start // nothing left
			case stopAfterPush:
				r := startWithFailpoint(t, dir, c.failpoint, base)
				require.True(t, r.waitReady(t), "argus with %s died before it was ready:\n%s", c.failpoint, r.log(t))
				require.True(t, r.push(t, "keep", keep.batch(end, end+hourMs)), "push of an hour more")
				keepEnd = end + hourMs
				require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
				t.Logf("killed: %s", r.waitKilled(t))
			case atStart:
				r := startWithFailpoint(t, dir, c.failpoint, base)
				t.Logf("killed: %s", r.waitKilled(t))
			}

			a := clustertest.StartArgus(t, clustertest.Options{StorageDir: dir, Flags: base})
			check := func(stage string) {
				requireExact(t, a, "keep", keep, start, []int64{keepEnd}, nil, stage)
				if goneEnd == start {
					require.Empty(t, gone.stored(t, a, "gone", start-dayMs, end+dayMs), "tenant gone %s", stage)
				} else {
					requireExact(t, a, "gone", gone, start, []int64{goneEnd}, nil, stage)
				}
			}
			check("after the restart")
			waitCompacted(t, dir, start, keepEnd)
			check("once compacted again")
			a.Stop(t)
			tsdbVerify(t, dir)
			if goneEnd == start {
				out, err := runArgusCommand(t, "tsdb", "list", "-storage.path="+dir)
				require.NoError(t, err, out)
				require.NotContains(t, out, "gone", "the store still lists the deleted tenant")
			}
		})
	}
}

// deleteTenantKilled runs argus tsdb delete-tenant on the data dir with
// storage.FailpointEnv set to failpoint, requires it to die by SIGKILL at
// that step, and returns the step it named.
func deleteTenantKilled(t *testing.T, dir, tenant, failpoint string) string {
	t.Helper()
	cmd := exec.Command(clustertest.ArgusBinary(t), "tsdb", "delete-tenant", "-storage.path="+dir, "-tenant="+tenant)
	cmd.Env = append(os.Environ(), storage.FailpointEnv+"="+failpoint)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "argus tsdb delete-tenant did not reach %s:\n%s", failpoint, out)
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "exited with %v, not SIGKILL:\n%s", cmd.ProcessState, out)
	_, line, found := strings.Cut(string(out), storage.FailpointEnv+": killing the process at step ")
	require.True(t, found, "killed, but not at its failpoint:\n%s", out)
	line, _, _ = strings.Cut(line, "\n")
	require.True(t, strings.HasPrefix(line, `"`+failpoint), "killed at %s, not %s", line, failpoint)
	return line
}
