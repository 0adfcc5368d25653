package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// PromAPI is where Argus serves the Prometheus HTTP API.
const PromAPI = "/prometheus/api/v1"

// This file compares Argus's answers with the real Prometheus's, for the
// equivalence tests of internal/e2e (all-in-one) and internal/clustere2e
// (cluster).

// EquivalenceQuery is a PromQL query of an equivalence table.
type EquivalenceQuery struct {
	Q string
	// Ordered: the result order is part of the semantics (topk sorts by
	// value) and is compared as is. Otherwise instant vectors are compared
	// in label order: Prometheus's head returns series of an instant query
	// in series-creation order (the engine selects them unsorted), an order
	// the API does not promise and that a store of series sorted by labels
	// cannot reproduce.
	Ordered bool
	// Empty: the reference answer is empty (absent of a present series);
	// every other query must have a result, so that no comparison is
	// vacuous.
	Empty bool
}

// Answer is the part of an API answer that must be identical.
type Answer struct {
	Code   int
	Status string
	Data   any
}

// Annotations are compared separately from Answer, so that a data mismatch
// and a missing warning or info read differently.
type Annotations struct {
	Warnings, Infos []string
}

// DecodeAnswer decodes an API answer with exact numbers; unordered sorts
// vector and matrix results and /series lists by labels, for answers whose
// order the API does not promise.
func DecodeAnswer(t testing.TB, code int, body []byte, unordered bool) (Answer, Annotations) {
	t.Helper()
	r := DecodeAPI(t, body)
	var data any
	if len(r.Data) > 0 {
		data = DecodeJSON(t, r.Data)
	}
	if unordered {
		data = SortSeriesList(SortVector(data))
	}
	// The engine keeps annotations in a map: their order is not promised
	// (two infos of one query come in either order from Prometheus too).
	slices.Sort(r.Warnings)
	slices.Sort(r.Infos)
	return Answer{Code: code, Status: r.Status, Data: data}, Annotations{Warnings: r.Warnings, Infos: r.Infos}
}

// DiffAnswers sends the same GET to Prometheus (/api/v1+path) and to argus
// (PromAPI+path, as tenant), diffs the answers (-prometheus +argus) and
// returns the number of results in Prometheus's.
func DiffAnswers(t testing.TB, p *Prometheus, a *Process, tenant, path string, params url.Values, unordered bool) (diff string, results int) {
	t.Helper()
	pc, pb := p.Query(t, "/api/v1"+path, params)
	ac, ab := a.Query(t, tenant, PromAPI+path, params)
	return DiffBodies(t, pc, pb, ac, ab, unordered)
}

// DiffBodies diffs a reference (Prometheus) answer with argus's. A failing
// reference answer fails the test: it is a bug of the test, not of argus.
func DiffBodies(t testing.TB, pc int, pb []byte, ac int, ab []byte, unordered bool) (diff string, results int) {
	t.Helper()
	require.Equal(t, http.StatusOK, pc, "prometheus answered: %s", pb)
	want, wantAnn := DecodeAnswer(t, pc, pb, unordered)
	results = ResultCount(want.Data)
	if ac != http.StatusOK {
		return fmt.Sprintf("argus answered %d: %s", ac, Truncate(string(ab), 2000)), results
	}
	got, gotAnn := DecodeAnswer(t, ac, ab, unordered)
	if d := diffJSON(want, got); d != "" {
		if !unordered {
			w, _ := DecodeAnswer(t, pc, pb, true)
			g, _ := DecodeAnswer(t, ac, ab, true)
			if cmp.Equal(w, g) {
				d = "the same series and values, in another order:\n" + d
			}
		}
		return Truncate(d, 6000), results
	}
	if d := cmp.Diff(wantAnn, gotAnn); d != "" {
		return "data identical, annotations differ:\n" + d, results
	}
	return "", results
}

// sameJSON reports whether two decoded answers are equal, comparing their
// encodings: for what DecodeJSON yields (maps, slices, strings, json.Number,
// bools, nil) encoding/json's output is canonical (map keys sorted, numbers
// as written), so equal bytes mean equal values. It is a fast path: on a
// megabyte answer of native histograms cmp.Diff took about 100 times as
// long, which made one comparison take 20 s.
func sameJSON(want, got any) bool {
	w, werr := json.Marshal(want)
	g, gerr := json.Marshal(got)
	return werr == nil && gerr == nil && bytes.Equal(w, g)
}

// diffJSON is cmp.Diff(want, got) for decoded answers, with sameJSON's
// fast path for the common case of equal ones.
func diffJSON(want, got any) string {
	if sameJSON(want, got) {
		return ""
	}
	return cmp.Diff(want, got)
}

// DiffRaw compares the raw samples of an instant range-selector query,
// summarizing per series what argus lacks or has extra. It returns the
// number of series and samples in Prometheus's answer.
func DiffRaw(t testing.TB, p *Prometheus, a *Process, tenant string, params url.Values) (diff string, series, samples int) {
	t.Helper()
	pc, pb := p.Query(t, "/api/v1/query", params)
	ac, ab := a.Query(t, tenant, PromAPI+"/query", params)
	require.Equal(t, http.StatusOK, pc, "prometheus answered: %s", Truncate(string(pb), 2000))
	ws := MatrixData(t, pc, pb)
	SortSeries(ws)
	series, samples = len(ws), TotalSamples(ws)
	if ac != http.StatusOK {
		return fmt.Sprintf("argus answered %d: %s", ac, Truncate(string(ab), 2000)), series, samples
	}
	want, _ := DecodeAnswer(t, pc, pb, true)
	got, _ := DecodeAnswer(t, ac, ab, true)
	if sameJSON(want, got) {
		return "", series, samples
	}
	gs := MatrixData(t, ac, ab)
	SortSeries(gs)
	if d := DiffSamples(ws, gs); d != "" {
		return fmt.Sprintf("raw samples differ (prometheus %d series/%d samples, argus %d series/%d samples):\n%s",
			len(ws), TotalSamples(ws), len(gs), TotalSamples(gs), d), series, samples
	}
	// Same samples, yet the JSON differs (number formatting, envelope).
	return Truncate(cmp.Diff(want, got), 6000), series, samples
}

// EquivalenceWindow is the timeline of an equivalence test. Remote write
// tails the WAL from shortly after startup, so only samples from W0 on are
// compared: the raw samples in (W0, End], and the queries at End and over
// [E0, End], E0 leaving room for the longest look-back of the queries.
type EquivalenceWindow struct {
	W0, E0, End time.Time
}

// NewEquivalenceWindow places W0 on the first whole second after warmup
// past p's readiness, E0 lookback after W0 and End span after E0, and logs
// the window.
func NewEquivalenceWindow(t testing.TB, p *Prometheus, warmup, lookback, span time.Duration) EquivalenceWindow {
	t.Helper()
	w0 := p.ReadyAt.Add(warmup).Truncate(time.Second).Add(time.Second)
	e0 := w0.Add(lookback)
	w := EquivalenceWindow{W0: w0, E0: e0, End: e0.Add(span)}
	t.Logf("prometheus ready at %s; comparing samples in (%s, %s], queries over [%s, %s]",
		p.ReadyAt.Format(time.TimeOnly), w.W0.Format(time.TimeOnly), w.End.Format(time.TimeOnly), w.E0.Format(time.TimeOnly), w.End.Format(time.TimeOnly))
	return w
}

// SleepPastEnd waits until just after End. Samples accumulate in wall-clock
// time at the scrape interval: there is nothing to poll until then. The
// margin lets the last scrapes before End be appended and sent.
func (w EquivalenceWindow) SleepPastEnd() {
	time.Sleep(time.Until(w.End.Add(3 * time.Second)))
}

// RequireRawEqual polls until the raw samples of every series in (w0, end]
// are identical in Prometheus and in a (as tenant), as DiffRaw compares
// them, and guards against a vacuous comparison: more than 200 series (both
// jobs' series), about one sample per second each. It returns end as an API
// time.
func RequireRawEqual(t testing.TB, p *Prometheus, a *Process, tenant string, w0, end time.Time) (at string) {
	t.Helper()
	at = FormatAPITime(end.UnixMilli())
	window := end.Sub(w0)
	raw := fmt.Sprintf(`{__name__=~".+"}[%ds]`, int(window.Seconds()))
	var rawSeries, rawPoints int
	Eventually(t, func() string {
		var d string
		d, rawSeries, rawPoints = DiffRaw(t, p, a, tenant, url.Values{"query": {raw}, "time": {at}})
		return d
	}, 60*time.Second)
	t.Logf("raw samples identical: %d series, %d samples", rawSeries, rawPoints)
	require.Greater(t, rawSeries, 200)
	require.Greater(t, rawPoints, rawSeries*int(window.Seconds())*8/10)
	return at
}

// ResultCount is the number of results in decoded API data: series of a
// vector or matrix, 1 for a scalar or string, entries of a list or object.
func ResultCount(data any) int {
	switch d := data.(type) {
	case map[string]any:
		if r, ok := d["result"]; ok {
			if list, ok := r.([]any); ok && d["resultType"] != "scalar" && d["resultType"] != "string" {
				return len(list)
			}
			return 1
		}
		return len(d)
	case []any:
		return len(d)
	case nil:
		return 0
	default:
		return 1
	}
}

// sameSeries reports whether want and got are equal as DiffSamples
// compares them: NaN equals NaN.
func sameSeries(want, got []Series) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		w, g := want[i], got[i]
		if !maps.Equal(w.Metric, g.Metric) || len(w.Samples) != len(g.Samples) {
			return false
		}
		for k, ws := range w.Samples {
			gs := g.Samples[k]
			if ws.T != gs.T || (ws.V != gs.V && !(math.IsNaN(ws.V) && math.IsNaN(gs.V))) {
				return false
			}
		}
	}
	return true
}

// DiffSamples compares raw series (sorted with SortSeries) exactly and,
// when they differ, explains per series which timestamps are missing,
// duplicated, unexpected or have another value, before the (truncated)
// full diff.
func DiffSamples(want, got []Series) string {
	if sameSeries(want, got) {
		return "" // cmp.Diff's reflection costs seconds on 50K samples.
	}
	full := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool {
		return a == b || (math.IsNaN(a) && math.IsNaN(b))
	}))
	if full == "" {
		return ""
	}
	key := func(m map[string]string) string {
		var b strings.Builder
		for _, n := range sortedNames(m) {
			fmt.Fprintf(&b, "%s=%q,", n, m[n])
		}
		return "{" + strings.TrimSuffix(b.String(), ",") + "}"
	}
	gotBy := map[string][]Sample{}
	for _, s := range got {
		gotBy[key(s.Metric)] = append(gotBy[key(s.Metric)], s.Samples...)
	}
	var b strings.Builder
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			fmt.Fprintf(&b, format+"\n", args...)
		}
	}
	wantKeys := map[string]bool{}
	for _, w := range want {
		k := key(w.Metric)
		wantKeys[k] = true
		g, ok := gotBy[k]
		if !ok {
			report("series %s: missing entirely (%d samples)", k, len(w.Samples))
			continue
		}
		seen := map[int64]int{}
		for _, s := range g {
			seen[s.T]++
		}
		wantAt := map[int64]float64{}
		var missing, dup, wrong, extra int
		for _, s := range w.Samples {
			wantAt[s.T] = s.V
			switch seen[s.T] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
		for _, s := range g {
			v, ok := wantAt[s.T]
			if !ok {
				extra++
			} else if v != s.V && !(math.IsNaN(v) && math.IsNaN(s.V)) {
				wrong++
			}
		}
		if missing+dup+wrong+extra > 0 || len(g) != len(w.Samples) {
			report("series %s: want %d samples, got %d: %d missing, %d duplicated, %d unexpected, %d wrong value",
				k, len(w.Samples), len(g), missing, dup, extra, wrong)
		}
	}
	for k := range gotBy {
		if !wantKeys[k] {
			report("series %s: unexpected", k)
		}
	}
	fmt.Fprintf(&b, "%d problems; full diff (-want +got):\n%s", problems, Truncate(full, 6000))
	return b.String()
}

// SortVector orders the result of decoded vector or matrix data by metric
// labels, for answers whose order the Prometheus API does not promise.
func SortVector(data any) any {
	m, ok := data.(map[string]any)
	if !ok {
		return data
	}
	result, ok := m["result"].([]any)
	if !ok {
		return data
	}
	sort.SliceStable(result, func(i, j int) bool { return metricKey(result[i]) < metricKey(result[j]) })
	return data
}

// SortSeriesList orders a decoded /series answer (a list of label maps).
func SortSeriesList(data any) any {
	list, ok := data.([]any)
	if !ok {
		return data
	}
	sort.SliceStable(list, func(i, j int) bool { return labelMapKey(list[i]) < labelMapKey(list[j]) })
	return data
}

func metricKey(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	return labelMapKey(m["metric"])
}

func labelMapKey(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		s, _ := m[n].(string)
		b.WriteString(n + "\x00" + s + "\x00")
	}
	return b.String()
}
