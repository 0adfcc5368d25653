package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestRetentionFastForwardAgainstPrometheus runs a tenant through 10 days
// of data in fast-forward through the real binary, with a retention of 2
// days, and holds the same data in the real Prometheus 3.16:
//
//	day d of the history ──remote write──▶ argus (tenant ff) and prometheus (keeps everything)
//	retention_period of ff = (wall clock − end of day d) + 2 d, rewritten in the runtime config before each day
//
// Argus's retention is measured from the wall clock, so the history lies in
// the past and the tenant's retention period shrinks as the simulated clock
// (the end of the newest day pushed) moves on: at every moment its cut-off
// is the simulated now minus 2 days, plus the few seconds of real time the
// test has taken. Compaction (every -ingester.flush-period) seals the 2 h
// windows and merges whole days; the retention pass (every
// -ingester.wal-truncate-period) deletes the partitions past the cut-off.
//
// After each day: no partition file ends before the cut-off, the windows the
// head can no longer write to are sealed and the past days merged. Then:
// the data dir's size reaches a plateau (asserted against the size with 2
// days kept), and at the end the raw samples and a set of queries inside
// the retention window answer exactly as Prometheus's, while queries before
// the cut-off return nothing from argus (and something from Prometheus).
func TestRetentionFastForwardAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const (
		tenant    = "ff"
		days      = 10
		retention = 2 * dayMs
	)
	h := history{name: "ff", series: 100, step: 60_000}
	// Days end 1h30 into a 2 h window: its chunks are open in the head, and
	// every older window can be sealed (the head accepts samples an hour
	// older than its newest, no older).
	simStart := (time.Now().UnixMilli()-days*dayMs-3*hourMs)/(2*hourMs)*(2*hourMs) + 3*hourMs/2
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	// setRetention makes the tenant's cut-off simNow-retention from now on
	// (and a little later as the wall clock moves), and waits until argus
	// applies it.
	var a *clustertest.Process
	setRetention := func(simNow int64) {
		period := time.Duration(time.Now().UnixMilli()-simNow+retention) * time.Millisecond
		period = period.Truncate(time.Second) // later cut-off, never earlier
		writeFile(t, overrides, fmt.Sprintf("overrides:\n  %s:\n    retention_period: %s\n", tenant, period))
		if a == nil {
			return
		}
		clustertest.Eventually(t, func() string {
			if got := getUserLimits(t, a, tenant).Limits["retention_period"]; got != period.String() {
				return fmt.Sprintf("retention_period %v, want %v", got, period)
			}
			return ""
		}, 20*time.Second)
	}
	setRetention(simStart + dayMs)
	a = clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-runtime-config.file=" + overrides, "-runtime-config.reload-period=1s",
		"-distributor.ingestion-rate-limit=0",
		"-ingester.flush-period=1s", "-ingester.wal-truncate-period=1s",
		"-log.level=warn",
	}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true,
		Flags: []string{"--web.enable-remote-write-receiver"}})

	var dbSizes, dirSizes []int64
	var table strings.Builder
	fmt.Fprintf(&table, "%4s %12s %12s %6s %6s %6s\n", "day", "db bytes", "dir bytes", "L0", "L1", "L2")
	for d := range days {
		simNow := simStart + int64(d+1)*dayMs
		setRetention(simNow)
		h.push(t, simNow-dayMs, simNow, argusTarget(a, tenant), prometheusTarget(p))
		cutoff := simNow - retention
		// The second WAL truncation from now started after the push: the
		// WAL holds only the open chunks' samples, as it would at any time
		// the day's data has been flushed.
		truncated := a.Metric(t, "argus_ingester_wal_truncations_total", map[string]string{"outcome": "success"}) + 2
		var files []partitionFile
		clustertest.Eventually(t, func() string {
			files = partitionFiles(t, a.StorageDir())
			if d := compactedUpTo(files, max(cutoff, simStart), simNow-3*hourMs/2); d != "" {
				return d
			}
			if n := a.Metric(t, "argus_ingester_wal_truncations_total", map[string]string{"outcome": "success"}); n < truncated {
				return fmt.Sprintf("%v WAL truncations, want %v", n, truncated)
			}
			return ""
		}, 60*time.Second)
		dbSizes = append(dbSizes, dirBytes(t, filepath.Join(a.StorageDir(), "db")))
		dirSizes = append(dirSizes, dirBytes(t, a.StorageDir()))
		l := levels(files)
		fmt.Fprintf(&table, "%4d %12d %12d %6d %6d %6d\n", d, dbSizes[d], dirSizes[d], l[0], l[1], l[2])
	}
	t.Logf("after each simulated day (retention 2 d):\n%s", table.String())

	// The plateau: from day 4 on (2 days kept, one more merging, one more in
	// the head's reach) the store holds 2-4 days whatever the days pushed.
	for d := 4; d < days; d++ {
		require.LessOrEqual(t, dbSizes[d], dbSizes[3]*3/2, "db bytes after day %d grew past the plateau (day 3: %d)", d, dbSizes[3])
		require.LessOrEqual(t, dirSizes[d], dirSizes[3]*3/2, "data dir bytes after day %d grew past the plateau (day 3: %d)", d, dirSizes[3])
	}
	l := levels(partitionFiles(t, a.StorageDir()))
	require.Positive(t, l[2], "whole past days are merged into level 2")

	end := simStart + days*dayMs // after the newest sample
	inside := end - retention + hourMs
	compareRetained(t, p, a, tenant, h, inside, end)
	requireNothingBefore(t, p, a, tenant, h, simStart, end-retention)

	// A restart keeps it so.
	a.Kill(t)
	a.Restart(t)
	compareRetained(t, p, a, tenant, h, inside, end)
	requireNothingBefore(t, p, a, tenant, h, simStart, end-retention)
}

// compactedUpTo returns what is left to do before the store is as the
// retention and compaction must leave it after a day: no partition ends
// before from (the cut-off), every 2 h window from there to sealed (the
// head writes no older window) is persisted and none of level 0, every
// day window ending before sealed is one level-2 part, and no day holds
// four sealed windows in level 1 (it would be merged so far).
func compactedUpTo(files []partitionFile, from, sealed int64) string {
	for _, f := range files {
		switch {
		case f.maxT < from:
			return fmt.Sprintf("%s ends before the cut-off %d", f.name, from)
		case f.level == 0 && f.maxT < sealed:
			return fmt.Sprintf("%s is not sealed yet", f.name)
		case f.level == 1 && f.minT-f.minT%dayMs+dayMs <= sealed:
			return fmt.Sprintf("%s is not merged into its day yet", f.name)
		}
	}
	// A day not ended yet is merged so far once four of its windows are
	// sealed (storage/DESIGN.md, level 2): until then the day holds level-1
	// parts, which take more bytes than the merged day.
	dayWindows := map[int64]map[int64]bool{}
	for _, f := range files {
		if f.level != 1 {
			continue
		}
		day := f.minT - f.minT%dayMs
		if dayWindows[day] == nil {
			dayWindows[day] = map[int64]bool{}
		}
		dayWindows[day][f.minT-f.minT%(2*hourMs)] = true
		if len(dayWindows[day]) >= 4 {
			return fmt.Sprintf("day %d has %d sealed windows in level 1, not merged so far yet", day, len(dayWindows[day]))
		}
	}
	for w := from - from%(2*hourMs); w+2*hourMs <= sealed; w += 2 * hourMs {
		if !slices.ContainsFunc(files, func(f partitionFile) bool { return f.minT <= w && f.maxT >= w+2*hourMs-1 }) {
			return fmt.Sprintf("window %d is not persisted yet", w)
		}
	}
	return ""
}

// compareRetained compares, in (from, end], the raw samples of the history
// (also against the model) and a set of queries, instant and ranged.
func compareRetained(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, tenant string, h history, from, end int64) {
	t.Helper()
	sel := fmt.Sprintf(`{__name__=~"%s_.+"}`, h.name)
	raw := url.Values{"query": {fmt.Sprintf("%s[%dms]", sel, end-from)}, "time": {clustertest.FormatAPITime(end)}}
	d, series, samples := clustertest.DiffRaw(t, p, a, tenant, raw)
	require.Empty(t, d, "raw samples in the retention window (-prometheus +argus)")
	require.Empty(t, clustertest.DiffSamples(h.want(t, from+1, end-1, nil), h.stored(t, a, tenant, from+1, end)), "argus against the model")
	t.Logf("raw samples in the retention window identical: %d series, %d samples", series, samples)

	queries := []string{
		`rate(` + h.name + `_counter[5m])`,
		`sum by (group) (` + h.name + `_gauge)`,
		`count_over_time(` + sel + `[1h])`,
		`max_over_time(` + h.name + `_gauge[30m])`,
		`timestamp(` + h.name + `_gauge)`,
	}
	for _, q := range queries {
		for _, at := range []int64{from + hourMs, end - 12*hourMs - 7_000, end} {
			params := url.Values{"query": {q}, "time": {clustertest.FormatAPITime(at)}}
			d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query", params, true)
			require.Empty(t, d, "%s at %d (-prometheus +argus)", q, at)
			require.Positive(t, n, "%s at %d: prometheus's answer is empty", q, at)
		}
		params := url.Values{"query": {q}, "start": {clustertest.FormatAPITime(from + hourMs)}, "end": {clustertest.FormatAPITime(end)}, "step": {"607"}}
		d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
		require.Empty(t, d, "%s over the retention window (-prometheus +argus)", q)
		require.Positive(t, n, "%s: prometheus's answer is empty", q)
	}
}

// requireNothingBefore requires argus to answer nothing before cutoff where
// Prometheus, which keeps everything, has the data.
func requireNothingBefore(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, tenant string, h history, start, cutoff int64) {
	t.Helper()
	sel := fmt.Sprintf(`{__name__=~"%s_.+"}`, h.name)
	at := cutoff - 1
	raw := url.Values{"query": {fmt.Sprintf("%s[%dms]", sel, at-start+hourMs)}, "time": {clustertest.FormatAPITime(at)}}
	code, body := p.Query(t, "/api/v1/query", raw)
	require.Positive(t, clustertest.TotalSamples(clustertest.MatrixData(t, code, body)), "prometheus keeps the old days")
	code, body = a.Query(t, tenant, clustertest.PromAPI+"/query", raw)
	require.Empty(t, clustertest.MatrixData(t, code, body), "argus: nothing before the cut-off")

	q := `count_over_time(` + sel + `[1h])`
	params := url.Values{"query": {q}, "start": {clustertest.FormatAPITime(start)}, "end": {clustertest.FormatAPITime(at)}, "step": {"3600"}}
	code, body = p.Query(t, "/api/v1/query_range", params)
	require.Positive(t, clustertest.ResultCount(apiData(t, code, body)), "prometheus: %s before the cut-off", q)
	code, body = a.Query(t, tenant, clustertest.PromAPI+"/query_range", params)
	require.Zero(t, clustertest.ResultCount(apiData(t, code, body)), "argus: %s before the cut-off", q)
}

// TestRetentionSizeFastForward runs a tenant through 8 days of data, day by
// day, in an argus whose store is bounded by -ingester.retention-size (no
// retention period): once the store is compacted after each day, the db
// directory is within the bound, and what is left is the newest partitions
// (every sample from the oldest file kept on, exactly, and nothing before
// it).
//
// The bound (512 KiB) holds about four sealed days of this tenant (about
// 115 KB a day in level 2), but a level-0 file of a 2 h window takes about
// 1 MB here (bbolt's growth steps on a small file), and a day pushed at once
// may leave level-0 files until the flushes catch up and the window is
// sealed: a pass that runs then deletes down to the newest partition. So
// the history kept swings between one window and four days (logged),
// within the bound; real-time ingest holds at most one level-0 file.
func TestRetentionSizeFastForward(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const (
		tenant = "sized"
		days   = 8
		bound  = 512 << 10
	)
	h := history{name: "sz", series: 100, step: 60_000}
	simStart := (time.Now().UnixMilli()-days*dayMs-3*hourMs)/(2*hourMs)*(2*hourMs) + 3*hourMs/2
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-ingester.retention-period=0", fmt.Sprintf("-ingester.retention-size=%d", bound),
		"-distributor.ingestion-rate-limit=0",
		"-ingester.flush-period=1s", "-ingester.wal-truncate-period=1s",
		"-log.level=warn",
	}})
	var table strings.Builder
	fmt.Fprintf(&table, "%4s %12s %6s %6s %6s  %s\n", "day", "db bytes", "L0", "L1", "L2", "oldest kept")
	oldest := simStart
	for d := range days {
		simNow := simStart + int64(d+1)*dayMs
		h.push(t, simNow-dayMs, simNow, argusTarget(a, tenant))
		var files []partitionFile
		var size int64
		clustertest.Eventually(t, func() string {
			files = partitionFiles(t, a.StorageDir())
			if len(files) == 0 {
				return "no partition yet"
			}
			from := slices.MinFunc(files, func(x, y partitionFile) int { return int(x.minT - y.minT) }).minT
			if d := compactedUpTo(files, from, simNow-3*hourMs/2); d != "" {
				return d
			}
			if size = dirBytes(t, filepath.Join(a.StorageDir(), "db")); size > bound {
				return fmt.Sprintf("db directory %d bytes, over the bound %d", size, bound)
			}
			oldest = from
			return ""
		}, 60*time.Second)
		l := levels(files)
		fmt.Fprintf(&table, "%4d %12d %6d %6d %6d  %s\n", d, size, l[0], l[1], l[2], time.UnixMilli(oldest).UTC().Format(time.RFC3339))
	}
	t.Logf("after each simulated day (retention size %d bytes):\n%s", bound, table.String())
	end := simStart + days*dayMs
	require.Greater(t, oldest, simStart+dayMs, "the oldest days are deleted")
	// A day part is named from midnight even when a pass removed its first
	// windows before the merge, so the oldest sample kept may come after
	// the oldest file's start: it must be the start of a 2 h window in
	// that file, and everything from it on must be there.
	stored := h.stored(t, a, tenant, simStart, end)
	first := end
	for _, s := range stored {
		if len(s.Samples) > 0 {
			first = min(first, s.Samples[0].T)
		}
	}
	require.GreaterOrEqual(t, first, oldest, "nothing before the oldest partition file")
	require.Zero(t, first%(2*hourMs), "the oldest sample kept starts a 2 h window: %d", first)
	require.Empty(t, clustertest.DiffSamples(h.want(t, first, end-1, nil), stored),
		"everything from the oldest window kept on, nothing before")
}
