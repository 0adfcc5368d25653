package querier

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeHeap drives a heapReleaser: the heap's statistics, the clock, and
// the releases scheduled (run only when the test says).
type fakeHeap struct {
	heapStats
	now       time.Time
	scheduled []func()
	at        []time.Time // when each of scheduled is due
	delays    []time.Duration
	released  int
}

func (f *fakeHeap) releaser() *heapReleaser {
	return &heapReleaser{
		statsFn:   func() heapStats { return f.heapStats },
		releaseFn: func() { f.released++ },
		nowFn:     func() time.Time { return f.now },
		afterFn: func(d time.Duration, run func()) {
			f.scheduled = append(f.scheduled, run)
			f.at = append(f.at, f.now.Add(d))
			f.delays = append(f.delays, d)
		},
	}
}

// runScheduled runs the releases scheduled so far.
func (f *fakeHeap) runScheduled() {
	runs := f.scheduled
	f.scheduled, f.at, f.delays = nil, nil, nil
	for _, run := range runs {
		run()
	}
}

// runDue runs the scheduled releases that are due by now.
func (f *fakeHeap) runDue() {
	var runs []func()
	for k := 0; k < len(f.scheduled); k++ {
		if !f.at[k].After(f.now) {
			runs = append(runs, f.scheduled[k])
			f.scheduled = append(f.scheduled[:k], f.scheduled[k+1:]...)
			f.at = append(f.at[:k], f.at[k+1:]...)
			f.delays = append(f.delays[:k], f.delays[k+1:]...)
			k--
		}
	}
	for _, run := range runs {
		run()
	}
}

// query runs one query on r that allocates alloc bytes and lasts d, the
// clock moving a second at a time with the due releases run.
func (f *fakeHeap) query(r *heapReleaser, alloc uint64, d time.Duration) bool {
	before := r.queryStarted()
	for end := f.now.Add(d); f.now.Before(end); {
		f.now = f.now.Add(time.Second)
		f.runDue()
	}
	f.allocated += alloc
	return r.queryEnded(before)
}

// wait moves the clock by d, a second at a time, running the due releases.
func (f *fakeHeap) wait(d time.Duration) {
	for end := f.now.Add(d); f.now.Before(end); {
		f.now = f.now.Add(time.Second)
		f.runDue()
	}
}

func TestHeapReleaser(t *testing.T) {
	f := &fakeHeap{heapStats: heapStats{retained: 400 << 20}, now: time.Unix(1000, 0)}
	r := f.releaser()

	// Allocations under either threshold: nothing.
	require.False(t, f.query(r, releaseMinAlloc-1, 0), "allocated less than releaseMinAlloc")
	f.retained = 1000 << 20
	require.False(t, f.query(r, 200<<20, 0), "allocated less than a quarter of the heap")

	// A query that allocated 64 MiB and a quarter of the heap: one
	// release, after the quiet period.
	f.retained = 400 << 20
	require.True(t, f.query(r, 100<<20, 0))
	require.Equal(t, []time.Duration{releaseQuiet}, f.delays)
	f.wait(releaseQuiet - time.Second)
	require.Zero(t, f.released, "released before the quiet period")
	f.wait(time.Second)
	require.Equal(t, 1, f.released)

	// One soon after the release: when the interval is over.
	f.wait(time.Second)
	require.True(t, f.query(r, 100<<20, 0))
	require.Equal(t, []time.Duration{releaseMinInterval - time.Second}, f.delays)
	f.wait(releaseMinInterval)
	require.Equal(t, 2, f.released)
	require.Zero(t, r.open)
}

// TestHeapReleaser_WaitsForQuiet: a release never runs while a query is
// open or less than releaseQuiet after one ended, so a burst of large
// queries back to back (here 40 s of them, past releaseMinInterval) is
// released once, after it; a stream that never pauses is released
// releaseMaxWait after it asked.
func TestHeapReleaser_WaitsForQuiet(t *testing.T) {
	f := &fakeHeap{heapStats: heapStats{retained: 400 << 20}, now: time.Unix(1000, 0)}
	r := f.releaser()

	// A query open when the release falls due holds it back.
	require.True(t, f.query(r, 100<<20, 0))
	before := r.queryStarted()
	f.wait(releaseQuiet + 3*time.Second)
	require.Zero(t, f.released, "released while a query is open")
	f.allocated += 1 << 20
	r.queryEnded(before)
	f.wait(releaseQuiet - time.Second)
	require.Zero(t, f.released, "released before the quiet period after the last query")
	f.wait(time.Second)
	require.Equal(t, 1, f.released)

	// A burst of large queries back to back, then quiet.
	f.wait(time.Minute)
	start := f.now
	for f.now.Sub(start) < 40*time.Second {
		require.True(t, f.query(r, 100<<20, 2*time.Second))
	}
	require.Equal(t, 1, f.released, "released during the burst")
	f.wait(releaseQuiet)
	require.Equal(t, 2, f.released)

	// A stream that never pauses: releaseMaxWait after the first ask.
	f.wait(time.Minute)
	start = f.now
	for f.released == 2 && f.now.Sub(start) < 3*releaseMaxWait {
		f.query(r, 100<<20, 2*time.Second)
	}
	require.Equal(t, 3, f.released)
	require.LessOrEqual(t, f.now.Sub(start), releaseMaxWait+2*time.Second)
	require.GreaterOrEqual(t, f.now.Sub(start), releaseMaxWait)
}

// TestQuerierCloseReleasesHeapGrowth: a querier notes the bytes allocated
// when it is created and asks for a release when it is closed, if the
// query allocated much; the release waits for the queriers still open.
func TestQuerierCloseReleasesHeapGrowth(t *testing.T) {
	f := &fakeHeap{heapStats: heapStats{allocated: 1 << 30, retained: 100 << 20}, now: time.Unix(1000, 0)}
	q := newTestQueryable(t, nil, nil) // No call reaches the source.
	q.release = heapReleaser{          // Not yet used: copying it is safe.
		statsFn:   func() heapStats { return f.heapStats },
		releaseFn: func() { f.released++ },
		nowFn:     func() time.Time { return f.now },
		afterFn:   func(_ time.Duration, run func()) { f.scheduled = append(f.scheduled, run) },
	}

	small, err := q.ChunkQuerier(0, 1000)
	require.NoError(t, err)
	f.allocated += 1 << 20
	require.NoError(t, small.Close())
	require.Empty(t, f.scheduled, "a query that allocated little")

	large, err := q.ChunkQuerier(0, 1000)
	require.NoError(t, err)
	other, err := q.ChunkQuerier(0, 1000) // Open while large closes.
	require.NoError(t, err)
	f.allocated += 200 << 20 // What the query fetched.
	require.NoError(t, large.Close())
	f.now = f.now.Add(releaseQuiet)
	f.runScheduled()
	require.Zero(t, f.released, "released while a querier is open")
	require.NoError(t, other.Close())
	f.now = f.now.Add(releaseQuiet)
	f.runScheduled()
	require.Equal(t, 1, f.released)
}
