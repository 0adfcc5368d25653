// Package e2e holds the end-to-end tests of Argus: they run the real argus
// binary (and, where a reference is needed, the real Prometheus server)
// through internal/clustertest and assert only through public HTTP APIs and
// /metrics. They are plain tests, skipped by -short; see clustertest's
// package doc for the binaries they need.
package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real processes: skipped in -short mode")
	}
}

// pushOK pushes series for tenant and requires 204 No Content.
func pushOK(t testing.TB, a *clustertest.Process, tenant string, series []clustertest.TimeSeries) {
	t.Helper()
	code, body := a.Push(t, tenant, series)
	require.Equal(t, http.StatusNoContent, code, "push for tenant %q answered: %s", tenant, body)
}

// rawSamples returns, via an instant query of a range selector, every raw
// sample of the series matching selector in (atMs-window, atMs], sorted by
// labels.
func rawSamples(t testing.TB, a *clustertest.Process, tenant, selector string, atMs int64, window time.Duration) []clustertest.Series {
	t.Helper()
	q := fmt.Sprintf("%s[%dms]", selector, window.Milliseconds())
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{
		"query": {q},
		"time":  {clustertest.FormatAPITime(atMs)},
	})
	got := clustertest.MatrixData(t, code, body)
	clustertest.SortSeries(got)
	return got
}

// apiData requires a successful API answer and returns its data decoded
// with exact numbers (clustertest.DecodeJSON).
func apiData(t testing.TB, code int, body []byte) any {
	t.Helper()
	require.Equal(t, http.StatusOK, code, "body: %s", clustertest.Truncate(string(body), 2000))
	r := clustertest.DecodeAPI(t, body)
	require.Equal(t, "success", r.Status, "body: %s", clustertest.Truncate(string(body), 2000))
	return clustertest.DecodeJSON(t, r.Data)
}

// mustJSON decodes a literal expected JSON value the way apiData decodes.
func mustJSON(t testing.TB, s string) any {
	t.Helper()
	return clustertest.DecodeJSON(t, []byte(s))
}

// dataset is a deterministic set of float series with regular timestamps,
// for tests that push data and then check every sample. Sample i of series
// s is at start+i*step and has value value(s, i).
type dataset struct {
	name   string // metric name
	series int
	start  int64 // ms
	step   int64 // ms
}

// newDataset places samples samples ending about a second ago, aligned to
// the second, so that they are inside any head's accepted window.
func newDataset(name string, series, samples int, step time.Duration) dataset {
	end := time.Now().Add(-time.Second).Truncate(time.Second).UnixMilli()
	return dataset{name: name, series: series, start: end - int64(samples-1)*step.Milliseconds(), step: step.Milliseconds()}
}

func (d dataset) labels(s int) []clustertest.Label {
	return clustertest.Labels("__name__", d.name, "job", "e2e", "series", fmt.Sprintf("s%04d", s))
}

func (d dataset) ts(i int) int64 { return d.start + int64(i)*d.step }

// value mixes shapes that exercise the XOR encoding differently: counters,
// repeated values, pseudo-random decimals and large magnitudes.
func (d dataset) value(s, i int) float64 {
	h := uint64(s)*0x9E3779B97F4A7C15 ^ uint64(i)*0xBF58476D1CE4E5B9
	h ^= h >> 31
	h *= 0x94D049BB133111EB
	h ^= h >> 29
	switch s % 4 {
	case 0:
		return float64(i * (s + 1)) // counter
	case 1:
		return float64(s % 7) // constant
	case 2:
		return float64(h%2_000_000)/1000 - 1000 // e.g. -123.456
	default:
		return float64(h%1000) * 1e12 // large
	}
}

// batch returns samples [from, to) of every series.
func (d dataset) batch(from, to int) []clustertest.TimeSeries {
	out := make([]clustertest.TimeSeries, 0, d.series)
	for s := range d.series {
		ts := clustertest.TimeSeries{Labels: d.labels(s)}
		for i := from; i < to; i++ {
			ts.Samples = append(ts.Samples, clustertest.Sample{T: d.ts(i), V: d.value(s, i)})
		}
		out = append(out, ts)
	}
	return out
}

// push sends samples [from, to) in requests of perRequest samples per
// series, requiring 204 for each.
func (d dataset) push(t testing.TB, a *clustertest.Process, tenant string, from, to, perRequest int) {
	t.Helper()
	for i := from; i < to; i += perRequest {
		pushOK(t, a, tenant, d.batch(i, min(i+perRequest, to)))
	}
}

// want is what a raw query must return after samples [0, n) were pushed.
func (d dataset) want(n int) []clustertest.Series {
	out := make([]clustertest.Series, 0, d.series)
	for s := range d.series {
		m := map[string]string{}
		for _, l := range d.labels(s) {
			m[l.Name] = l.Value
		}
		ser := clustertest.Series{Metric: m}
		for i := range n {
			ser.Samples = append(ser.Samples, clustertest.Sample{T: d.ts(i), V: d.value(s, i)})
		}
		out = append(out, ser)
	}
	clustertest.SortSeries(out)
	return out
}

// query returns all samples of the dataset as stored by a, evaluated at the
// last of the first n samples.
func (d dataset) query(t testing.TB, a *clustertest.Process, tenant string, n int) []clustertest.Series {
	t.Helper()
	window := time.Duration(d.ts(n-1)-d.start+1) * time.Millisecond
	return rawSamples(t, a, tenant, fmt.Sprintf("{__name__=%q}", d.name), d.ts(n-1), window)
}

// cmpJSON diffs two decoded JSON values (-want +got).
func cmpJSON(t testing.TB, want, got any) string {
	t.Helper()
	return cmp.Diff(want, got)
}
