package querier

import (
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"time"
)

// A query over many series grows the heap by what it fetches and decodes
// (its chunks, labels and the engine's points): hundreds of megabytes over a
// million series. Once it ends that memory is garbage, but the Go runtime
// keeps the pages: the next GC lowers the heap goal only when something
// allocates enough to trigger it, and the scavenger then returns pages
// slowly, so the RSS of the process (a querier, or an all-in-one) stays near
// the query's peak (2.5x its RSS before a set of such queries, measured)
// long after it answered.
//
// heapReleaser returns that memory once the queries that needed it are
// over: a querier notes, when it is created, that a query is open and the
// bytes the process has allocated; when it is closed, if the process
// allocated at least releaseMinAlloc, and a releaseAllocDivisor-th of the
// heap it retains, meanwhile, it asks for one debug.FreeOSMemory (a full
// GC, then every free page back to the OS). (The allocations of concurrent
// pushes count too.)
//
// The release waits for a quiet spell: no query open, and none closed for
// releaseQuiet. A release in the middle of a burst of queries costs twice:
// the forced GC competes with the query that is running, and every page it
// returns is faulted back in by the next query (measured at a million
// series: a fifth of a query's CPU, on the appends into fresh memory;
// docs/benchmarks.md). The wait is capped at releaseMaxWait after the
// release was asked for, so that a stream of queries that never pauses (or
// a querier never closed) still releases, and releases are at least
// releaseMinInterval apart. The RSS then falls back within
// releaseQuiet+releaseMinInterval of the end of a burst, long before an
// operator looks.
const (
	releaseMinAlloc     = 64 << 20
	releaseAllocDivisor = 4
	releaseQuiet        = 5 * time.Second
	releaseMaxWait      = time.Minute
	releaseMinInterval  = 10 * time.Second
)

// heapReleaser decides and schedules the releases of one queryable. Its
// zero value releases with debug.FreeOSMemory; tests set the hooks. Safe for
// concurrent use.
type heapReleaser struct {
	mu      sync.Mutex
	open    int       // queries started and not ended; guarded by mu
	pending bool      // a release is scheduled; guarded by mu
	asked   time.Time // when the pending release was first asked for; guarded by mu
	due     time.Time // when the pending release is to run, if no query is open then; guarded by mu
	lastRun time.Time // when the last release ran; guarded by mu

	// Hooks, nil in production: the heap's statistics, the release, the
	// clock and the scheduling of a function after a delay.
	statsFn   func() heapStats
	releaseFn func()
	nowFn     func() time.Time
	afterFn   func(time.Duration, func())
}

// heapStats are the heap statistics a release is decided on.
type heapStats struct {
	allocated uint64 // bytes allocated since the process started
	retained  uint64 // bytes of heap the process holds from the OS
}

// statsMetrics are the runtime metrics of heapStats: the cumulative
// allocations, then the heap classes whose pages are resident (or at least
// not returned): live and dead objects, free spans not yet scavenged, and
// the unused tails of spans.
var statsMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/unused:bytes",
}

// stats returns the heap's statistics now.
func (r *heapReleaser) stats() heapStats {
	if r.statsFn != nil {
		return r.statsFn()
	}
	samples := make([]rtmetrics.Sample, len(statsMetrics))
	for k, name := range statsMetrics {
		samples[k].Name = name
	}
	rtmetrics.Read(samples)
	var v [4]uint64
	for k, s := range samples {
		if s.Value.Kind() == rtmetrics.KindUint64 {
			v[k] = s.Value.Uint64()
		}
	}
	return heapStats{allocated: v[0], retained: v[1] + v[2] + v[3]}
}

func (r *heapReleaser) now() time.Time {
	if r.nowFn != nil {
		return r.nowFn()
	}
	return time.Now()
}

func (r *heapReleaser) after(d time.Duration, f func()) {
	if r.afterFn != nil {
		r.afterFn(d, f)
		return
	}
	time.AfterFunc(d, f) // Ends by itself: nothing to stop.
}

// queryStarted notes a query that opens, and returns the bytes the
// process has allocated so far, for its queryEnded.
func (r *heapReleaser) queryStarted() (allocated uint64) {
	r.mu.Lock()
	r.open++
	r.mu.Unlock()
	return r.stats().allocated
}

// queryEnded notes the end of a query that queryStarted noted when the
// process had allocated allocatedBefore, postpones a pending release to
// releaseQuiet from now, and asks for one if the process allocated enough
// since allocatedBefore. It reports whether it asked.
func (r *heapReleaser) queryEnded(allocatedBefore uint64) bool {
	st := r.stats()
	n := st.allocated - allocatedBefore
	large := n >= releaseMinAlloc && n >= st.retained/releaseAllocDivisor
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open = max(r.open-1, 0)
	now := r.now()
	due := now.Add(releaseQuiet)
	if r.pending {
		if due.After(r.due) {
			r.due = due // fire sees it and waits again.
		}
		return large
	}
	if !large {
		return false
	}
	if next := r.lastRun.Add(releaseMinInterval); due.Before(next) {
		due = next
	}
	r.pending, r.asked, r.due = true, now, due
	r.after(due.Sub(now), r.fire)
	return true
}

// fire runs the pending release, or waits again while a query is open or
// one ended less than releaseQuiet ago, up to releaseMaxWait after the
// release was asked for.
func (r *heapReleaser) fire() {
	r.mu.Lock()
	now := r.now()
	if limit := r.asked.Add(releaseMaxWait); now.Before(limit) {
		if r.open > 0 && r.due.Before(now.Add(releaseQuiet)) {
			r.due = now.Add(releaseQuiet) // Checked again then; its end postpones it further.
		}
		if now.Before(r.due) {
			wake := r.due
			if wake.After(limit) {
				wake = limit
			}
			r.after(wake.Sub(now), r.fire)
			r.mu.Unlock()
			return
		}
	}
	r.pending, r.lastRun = false, now
	r.mu.Unlock()
	if r.releaseFn != nil {
		r.releaseFn()
		return
	}
	debug.FreeOSMemory()
}
