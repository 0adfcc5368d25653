package e2e

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// This file holds what the tests of days-old data share (retention,
// deletion through compaction, crashes at storage steps): a history of
// series with samples in the past, pushed to argus and to the real
// Prometheus the same way, a model of what must be left of it after
// deletions, and a view of the partition files on disk.

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs
)

// history is a deterministic set of series with a sample every step. Series
// s is named <name>_counter (s even) or <name>_gauge (s odd) and has the
// labels group="g<s%4>" and series="s<s>".
type history struct {
	name   string
	series int
	step   int64 // ms
}

func (h history) labels(s int) []clustertest.Label {
	kind := "counter"
	if s%2 == 1 {
		kind = "gauge"
	}
	return clustertest.Labels("__name__", h.name+"_"+kind, "group", fmt.Sprintf("g%d", s%4), "job", "history", "series", fmt.Sprintf("s%02d", s))
}

// value is a counter for even series and a bounded gauge with repeats and
// decimals for odd ones, a function of the time only, so that any range can
// be generated alone.
func (h history) value(s int, ts int64) float64 {
	k := ts / h.step
	if s%2 == 0 {
		return float64(k*int64(s+1)) + float64(k%7)/4
	}
	return math.Round(100*(20+10*math.Sin(float64(k)/97+float64(s)))) / 100
}

// first returns the first sample time at or after t.
func (h history) first(t int64) int64 {
	return (t + h.step - 1) / h.step * h.step
}

// batch returns the samples in [from, to) of every series.
func (h history) batch(from, to int64) []clustertest.TimeSeries {
	out := make([]clustertest.TimeSeries, 0, h.series)
	for s := range h.series {
		ts := clustertest.TimeSeries{Labels: h.labels(s)}
		for t := h.first(from); t < to; t += h.step {
			ts.Samples = append(ts.Samples, clustertest.Sample{T: t, V: h.value(s, t)})
		}
		out = append(out, ts)
	}
	return out
}

// pastHistoryRange returns the range [start, end) of a history of 51 h 30
// min that ends at least 14 h ago, with the same layout whatever the time
// of day: it starts at 06:00 UTC and ends 1h30 into a 2 h window, so that
// once the head holds the newest samples every older window can be sealed,
// the first day (partly covered) and the second (whole) merged, and the
// third day is left with sealed windows (level 1) and the open one.
func pastHistoryRange() (start, end int64) {
	start = (time.Now().UnixMilli()-3*dayMs)/dayMs*dayMs + 6*hourMs
	return start, start + 51*hourMs + hourMs/2
}

// pushTarget is a remote-write endpoint: argus as a tenant, or Prometheus.
type pushTarget func(t testing.TB, series []clustertest.TimeSeries)

func argusTarget(a *clustertest.Process, tenant string) pushTarget {
	return func(t testing.TB, series []clustertest.TimeSeries) { pushOK(t, a, tenant, series) }
}

// prometheusTarget pushes to a Prometheus started with
// --web.enable-remote-write-receiver.
func prometheusTarget(p *clustertest.Prometheus) pushTarget {
	return func(t testing.TB, series []clustertest.TimeSeries) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, p.URL()+"/api/v1/write", bytes.NewReader(clustertest.EncodeWriteRequest(t, series)))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "remote write to prometheus: %s", msg.String())
	}
}

// push sends the samples in [from, to) to every target in time order, an
// hour per request: both Prometheus's head and argus's accept a sample at
// most an hour older than the newest one they hold.
func (h history) push(t testing.TB, from, to int64, targets ...pushTarget) {
	t.Helper()
	for start := from; start < to; start += hourMs {
		b := h.batch(start, min(start+hourMs, to))
		for _, push := range targets {
			push(t, b)
		}
	}
}

// deletion is a delete_series call: its selectors and its range (Unix ms,
// inclusive; math.MinInt64 / math.MaxInt64 when the parameter is left out).
type deletion struct {
	match      []string
	start, end int64
}

// params renders d as delete_series parameters.
func (d deletion) params() url.Values {
	v := url.Values{"match[]": d.match}
	if d.start != math.MinInt64 {
		v.Set("start", clustertest.FormatAPITime(d.start))
	}
	if d.end != math.MaxInt64 {
		v.Set("end", clustertest.FormatAPITime(d.end))
	}
	return v
}

// deletes reports whether d deletes the sample of lset at ts.
func (d deletion) deletes(t testing.TB, lset labels.Labels, ts int64) bool {
	if ts < d.start || ts > d.end {
		return false
	}
	for _, sel := range d.match {
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
		require.NoError(t, err)
		if matchesAll(ms, lset) {
			return true
		}
	}
	return false
}

func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// want returns the raw samples in [from, to] that must be left of the
// history after dels, sorted by labels, without the series left empty.
func (h history) want(t testing.TB, from, to int64, dels []deletion) []clustertest.Series {
	t.Helper()
	var out []clustertest.Series
	for _, ts := range h.batch(from, to+1) {
		m := map[string]string{}
		b := labels.NewScratchBuilder(len(ts.Labels))
		for _, l := range ts.Labels {
			m[l.Name] = l.Value
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		lset := b.Labels()
		ser := clustertest.Series{Metric: m}
		for _, smp := range ts.Samples {
			if !slices.ContainsFunc(dels, func(d deletion) bool { return d.deletes(t, lset, smp.T) }) {
				ser.Samples = append(ser.Samples, smp)
			}
		}
		if len(ser.Samples) > 0 {
			out = append(out, ser)
		}
	}
	clustertest.SortSeries(out)
	return out
}

// stored returns every raw sample of the history in [from, to] as a holds
// for tenant.
func (h history) stored(t testing.TB, a *clustertest.Process, tenant string, from, to int64) []clustertest.Series {
	t.Helper()
	return rawSamples(t, a, tenant, fmt.Sprintf(`{__name__=~"%s_.+"}`, h.name), to, time.Duration(to-from+1)*time.Millisecond)
}

// partitionFile is a partition file of an argus data dir, by its name
// L<level>_<minT>_<maxT>_<seq>.db.
type partitionFile struct {
	name       string
	level      int
	minT, maxT int64
	bytes      int64
}

// partitionFiles lists the partition files of the DB of storageDir.
func partitionFiles(t testing.TB, storageDir string) []partitionFile {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(storageDir, "db"))
	require.NoError(t, err)
	var out []partitionFile
	for _, e := range entries {
		var p partitionFile
		var seq int
		if n, _ := fmt.Sscanf(e.Name(), "L%d_%d_%d_%d.db", &p.level, &p.minT, &p.maxT, &seq); n != 4 || !strings.HasSuffix(e.Name(), ".db") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		p.name, p.bytes = e.Name(), info.Size()
		out = append(out, p)
	}
	return out
}

// levels counts partition files by level.
func levels(files []partitionFile) map[int]int {
	out := map[int]int{}
	for _, f := range files {
		out[f.level]++
	}
	return out
}

// dirBytes returns the bytes of the regular files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed during the walk
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

// tsdbVerify runs `argus tsdb verify` on the data dir of a stopped argus
// and requires it clean.
func tsdbVerify(t testing.TB, storageDir string) {
	t.Helper()
	out, err := runArgusCommand(t, "tsdb", "verify", "-storage.path="+storageDir)
	require.NoError(t, err, "argus tsdb verify:\n%s", out)
	require.Contains(t, out, ": ok")
}
