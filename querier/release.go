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
// heapReleaser returns that memory after a query that needed much of it:
// a querier notes the bytes the process has allocated when it is created
// and, when it is closed, if the process allocated at least
// releaseMinAlloc, and a releaseAllocDivisor-th of the heap it retains,
// meanwhile, asks for one debug.FreeOSMemory (a full GC, then every free
// page back to the OS) releaseDelay later, when the caller has encoded its
// answer and dropped the fetched series. (The allocations of concurrent
// pushes count too: under heavy ingestion a query asks more often, and
// the interval below bounds what that costs.) A query that asks while a
// release is pending postpones it to its own end plus releaseDelay, so
// that the release runs after the last query of a burst rather than in the
// middle of the next one; but never more than releaseMinInterval after it
// was first asked for, and releases are at least releaseMinInterval apart,
// so a stream of large queries costs at most one forced GC per interval (a
// stream that large triggers GCs of its own anyway).
const (
	releaseMinAlloc     = 64 << 20
	releaseAllocDivisor = 4
	releaseDelay        = 2 * time.Second
	releaseMinInterval  = 10 * time.Second
)

// heapReleaser decides and schedules the releases of one queryable. Its
// zero value releases with debug.FreeOSMemory; tests set the hooks. Safe for
// concurrent use.
type heapReleaser struct {
	mu      sync.Mutex
	pending bool      // a release is scheduled; guarded by mu
	asked   time.Time // when the pending release was first asked for; guarded by mu
	due     time.Time // when the pending release is to run; guarded by mu
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

// queryEnded asks for a release if the process allocated enough since
// allocatedBefore (stats().allocated when the query began). It reports
// whether it asked.
func (r *heapReleaser) queryEnded(allocatedBefore uint64) bool {
	st := r.stats()
	if n := st.allocated - allocatedBefore; n < releaseMinAlloc || n < st.retained/releaseAllocDivisor {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	due := now.Add(releaseDelay)
	if next := r.lastRun.Add(releaseMinInterval); due.Before(next) {
		due = next
	}
	if r.pending {
		if limit := r.asked.Add(releaseMinInterval); due.After(limit) {
			due = limit
		}
		if due.After(r.due) {
			r.due = due // fire sees it and waits again.
		}
		return true
	}
	r.pending, r.asked, r.due = true, now, due
	r.after(due.Sub(now), r.fire)
	return true
}

// fire runs the pending release, or waits again if a query postponed it.
func (r *heapReleaser) fire() {
	r.mu.Lock()
	now := r.now()
	if now.Before(r.due) {
		r.after(r.due.Sub(now), r.fire)
		r.mu.Unlock()
		return
	}
	r.pending, r.lastRun = false, now
	r.mu.Unlock()
	if r.releaseFn != nil {
		r.releaseFn()
		return
	}
	debug.FreeOSMemory()
}
