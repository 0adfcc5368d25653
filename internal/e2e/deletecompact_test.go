package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestDeleteSeriesThroughCompaction pushes two days of history (in the
// past) to argus and to the real Prometheus 3.16, makes the same
// delete_series calls on both (each matcher kind, open and closed ranges,
// two tombstones on some series, two selectors in one call), and compares
// the raw samples (also against a model of the deletions) and a set of
// queries at each stage:
//
//	before compaction    argus holds it all in its head (-ingester.flush-period=1h: no flush, no compaction)
//	after compaction     argus restarted with -ingester.flush-period=1s: the 2 h windows sealed (level 1), the
//	                     past days merged (level 2), the tombstones applied by the rewrite; prometheus has compacted too
//	after clean_tombstones on both
//	after kill -9        of argus and a restart
//
// Prometheus 3.16 fails a query (422, "index out of range" in
// tombstones.Intervals.Add from blockBaseSeriesSet.Next, a panic its
// engine recovers) when a read from a block or the head trims a series'
// chunks at both ends and the series has a tombstone that starts after the
// read's start and ends at or after its end, even one wholly after it: the
// Add of the open-ended trim interval indexes past the list. So every read
// here ends either after the newest sample (range queries and raw samples
// end at the history's end: nothing to trim there) or after every
// deletion (instant queries).
func TestDeleteSeriesThroughCompaction(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const tenant = "del"
	h := history{name: "dm", series: 30, step: 60_000}
	start, end := pastHistoryRange()
	at := func(hours float64) int64 { return start + int64(hours*float64(hourMs)) }
	dels := []deletion{
		{[]string{`{__name__="dm_gauge", group="g1"}`}, at(5), at(7.5)},
		{[]string{`{__name__=~"dm_.*", series=~"s0[0-3]"}`}, at(16), at(28)},
		{[]string{`dm_counter{group!="g0"}`}, at(30) + 30_000, at(31)},
		{[]string{`{__name__="dm_counter", series!~"s1.*|s2.*"}`}, math.MinInt64, at(2)},
		{[]string{`{series="s01"}`}, at(40), at(41)},
		{[]string{`dm_gauge{series="s05"}`, `dm_gauge{series="s07"}`}, at(44) - 1, at(45) + 1},
	}

	storageDir := t.TempDir()
	flags := []string{"-api.enable-admin-api=true", "-distributor.ingestion-rate-limit=0", "-log.level=warn"}
	a := clustertest.StartArgus(t, clustertest.Options{StorageDir: storageDir, Flags: append(flags, "-ingester.flush-period=1h")})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true,
		Flags: []string{"--web.enable-remote-write-receiver", "--web.enable-admin-api"}})
	h.push(t, start, end, argusTarget(a, tenant), prometheusTarget(p))
	for _, d := range dels {
		code, body := p.QueryPost(t, "/api/v1/admin/tsdb/delete_series", d.params())
		require.Equal(t, http.StatusNoContent, code, "prometheus: %s", body)
		code, body = a.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/delete_series", d.params())
		require.Equal(t, http.StatusNoContent, code, "argus: %s", body)
	}
	want := h.want(t, start, end-1, dels)
	require.Less(t, clustertest.TotalSamples(want), h.series*int((end-start)/h.step)-4000, "the deletions delete")
	compare := func(stage string) {
		t.Run(stage, func(t *testing.T) { compareDeletions(t, p, a, tenant, h, want, start, end, at(46)) })
	}
	require.Empty(t, partitionFiles(t, storageDir), "nothing persisted before compaction")
	compare("before compaction")

	a.Stop(t)
	a = clustertest.StartArgus(t, clustertest.Options{StorageDir: storageDir, Flags: append(flags, "-ingester.flush-period=1s")})
	var files []partitionFile
	clustertest.Eventually(t, func() string {
		files = partitionFiles(t, storageDir)
		return compactedUpTo(files, start, end-3*hourMs/2)
	}, 60*time.Second)
	l := levels(files)
	// Two whole days and the third so far (its sealed windows merged
	// into level 2 by storage's mergeDaySoFar), all sealed parts.
	require.GreaterOrEqual(t, l[2], 3, "merged days and the day so far: %v", files)
	require.Positive(t, p.Metric(t, "prometheus_tsdb_compactions_total", nil), "prometheus compacted its head")
	t.Logf("argus's partitions after compaction: %d of level 1, %d of level 2", l[1], l[2])
	compare("after compaction")

	code, body := p.QueryPost(t, "/api/v1/admin/tsdb/clean_tombstones", nil)
	require.Equal(t, http.StatusNoContent, code, "prometheus: %s", body)
	code, body = a.QueryPost(t, tenant, clustertest.PromAPI+"/admin/tsdb/clean_tombstones", nil)
	require.Equal(t, http.StatusNoContent, code, "argus: %s", body)
	compare("after clean_tombstones")

	a.Kill(t)
	a.Restart(t)
	compare("after clean_tombstones and kill -9")
	a.Stop(t)
	tsdbVerify(t, storageDir)

	// On disk: the clean stop persisted every finished chunk (those before
	// the newest window, whose chunks are open), and the rewrites purged
	// every deleted sample and then the tombstones.
	out, err := runArgusCommand(t, "tsdb", "list", "-storage.path="+storageDir, "-tenant="+tenant)
	require.NoError(t, err, out)
	samples, tombstones := listedSamples(t, out, tenant)
	require.Equal(t, clustertest.TotalSamples(h.want(t, start, at(50)-1, dels)), samples, "samples on disk:\n%s", out)
	require.Zero(t, tombstones, "tombstones left on disk:\n%s", out)
}

// listedSamples returns the samples `argus tsdb list` counts for tenant on
// disk, and the tombstones in force it lists in its partitions.
func listedSamples(t testing.TB, out, tenant string) (samples, tombstones int) {
	t.Helper()
	found := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[0] == tenant && f[1] == "total": // chunks, samples, bytes, bytes/sample
			n, err := strconv.Atoi(f[3])
			require.NoError(t, err, line)
			samples, found = n, true
		case len(f) == 10 && f[0] == tenant:
			n, err := strconv.Atoi(f[9])
			require.NoError(t, err, line)
			tombstones += n
		}
	}
	require.True(t, found, "no total line for tenant %s in:\n%s", tenant, out)
	return samples, tombstones
}

// compareDeletions compares the raw samples of the history in [start,
// end) with Prometheus's and with want, and a set of queries: ranged ones
// ending at end (after the newest sample), instant ones at end and at
// after (after every deletion), so that no read of Prometheus trims a
// series at its end before a tombstone's end (see
// TestDeleteSeriesThroughCompaction).
func compareDeletions(t *testing.T, p *clustertest.Prometheus, a *clustertest.Process, tenant string, h history, want []clustertest.Series, start, end, after int64) {
	sel := fmt.Sprintf(`{__name__=~"%s_.+"}`, h.name)
	raw := url.Values{"query": {fmt.Sprintf("%s[%dms]", sel, end-start+hourMs)}, "time": {clustertest.FormatAPITime(end)}}
	d, series, samples := clustertest.DiffRaw(t, p, a, tenant, raw)
	require.Empty(t, d, "raw samples (-prometheus +argus)")
	require.Empty(t, clustertest.DiffSamples(want, h.stored(t, a, tenant, start, end)), "argus against the model of the deletions")
	t.Logf("raw samples identical: %d series, %d samples", series, samples)

	queries := []string{
		`rate(` + h.name + `_counter[5m])`,
		`sum by (group) (` + h.name + `_gauge)`,
		`count_over_time(` + sel + `[1h])`,
		`max_over_time(` + h.name + `_gauge[30m])`,
		`timestamp(` + h.name + `_gauge)`,
		`count by (__name__) (` + sel + `)`,
	}
	for _, q := range queries {
		params := url.Values{"query": {q}, "start": {clustertest.FormatAPITime(start)}, "end": {clustertest.FormatAPITime(end)}, "step": {"307"}}
		d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query_range", params, false)
		require.Empty(t, d, "%s over the history (-prometheus +argus)", q)
		require.Positive(t, n, "%s: prometheus's answer is empty", q)
	}
	for _, q := range []string{`count_over_time(` + sel + `[12h])`, `sum_over_time(` + h.name + `_gauge[8h])`, `last_over_time(` + h.name + `_counter[10m])`} {
		for _, ts := range []int64{after, end} {
			params := url.Values{"query": {q}, "time": {clustertest.FormatAPITime(ts)}}
			d, n := clustertest.DiffAnswers(t, p, a, tenant, "/query", params, true)
			require.Empty(t, d, "%s at %d (-prometheus +argus)", q, ts)
			require.Positive(t, n, "%s at %d: prometheus's answer is empty", q, ts)
		}
	}
}
