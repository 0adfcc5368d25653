package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestDurabilityWALSizeTruncationAndCleanStop runs the real binary with the
// truncation timer out of reach (1h) and small WAL segments: the WAL is
// truncated by its size alone; a kill -9 after that loses nothing; a clean
// stop leaves one checkpoint and one empty segment, and the next start has
// every sample exactly.
func TestDurabilityWALSizeTruncationAndCleanStop(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=200ms",
		"-ingester.wal-truncate-period=1h",
		"-ingester.wal-segment-size=65536",
	}})

	const series, first, total = 200, 400, 500
	d := newDataset("dur_sizetrunc", series, total, time.Second)
	d.push(t, a, durTenant, 0, first, 20)
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_wal_truncations_total", nil); n <= 0 {
			return fmt.Sprintf("argus_ingester_wal_truncations_total = %v, want > 0 before the 1h timer", n)
		}
		return ""
	}, 60*time.Second)
	d.push(t, a, durTenant, first, total, 20)

	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, durTenant, total)), "after kill -9 and restart")

	a.Stop(t)
	walDir := filepath.Join(a.StorageDir(), "wal")
	_, cp, err := wlog.LastCheckpoint(walDir)
	require.NoError(t, err, "a clean stop leaves a checkpoint")
	firstSeg, lastSeg, err := wlog.Segments(walDir)
	require.NoError(t, err)
	require.Equal(t, []int{cp + 1, cp + 1}, []int{firstSeg, lastSeg}, "only the segment after the checkpoint")
	fi, err := os.Stat(wlog.SegmentName(walDir, lastSeg))
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "the segment after the checkpoint is empty")

	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, durTenant, total)), "after a clean stop and restart")
}
