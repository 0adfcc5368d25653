package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// oooData is the data set of the out-of-order tests: series samples every
// step over span; the in-order part leaves out every third timestamp, which
// come later, shuffled across series and time.
type oooData struct {
	name   string
	series int
	start  int64 // ms
	step   int64
	n      int // timestamps per series
}

func (d oooData) labels(s int) []clustertest.Label {
	return clustertest.Labels("__name__", d.name, "instance", fmt.Sprintf("i%02d", s), "job", "ooo")
}

func (d oooData) sample(s, k int) clustertest.Sample {
	return clustertest.Sample{T: d.start + int64(k)*d.step, V: float64(s*1000+k) + float64(k%4)/8}
}

// inOrder returns the samples of timestamps [from, to) except every third,
// in time order, per series.
func (d oooData) inOrder(from, to int) []clustertest.TimeSeries {
	var out []clustertest.TimeSeries
	for s := range d.series {
		ts := clustertest.TimeSeries{Labels: d.labels(s)}
		for k := from; k < to; k++ {
			if k%3 != 1 {
				ts.Samples = append(ts.Samples, d.sample(s, k))
			}
		}
		out = append(out, ts)
	}
	return out
}

// left returns the samples left out by inOrder over [0, to), each a series
// of one sample, shuffled, split by whether they are at or after minT.
func (d oooData) left(to int, minT int64, rng *rand.Rand) (inside, outside []clustertest.TimeSeries) {
	for s := range d.series {
		for k := 1; k < to; k += 3 {
			smp := d.sample(s, k)
			ts := clustertest.TimeSeries{Labels: d.labels(s), Samples: []clustertest.Sample{smp}}
			if smp.T >= minT {
				inside = append(inside, ts)
			} else {
				outside = append(outside, ts)
			}
		}
	}
	rng.Shuffle(len(inside), func(i, j int) { inside[i], inside[j] = inside[j], inside[i] })
	rng.Shuffle(len(outside), func(i, j int) { outside[i], outside[j] = outside[j], outside[i] })
	return inside, outside
}

// chunksOf splits series into requests of n.
func chunksOf(series []clustertest.TimeSeries, n int) [][]clustertest.TimeSeries {
	var out [][]clustertest.TimeSeries
	for len(series) > 0 {
		k := min(n, len(series))
		out = append(out, series[:k])
		series = series[k:]
	}
	return out
}

// TestOutOfOrderAgainstPrometheus feeds the real Prometheus 3.16 and argus,
// both with a 30 min out-of-order window (Prometheus's
// storage.tsdb.out_of_order_time_window, argus's out_of_order_time_window in
// the runtime overrides), the same samples over remote write: an hour in
// order with every third timestamp left out, then the left-out samples
// shuffled across series. Those inside the window are accepted by both and
// every raw sample answers the same; those before it are refused by both,
// argus with err-argus-sample-too-old. Every request argus took is sent
// again and answered 204 (stored once: the answers stay equal). Then 3 more
// hours in order move everything out of argus's memory into its DB and
// sealed parts, and a kill -9 and restart replays the WAL: the answers stay
// equal at each stage; the first hour, retried once all persisted, is
// answered 204 and stored once. A tenant without a window refuses the same samples
// as out of order, and takes a retried push whole.
func TestOutOfOrderAgainstPrometheus(t *testing.T) {
	skipIfShort(t)
	clustertest.PrometheusBinary(t)
	t.Parallel()
	const (
		tenant = "ooo"
		window = 30 * time.Minute
	)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, overrides, fmt.Sprintf("overrides:\n  %s:\n    out_of_order_time_window: %s\n", tenant, window))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{
		"-runtime-config.file=" + overrides,
		"-distributor.ingestion-rate-limit=0",
		"-ingester.flush-period=1s", "-ingester.wal-truncate-period=2s",
		"-log.level=warn",
	}})
	p := clustertest.StartPrometheus(t, clustertest.PrometheusOptions{NoSelfScrape: true, OutOfOrderTimeWindow: window,
		Flags: []string{"--web.enable-remote-write-receiver"}})
	require.Equal(t, window.String(), getUserLimits(t, a, tenant).Limits["out_of_order_time_window"])

	// An hour at 15 s, 6 h ago, starting on a 2 h boundary.
	d := oooData{name: "ooo_metric", series: 10, step: 15_000, n: 240}
	d.start = (time.Now().UnixMilli()-6*hourMs)/(2*hourMs)*(2*hourMs) + 30_000
	maxT := d.sample(0, d.n-1).T
	argus, prom := argusTarget(a, tenant), prometheusTarget(p)
	for _, b := range chunksOf(d.inOrder(0, d.n), 3) {
		argus(t, b)
		prom(t, b)
	}
	inside, outside := d.left(d.n, maxT-window.Milliseconds(), rand.New(rand.NewPCG(7, 8)))
	require.Len(t, inside, 400, "the window holds half the hour: 40 left-out timestamps per series")
	require.Len(t, outside, 400)

	compare := func(stage string) {
		t.Helper()
		end := d.start + 5*hourMs
		params := url.Values{"query": {fmt.Sprintf("%s[%dms]", d.name, end-d.start+1)}, "time": {clustertest.FormatAPITime(end)}}
		diff, series, samples := clustertest.DiffRaw(t, p, a, tenant, params)
		require.Empty(t, diff, "%s: raw samples differ", stage)
		require.Equal(t, 10, series, stage)
		t.Logf("%s: %d series, %d samples equal", stage, series, samples)
	}

	// Inside the window: accepted by both, in requests mixing series.
	for _, b := range chunksOf(inside, 25) {
		argus(t, b)
		prom(t, b)
	}
	compare("inside the window")
	require.Equal(t, 10*(160+40), clustertest.TotalSamples(rawSamples(t, a, tenant, d.name, d.start+5*hourMs, 5*time.Hour+time.Millisecond)))

	// Before the window: refused by both (10 series a request: an ingester
	// names at most 10 rejected series, and the distributor counts the
	// others' samples as reason "unknown").
	for _, b := range chunksOf(outside, 10) {
		code, body := a.Push(t, tenant, b)
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "err-argus-sample-too-old")
		require.Contains(t, body, "out-of-order time window")
		pcode := pushPrometheus(t, p, b)
		require.Equal(t, http.StatusBadRequest, pcode)
	}
	require.InDelta(t, 400, a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": tenant, "reason": "too_old"}), 0)

	// Retries: every request argus took, again, the whole in-order hour
	// included: with the 1 s flush the first half's chunks may be
	// persisted by now, and their exact duplicates are accepted too.
	for _, b := range chunksOf(d.inOrder(0, d.n), 3) {
		pushOK(t, a, tenant, b)
	}
	for _, b := range chunksOf(inside, 25) {
		pushOK(t, a, tenant, b)
	}
	require.InDelta(t, 400, a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": tenant, "reason": "too_old"}), 0,
		"exact duplicates are not discarded")
	compare("after retries")

	a.Kill(t)
	a.Restart(t)
	compare("after kill -9 (replay of in-order and out-of-order samples)")

	// Three more hours in order: the first hour leaves argus's memory,
	// is persisted and its windows sealed.
	more := oooData{name: d.name, series: d.series, start: d.start, step: d.step, n: d.n + 3*240}
	for k := d.n; k < more.n; k += 120 {
		b := more.inOrder(k, k+120)
		argus(t, b)
		prom(t, b)
	}
	// The first 2 h window (the out-of-order hour) is sealed into a level-1
	// part: every chunk of it left memory.
	clustertest.Eventually(t, func() string {
		for _, f := range partitionFiles(t, a.StorageDir()) {
			if f.level >= 1 && f.minT <= d.start && d.start+hourMs <= f.maxT {
				return ""
			}
		}
		return fmt.Sprintf("no sealed part holds [%d, %d]: %v", d.start, d.start+hourMs, partitionFiles(t, a.StorageDir()))
	}, 60*time.Second)
	compare("persisted")
	// The first hour retried whole once more, now that all of it is
	// persisted and sealed: every exact duplicate is looked up on disk and
	// accepted, nothing is stored twice or discarded.
	discarded := func() float64 {
		return a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": tenant})
	}
	discardedBefore := discarded()
	for _, b := range chunksOf(d.inOrder(0, d.n), 3) {
		pushOK(t, a, tenant, b)
	}
	for _, b := range chunksOf(inside, 25) {
		pushOK(t, a, tenant, b)
	}
	require.InDelta(t, discardedBefore, discarded(), 0)
	require.GreaterOrEqual(t, a.Metric(t, "argus_ingester_persisted_duplicate_samples_total", nil), float64(10*200))
	compare("persisted, after retries")
	a.Kill(t)
	a.Restart(t)
	compare("persisted, after kill -9")

	// Without a window, out-of-order samples are refused as such, and a
	// retried push that had partly landed is taken whole.
	const strict = "strict"
	sd := d // After everything else: older windows are sealed by now.
	sd.start = d.start + int64(more.n)*d.step
	pushOK(t, a, strict, sd.inOrder(0, sd.n/2))
	pushOK(t, a, strict, sd.inOrder(0, sd.n))
	pushOK(t, a, strict, sd.inOrder(0, sd.n))
	ins, _ := sd.left(sd.n, sd.sample(0, sd.n-1).T-window.Milliseconds(), rand.New(rand.NewPCG(7, 8)))
	code, body := a.Push(t, strict, ins[:5])
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "err-argus-sample-out-of-order")
	require.Equal(t, 10*160, clustertest.TotalSamples(rawSamples(t, a, strict, sd.name, sd.start+2*hourMs, 2*time.Hour+time.Millisecond)))
}

// pushPrometheus pushes series to Prometheus's remote-write receiver and
// returns the status.
func pushPrometheus(t testing.TB, p *clustertest.Prometheus, series []clustertest.TimeSeries) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL()+"/api/v1/write", bytes.NewReader(clustertest.EncodeWriteRequest(t, series)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}
