package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// Durability: a push acknowledged with 204 is in the write-ahead log, so a
// crash (SIGKILL: no flush, no close) loses none of it, and WAL replay on
// restart neither loses nor duplicates a sample, whatever part of the data
// had already been persisted to storage or truncated from the WAL.
//
//	push (204 each) ──▶ argus ──kill -9──▶ restart (same dir, same ports) ──▶ raw query == everything pushed

const durTenant = "durability"

// TestDurabilityKill9 crashes argus with everything still in the head (the
// default flush period is long) and checks that WAL replay restores every
// acknowledged sample exactly.
func TestDurabilityKill9(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{})

	const series, samples = 200, 300
	d := newDataset("dur_kill9", series, samples, time.Second)
	d.push(t, a, durTenant, 0, samples, 10)
	// Read back before the crash, so that a read-path bug is told apart from
	// a durability bug.
	require.Empty(t, diffSamples(d.want(samples), d.query(t, a, durTenant, samples)), "before the crash")

	a.Kill(t)
	a.Restart(t)

	got := d.query(t, a, durTenant, samples)
	require.Empty(t, diffSamples(d.want(samples), got), "after kill -9 and restart")
	require.Equal(t, series*samples, totalSamples(got))
	require.InDelta(t, float64(series), a.Metric(t, "argus_ingester_memory_series", nil), 0,
		"every series is back in memory after WAL replay")
}

// TestDurabilityPartiallyPersisted crashes argus when every series has one
// finished chunk (cut at 120 samples) persisted to storage and later samples
// only in the WAL and the head: replay must restore the rest and must not
// append the persisted samples a second time.
func TestDurabilityPartiallyPersisted(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ingester.flush-period=200ms"}})

	const series, first, crash, total = 100, 150, 260, 280
	d := newDataset("dur_partial", series, total, time.Second)
	d.push(t, a, durTenant, 0, first, 10)
	// Each series has cut one 120-sample chunk: wait until all are persisted.
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_chunks_persisted_total", nil); n < series {
			return fmt.Sprintf("argus_ingester_chunks_persisted_total = %v, want >= %d (one finished chunk per series)", n, series)
		}
		return ""
	}, 30*time.Second)
	d.push(t, a, durTenant, first, crash, 10)
	require.Empty(t, diffSamples(d.want(crash), d.query(t, a, durTenant, crash)), "before the crash")

	a.Kill(t)
	a.Restart(t)
	require.Empty(t, diffSamples(d.want(crash), d.query(t, a, durTenant, crash)), "after kill -9 and restart")

	// The head must know where each series ends after replay: the next
	// samples append without an out-of-order rejection, and a second crash
	// keeps everything.
	d.push(t, a, durTenant, crash, total, 10)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, diffSamples(d.want(total), d.query(t, a, durTenant, total)), "after a second kill -9 and restart")
}

// TestDurabilityWALTruncated crashes argus after the WAL has been truncated
// (segments whose samples are all persisted are gone): replay must start
// from what is left and storage must hold the rest, exactly once.
func TestDurabilityWALTruncated(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.flush-period=200ms",
		"-ingester.wal-truncate-period=1s",
		// Two 32 KiB pages, so that the pushes below fill many segments.
		"-ingester.wal-segment-size=65536",
	}})

	const series, first, total = 200, 400, 500
	d := newDataset("dur_truncated", series, total, time.Second)
	d.push(t, a, durTenant, 0, first, 20)
	clustertest.Eventually(t, func() string {
		if n := a.Metric(t, "argus_ingester_wal_truncations_total", nil); n <= 0 {
			persisted := a.Metric(t, "argus_ingester_chunks_persisted_total", nil)
			return fmt.Sprintf("argus_ingester_wal_truncations_total = %v, want > 0 (chunks persisted: %v)", n, persisted)
		}
		return ""
	}, 60*time.Second)
	d.push(t, a, durTenant, first, total, 20)
	require.Empty(t, diffSamples(d.want(total), d.query(t, a, durTenant, total)), "before the crash")

	a.Kill(t)
	a.Restart(t)
	require.Empty(t, diffSamples(d.want(total), d.query(t, a, durTenant, total)), "after kill -9 and restart")
}
