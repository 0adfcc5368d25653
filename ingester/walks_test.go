package ingester

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// walkedMinMemoryTime is what minMemoryTime returned before its cache: a
// walk over every series.
func walkedMinMemoryTime(h *tenantHead) int64 {
	mint := noTime
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		mint = min(mint, s.firstInMemoryLocked())
		s.mu.Unlock()
	})
	return mint
}

// headWalks returns how many walks of kind the ingester's heads ran.
func headWalks(ing *Ingester, kind string) int {
	return int(testutil.ToFloat64(ing.metrics.headWalks.WithLabelValues(kind)))
}

// quietConfig is testConfig with the background loops slowed down further,
// so that only the test walks.
func quietConfig(t *testing.T) Config {
	cfg := testConfig(t, t.TempDir())
	cfg.FlushPeriod = time.Hour
	cfg.WALTruncatePeriod = time.Hour
	return cfg
}

// TestMinMemoryTime_Cached: once walked, the min time of the chunks in
// memory is answered without a walk until chunks leave memory, and stays
// exact meanwhile: an append older than every chunk lowers it (fails
// without noteAppends), a flush or a retention pass that drops chunks
// raises it (fails without noteDropped in flushBatch, in dropExpired).
func TestMinMemoryTime_Cached(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	base := clock.ms
	ing := startIngesterDeps(t, quietConfig(t), Deps{Limits: retentionLimits{"t1": day}},
		func(i *Ingester) { i.now = clock.now })
	push(t, ing, "t1", ts([]string{"__name__", "a"}, seq(base, 60_000, 10)...))
	h := ing.getTenant("t1")
	walks := headWalks(ing, "min_memory_time")

	require.Equal(t, base, h.minMemoryTime())
	require.Equal(t, base, h.minMemoryTime())
	require.Equal(t, walks+1, headWalks(ing, "min_memory_time"), "the second call is cached")

	// A new series older than every chunk in memory (within the valid window).
	push(t, ing, "t1", ts([]string{"__name__", "b"}, sample{base - 10*60_000, 1}))
	require.Equal(t, base-10*60_000, h.minMemoryTime())
	require.Equal(t, walks+1, headWalks(ing, "min_memory_time"), "an append is noted, not walked")

	// "b" then "a" persisted: the min rises to "a"'s open chunk, then noTime.
	push(t, ing, "t1", ts([]string{"__name__", "b"}, sample{base + 3*time.Hour.Milliseconds(), 2}))
	flushTenants(t, ing, keepOpenChunks)
	require.Equal(t, walkedMinMemoryTime(h), h.minMemoryTime())
	require.Equal(t, base, h.minMemoryTime())
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts([]string{"__name__", "b"}, sample{base + 3*time.Hour.Milliseconds() + 1, 3}))
	flushTenants(t, ing, cutIdleChunks)
	require.Equal(t, base+3*time.Hour.Milliseconds(), h.minMemoryTime(), "only b's open chunk is left")
	require.Equal(t, walkedMinMemoryTime(h), h.minMemoryTime())

	// Retention drops the open chunk of "b" once it is a day old.
	clock.ms = base + 3*time.Hour.Milliseconds() + int64(day/time.Millisecond) + 1000
	require.Equal(t, base+3*time.Hour.Milliseconds(), h.minMemoryTime())
	h.dropExpired(h.retentionCutoff(clock.ms))
	require.Equal(t, noTime, h.minMemoryTime())
	require.Equal(t, noTime, walkedMinMemoryTime(h))
}

// TestMinMemoryTime_ConcurrentAppends: pushes of ever older samples to new
// series while minMemoryTime runs, walking or not (as if flushes raised it
// in between); each push is counted once it returned, and afterwards the
// result agrees with a walk. Run with -race. (A walk that begins during an
// append and visits its series before it is the case noteAppends's second
// call covers; it is timing-dependent, so this test may miss its removal.)
func TestMinMemoryTime_ConcurrentAppends(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	base := clock.ms
	ing := startIngester(t, quietConfig(t), func(i *Ingester) { i.now = clock.now })
	push(t, ing, "t1", ts([]string{"__name__", "a"}, sample{base, 1}))
	h := ing.getTenant("t1")
	const n = 2000
	var pushes, walks sync.WaitGroup
	var missed []int64 // Samples pushed that a later minMemoryTime did not count.
	pushes.Go(func() {
		for k := range n {
			push(t, ing, "t1", ts([]string{"__name__", "b", "k", fmt.Sprint(k)}, sample{base - int64(k), 1}))
			if got := h.minMemoryTime(); got > base-int64(k) {
				missed = append(missed, base-int64(k))
			}
		}
	})
	stop := make(chan struct{})
	walks.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.walks.noteDropped() // As a flush would: the next call walks.
			h.minMemoryTime()
			h.minMemoryTime()
		}
	})
	pushes.Wait()
	close(stop)
	walks.Wait()
	require.Empty(t, missed)
	require.Equal(t, base-(n-1), h.minMemoryTime())
	require.Equal(t, walkedMinMemoryTime(h), h.minMemoryTime())
}

// TestCutIdleChunks_WalksOnlyWhenDue: the idle cut visits the series only
// when an open chunk can have been idle for MaxChunkIdle since the last
// visit, and still cuts each one on the first flush after it went idle
// (fails if the bound the walk leaves ignores the chunks it kept open).
func TestCutIdleChunks_WalksOnlyWhenDue(t *testing.T) {
	clock := &testClock{ms: 10 * int64(day/time.Millisecond)}
	t0 := clock.ms
	cfg := quietConfig(t)
	cfg.MaxChunkIdle = time.Minute
	ing := startIngester(t, cfg, func(i *Ingester) { i.now = clock.now })
	a, b := []string{"__name__", "a"}, []string{"__name__", "b"}
	push(t, ing, "t1", ts(a, sample{t0, 1}))
	h := ing.getTenant("t1")
	open := func(lbls []string) bool {
		s := h.series.getByLabels(labelsOf(lbls...))
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.hasOpenLocked()
	}
	walks := headWalks(ing, "idle_chunks")
	cut := func(atMs int64, wantWalk bool) {
		t.Helper()
		clock.ms = atMs
		before := headWalks(ing, "idle_chunks")
		h.flushMu.Lock()
		h.cutIdleChunks()
		h.flushMu.Unlock()
		want := before
		if wantWalk {
			want++
		}
		require.Equal(t, want, headWalks(ing, "idle_chunks"), "walk at +%d ms", atMs-t0)
	}

	cut(t0, true) // The first call walks: a's chunk is kept, its lastAppend the bound.
	require.True(t, open(a))
	cut(t0+30_000, false)
	clock.ms = t0 + 30_000
	push(t, ing, "t1", ts(b, sample{t0 + 30_000, 1}))
	cut(t0+59_000, false)
	cut(t0+61_000, true) // a is idle; b is not, and becomes the bound.
	require.False(t, open(a))
	require.True(t, open(b))
	cut(t0+80_000, false)
	cut(t0+91_000, true)
	require.False(t, open(b))
	require.Equal(t, walks+3, headWalks(ing, "idle_chunks"))

	// A clock stepped back walks again.
	clock.ms = t0 + 50_000
	push(t, ing, "t1", ts(a, sample{t0 + 100_000, 2}))
	cut(t0+50_000, true)
	require.True(t, open(a))
	cut(t0+111_000, true) // Idle since +50 s by the clock of its append.
	require.False(t, open(a))
}
