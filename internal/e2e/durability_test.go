package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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

// TestDurabilityKill9 crashes argus with everything only in the head and
// the WAL (nothing flushed) and checks that WAL replay restores every
// acknowledged sample exactly.
func TestDurabilityKill9(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ingester.flush-period=1h"}})

	const series, samples = 200, 300
	d := newDataset("dur_kill9", series, samples, time.Second)
	d.push(t, a, durTenant, 0, samples, 10)
	// Read back before the crash, so that a read-path bug is told apart from
	// a durability bug.
	require.Empty(t, clustertest.DiffSamples(d.want(samples), d.query(t, a, durTenant, samples)), "before the crash")
	require.Zero(t, a.Metric(t, "argus_ingester_chunks_persisted_total", nil), "nothing is persisted before the crash")

	a.Kill(t)
	a.Restart(t)

	got := d.query(t, a, durTenant, samples)
	require.Empty(t, clustertest.DiffSamples(d.want(samples), got), "after kill -9 and restart")
	require.Equal(t, series*samples, clustertest.TotalSamples(got))
	require.InDelta(t, float64(series), a.Metric(t, "argus_ingester_memory_series", nil), 0,
		"every series is back in memory after WAL replay")
	require.InDelta(t, float64(series*samples), a.Metric(t, "argus_ingester_wal_replay_samples_total", nil), 0,
		"every sample came back through WAL replay")
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
	require.Empty(t, clustertest.DiffSamples(d.want(crash), d.query(t, a, durTenant, crash)), "before the crash")

	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(crash), d.query(t, a, durTenant, crash)), "after kill -9 and restart")

	// The head must know where each series ends after replay: the next
	// samples append without an out-of-order rejection, and a second crash
	// keeps everything.
	d.push(t, a, durTenant, crash, total, 10)
	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, durTenant, total)), "after a second kill -9 and restart")
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
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, durTenant, total)), "before the crash")

	a.Kill(t)
	a.Restart(t)
	require.Empty(t, clustertest.DiffSamples(d.want(total), d.query(t, a, durTenant, total)), "after kill -9 and restart")
}

// TestDurabilityKill9UnderLoad crashes argus while writers are pushing and
// chunks are being persisted, so that the WAL may end in a torn record.
// Every series must come back as an exact prefix of what was sent that
// holds at least every acknowledged sample (an unacknowledged push may or
// may not have landed, but never partly within a series or out of place),
// and the head must accept the next samples of each series after replay.
func TestDurabilityKill9UnderLoad(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	// The writers push as fast as they can: no ingestion rate limit.
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-ingester.flush-period=200ms", "-distributor.ingestion-rate-limit=0"}})

	const writers, perWriter, maxSamples, perRequest = 4, 50, 6000, 10
	// 100ms apart so that maxSamples fit in the past.
	d := newDataset("dur_load", writers*perWriter, maxSamples, 100*time.Millisecond)
	var acked [writers]atomic.Int64 // samples [0, acked[w]) of writer w's series are acknowledged
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	writerErrs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < maxSamples; i += perRequest {
				batch := d.batch(i, i+perRequest)[w*perWriter : (w+1)*perWriter]
				code, body, err := a.TryPush(ctx, durTenant, batch)
				if err != nil {
					return // argus was killed
				}
				if code != http.StatusNoContent {
					writerErrs <- fmt.Errorf("writer %d: push of samples [%d, %d) answered %d: %s", w, i, i+perRequest, code, body)
					return
				}
				acked[w].Store(int64(i + perRequest))
			}
		})
	}
	clustertest.Eventually(t, func() string {
		for w := range writers {
			if n := acked[w].Load(); n < 300 {
				return fmt.Sprintf("writer %d has %d samples per series acknowledged, want 300 before the crash", w, n)
			}
		}
		// Crash with part of the data persisted, part only in the WAL.
		if n := a.Metric(t, "argus_ingester_chunks_persisted_total", nil); n == 0 {
			return "no chunk persisted yet"
		}
		return ""
	}, 60*time.Second)
	persisted := a.Metric(t, "argus_ingester_chunks_persisted_total", nil)
	a.Kill(t)
	cancel()
	wg.Wait()
	close(writerErrs)
	for err := range writerErrs {
		t.Error(err)
	}
	ackedAt := make([]int, writers)
	for w := range writers {
		ackedAt[w] = int(acked[w].Load())
	}
	t.Logf("killed with %v samples per series acknowledged (per writer), %v chunks persisted just before",
		ackedAt, persisted)

	a.Restart(t)
	all := d.want(maxSamples)
	got := d.query(t, a, durTenant, maxSamples)
	restored := checkPrefixes(t, d, all, got, func(s int) int { return ackedAt[s/perWriter] })

	// Resume every series where it stopped: nothing is out of order.
	var next []clustertest.TimeSeries
	for s := range d.series {
		ts := clustertest.TimeSeries{Labels: d.labels(s)}
		for i := restored[s]; i < min(restored[s]+perRequest, maxSamples); i++ {
			ts.Samples = append(ts.Samples, clustertest.Sample{T: d.ts(i), V: d.value(s, i)})
		}
		next = append(next, ts)
		restored[s] = min(restored[s]+perRequest, maxSamples)
	}
	pushOK(t, a, durTenant, next)
	got = d.query(t, a, durTenant, maxSamples)
	var want []clustertest.Series
	for s, ser := range all {
		// all is sorted by labels, which here is series order.
		want = append(want, clustertest.Series{Metric: ser.Metric, Samples: ser.Samples[:restored[s]]})
	}
	require.Empty(t, clustertest.DiffSamples(want, got), "after resuming every series")
}

// checkPrefixes requires every series of got to be an exact prefix of the
// same series in all, at least minLen(s) long, and returns each length. all
// holds every series of d in series order.
func checkPrefixes(t testing.TB, d dataset, all, got []clustertest.Series, minLen func(s int) int) []int {
	t.Helper()
	gotBy := map[string][]clustertest.Sample{}
	for _, g := range got {
		gotBy[g.Metric["series"]] = g.Samples
	}
	lengths := make([]int, d.series)
	var problems []string
	for s, w := range all {
		g := gotBy[w.Metric["series"]]
		lengths[s] = len(g)
		switch {
		case len(g) < minLen(s):
			problems = append(problems, fmt.Sprintf("series %s: %d samples, but %d were acknowledged", w.Metric["series"], len(g), minLen(s)))
		case len(g) > len(w.Samples):
			problems = append(problems, fmt.Sprintf("series %s: %d samples, more than the %d ever sent", w.Metric["series"], len(g), len(w.Samples)))
		default:
			if d := clustertest.DiffSamples([]clustertest.Series{{Metric: w.Metric, Samples: w.Samples[:len(g)]}}, []clustertest.Series{{Metric: w.Metric, Samples: g}}); d != "" {
				problems = append(problems, fmt.Sprintf("series %s is not a prefix of what was sent: %s", w.Metric["series"], d))
			}
		}
	}
	require.Len(t, got, d.series, "series after restart")
	require.Empty(t, problems, "%d of %d series:\n%s", len(problems), d.series, clustertest.Truncate(strings.Join(problems, "\n"), 8000))
	return lengths
}
