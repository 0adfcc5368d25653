package clustertest

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pushTimeout bounds one push of a Writer.
const pushTimeout = 30 * time.Second

// WriterOptions configures a Writer.
type WriterOptions struct {
	// Tenant is sent as X-Scope-OrgID.
	Tenant string
	// Metric is the __name__ of every series; empty means "clustertest_steady".
	Metric string
	// Series is how many series each push carries, one sample each; zero
	// means 100.
	Series int
	// Interval is the time between the starts of two pushes; zero means
	// 100ms. A push that takes longer delays the next one (pushes are
	// sequential, as one remote-write shard's are).
	Interval time.Duration
}

// PushResult is the outcome of one push of a Writer.
type PushResult struct {
	// Seq numbers the pushes from 0; T is the timestamp (Unix ms) of the one
	// sample of every series in the push.
	Seq int
	T   int64
	// Sent and Answered bound the push in wall-clock time.
	Sent, Answered time.Time
	// Status is the HTTP status, 0 on a transport error (Err).
	Status int
	Body   string
	Err    string
}

// Acked reports whether the push was acknowledged (2xx).
func (r PushResult) Acked() bool { return r.Status >= 200 && r.Status < 300 }

func (r PushResult) String() string {
	if r.Err != "" {
		return fmt.Sprintf("push %d (t=%d, sent %s): error %s", r.Seq, r.T, r.Sent.Format("15:04:05.000"), r.Err)
	}
	return fmt.Sprintf("push %d (t=%d, sent %s): %d %s", r.Seq, r.T, r.Sent.Format("15:04:05.000"), r.Status, Truncate(strings.TrimSpace(r.Body), 300))
}

// Writer pushes one sample per series every interval to one process, like a
// steady Prometheus remote-write shard, and records which pushes were
// acknowledged. Sample seq of series s has timestamp T of push seq (strictly
// increasing) and value Value(s, seq), so the expected content of the store
// follows from the results. Its methods are safe for concurrent use.
type Writer struct {
	opts   WriterOptions
	target *Process
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	results []PushResult // guarded by mu
}

// StartWriter starts pushing to target in a goroutine until Stop (or the end
// of the test).
func StartWriter(t testing.TB, target *Process, opts WriterOptions) *Writer {
	t.Helper()
	if opts.Metric == "" {
		opts.Metric = "clustertest_steady"
	}
	if opts.Series <= 0 {
		opts.Series = 100
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{opts: opts, target: target, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	t.Cleanup(func() { w.Stop() })
	return w
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	var last int64
	for seq := 0; ; seq++ {
		ts := max(time.Now().UnixMilli(), last+1)
		last = ts
		r := PushResult{Seq: seq, T: ts, Sent: time.Now()}
		// Stop lets the push in flight finish, so that every result is a
		// real answer; the timeout only bounds a hung server.
		pctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		code, body, err := w.target.TryPush(pctx, w.opts.Tenant, w.Batch(seq, ts))
		cancel()
		r.Answered, r.Status, r.Body = time.Now(), code, body
		if err != nil {
			r.Err = err.Error()
			r.Status = 0
		}
		w.mu.Lock()
		w.results = append(w.results, r)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Stop stops the writer and waits for the answer to its push in flight; it
// is idempotent.
// It returns every result.
func (w *Writer) Stop() []PushResult {
	w.cancel()
	<-w.done
	return w.Results()
}

// Results returns a copy of the results so far, in push order.
func (w *Writer) Results() []PushResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]PushResult(nil), w.results...)
}

// Metric is the __name__ of the writer's series.
func (w *Writer) Metric() string { return w.opts.Metric }

// Labels returns the labels of series s.
func (w *Writer) Labels(s int) []Label {
	return Labels("__name__", w.opts.Metric, "series", fmt.Sprintf("s%04d", s))
}

// Value is the value of sample seq of series s: distinct per series and
// push, exact in float64.
func (w *Writer) Value(s, seq int) float64 { return float64(s*1_000_000 + seq) }

// Batch returns the request of push seq at timestamp ts: one sample for
// every series. Pushing it again (a retry) is what Prometheus would do.
func (w *Writer) Batch(seq int, ts int64) []TimeSeries {
	out := make([]TimeSeries, w.opts.Series)
	for s := range out {
		out[s] = TimeSeries{Labels: w.Labels(s), Samples: []Sample{{T: ts, V: w.Value(s, seq)}}}
	}
	return out
}

// Expect is what the store must hold for the writer's series: every sample
// of Must, and otherwise only samples of May (pushes whose outcome was an
// error or unknown: a failed push may have reached some replicas).
type Expect struct {
	Must, May []PushResult
}

// ExpectFrom splits results: acknowledged pushes are Must, the others May.
func ExpectFrom(results []PushResult) Expect {
	var e Expect
	for _, r := range results {
		if r.Acked() {
			e.Must = append(e.Must, r)
		} else {
			e.May = append(e.May, r)
		}
	}
	return e
}

// CheckStored queries q (as the writer's tenant) for every raw sample of the
// writer's series up to the last pushed timestamp of e, and returns "" when
// the store holds exactly what e says: every sample of e.Must, no sample
// outside e.Must and e.May, each value right, no duplicate, no other series.
// It also returns how many samples the answer held. A query error is a
// difference.
func (w *Writer) CheckStored(t testing.TB, q *Process, e Expect) (diff string, samples int) {
	t.Helper()
	all := append(append([]PushResult(nil), e.Must...), e.May...)
	if len(all) == 0 {
		return "", 0
	}
	first, last := all[0].T, all[0].T
	for _, r := range all {
		first, last = min(first, r.T), max(last, r.T)
	}
	sel := fmt.Sprintf("{__name__=%q}[%dms]", w.opts.Metric, last-first+1)
	code, body := q.Query(t, w.opts.Tenant, "/prometheus/api/v1/query", url.Values{
		"query": {sel}, "time": {FormatAPITime(last)},
	})
	if code != 200 {
		return fmt.Sprintf("query %s at %d answered %d: %s", sel, last, code, Truncate(string(body), 2000)), 0
	}
	got := MatrixData(t, code, body)
	return w.diffStored(e, got), TotalSamples(got)
}

func (w *Writer) diffStored(e Expect, got []Series) string {
	must := map[int64]int{} // T -> seq
	may := map[int64]int{}
	for _, r := range e.Must {
		must[r.T] = r.Seq
	}
	for _, r := range e.May {
		may[r.T] = r.Seq
	}
	var b strings.Builder
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			fmt.Fprintf(&b, format+"\n", args...)
		}
	}
	bySeries := map[string][]Sample{}
	for _, s := range got {
		if s.Metric["__name__"] != w.opts.Metric || len(s.Metric) != 2 {
			report("unexpected series %v (%d samples)", s.Metric, len(s.Samples))
			continue
		}
		bySeries[s.Metric["series"]] = s.Samples
	}
	for s := range w.opts.Series {
		name := fmt.Sprintf("s%04d", s)
		samples, ok := bySeries[name]
		if !ok && len(must) > 0 {
			report("series %s: missing entirely (%d acknowledged samples)", name, len(must))
			continue
		}
		seen := map[int64]int{}
		var missing []int64
		var dup, extra, wrong int
		for _, smp := range samples {
			seen[smp.T]++
			seq, ok := must[smp.T]
			if !ok {
				seq, ok = may[smp.T]
			}
			switch {
			case !ok:
				extra++
			case smp.V != w.Value(s, seq):
				wrong++
			}
		}
		for ts := range must {
			if seen[ts] == 0 {
				missing = append(missing, ts)
			}
		}
		for _, n := range seen {
			if n > 1 {
				dup++
			}
		}
		if len(missing)+dup+extra+wrong > 0 {
			sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
			report("series %s: %d samples: %d acknowledged missing %v, %d duplicated, %d never pushed, %d wrong value",
				name, len(samples), len(missing), firstN(missing, 5), dup, extra, wrong)
		}
	}
	if problems == 0 {
		return ""
	}
	fmt.Fprintf(&b, "%d problems (%d acknowledged pushes, %d unacknowledged)", problems, len(e.Must), len(e.May))
	return b.String()
}

func firstN(ts []int64, n int) []int64 {
	if len(ts) > n {
		return ts[:n]
	}
	return ts
}

// RequireAllAcked fails the test, listing the first failures, unless every
// result is a 2xx.
func RequireAllAcked(t testing.TB, results []PushResult) {
	t.Helper()
	var bad []string
	for _, r := range results {
		if !r.Acked() {
			bad = append(bad, r.String())
		}
	}
	require.Empty(t, bad, "%d of %d pushes not acknowledged; first: %v", len(bad), len(results), firstStrings(bad, 10))
}

func firstStrings(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TotalSamples counts the samples of ss.
func TotalSamples(ss []Series) int {
	n := 0
	for _, s := range ss {
		n += len(s.Samples)
	}
	return n
}
