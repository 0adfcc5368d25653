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
			f.delays = append(f.delays, d)
		},
	}
}

// runScheduled runs the releases scheduled so far.
func (f *fakeHeap) runScheduled() {
	runs := f.scheduled
	f.scheduled, f.delays = nil, nil
	for _, run := range runs {
		run()
	}
}

func TestHeapReleaser(t *testing.T) {
	f := &fakeHeap{heapStats: heapStats{retained: 400 << 20}, now: time.Unix(1000, 0)}
	r := f.releaser()

	// Allocations under either threshold: nothing.
	f.allocated = releaseMinAlloc - 1
	require.False(t, r.queryEnded(0), "allocated less than releaseMinAlloc")
	f.retained, f.allocated = 1000<<20, 200<<20
	require.False(t, r.queryEnded(0), "allocated less than a quarter of the heap")

	// A query that allocated 64 MiB and a quarter of the heap: one
	// release, after the delay.
	f.retained, f.allocated = 400<<20, 100<<20
	require.True(t, r.queryEnded(0))
	require.Equal(t, []time.Duration{releaseDelay}, f.delays)
	require.Zero(t, f.released, "released before the delay")
	f.now = f.now.Add(releaseDelay)
	f.runScheduled()
	require.Equal(t, 1, f.released)

	// One soon after the release: when the interval is over.
	f.now = f.now.Add(time.Second)
	require.True(t, r.queryEnded(0))
	require.Equal(t, []time.Duration{releaseMinInterval - time.Second}, f.delays)

	// Another that ends while it is pending, but later than its due time
	// minus releaseDelay, postpones it: the timer fires, finds it early,
	// and waits again.
	f.now = f.now.Add(releaseMinInterval - 2*time.Second)
	require.True(t, r.queryEnded(0))
	f.now = f.now.Add(time.Second)
	f.runScheduled()
	require.Equal(t, 1, f.released, "ran before the end of the last query plus releaseDelay")
	require.Equal(t, []time.Duration{time.Second}, f.delays)
	f.now = f.now.Add(time.Second)
	f.runScheduled()
	require.Equal(t, 2, f.released)

	// Queries that keep ending never postpone it more than
	// releaseMinInterval after it was asked for.
	f.now = f.now.Add(time.Hour)
	asked := f.now
	require.True(t, r.queryEnded(0))
	for f.now.Sub(asked) < 3*releaseMinInterval && f.released == 2 {
		f.now = f.now.Add(time.Second)
		require.True(t, r.queryEnded(0))
		if len(f.delays) > 0 && f.now.Sub(asked) >= releaseDelay {
			f.runScheduled()
		}
	}
	require.Equal(t, 3, f.released)
	require.LessOrEqual(t, f.now.Sub(asked), releaseMinInterval)
}

// TestQuerierCloseReleasesHeapGrowth: a querier notes the bytes allocated
// when it is created and asks for a release when it is closed, if the
// query allocated much.
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
	f.allocated += 200 << 20 // What the query fetched.
	require.NoError(t, large.Close())
	f.now = f.now.Add(releaseDelay)
	f.runScheduled()
	require.Equal(t, 1, f.released)
}
