package ingester

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

const hourMs = int64(time.Hour / time.Millisecond)

// faultDB fails the Appends of the tenants in failing: a test hook for a
// storage failure of one tenant.
type faultDB struct {
	chunkDB
	mu      sync.Mutex
	failing map[string]bool
}

var errInjected = errors.New("injected append failure")

func (f *faultDB) Append(tenant string, batch []storage.Series) error {
	f.mu.Lock()
	fail := f.failing[tenant]
	f.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.chunkDB.Append(tenant, batch)
}

func (f *faultDB) set(tenant string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[tenant] = fail
}

// withFaultDB wraps the DB of ing, which has no head yet, in a faultDB.
func withFaultDB(t *testing.T, ing *Ingester) *faultDB {
	t.Helper()
	require.Empty(t, ing.tenantList())
	f := &faultDB{chunkDB: ing.db, failing: map[string]bool{}}
	ing.db = f
	return f
}

func TestPush_RefusedSampleCreatesNoSeries(t *testing.T) {
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxChunkIdle = time.Minute
	ing := startIngester(t, cfg, func(i *Ingester) { i.now = clock.now })
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	c := []string{"__name__", "c"}
	push(t, ing, "t1", ts(a, sample{10 * hourMs, 1}), ts(c, sample{10 * hourMs, 1}))

	// Too old: more than an hour before the head's max time.
	resp := push(t, ing, "t1", ts(b, sample{9*hourMs - 1, 1}, sample{8 * hourMs, 2}))
	require.Equal(t, int64(2), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)
	h := ing.getTenant("t1")
	require.Equal(t, 2, h.memorySeries())
	require.Equal(t, int64(2), ing.instanceSeries.Load())

	// c leaves the head (persisted, then idle); a sample not newer than what
	// it persisted does not bring it back.
	clock.ms += 2 * time.Minute.Milliseconds()
	push(t, ing, "t1", ts(a, sample{10*hourMs + 1, 2}))
	flushTenants(t, ing, cutIdleChunks)
	truncateTenants(t, ing)
	require.Equal(t, 1, h.memorySeries())
	resp = push(t, ing, "t1", ts(c, sample{10*hourMs - 5, 7}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	require.Contains(t, resp.Rejected[0].Message, fmt.Sprint(10*hourMs))
	require.Equal(t, 1, h.memorySeries())

	// A newer one does.
	resp = push(t, ing, "t1", ts(c, sample{10*hourMs + 5, 8}))
	require.Zero(t, resp.RejectedSamples)
	require.Equal(t, 2, h.memorySeries())
	requireSamples(t, map[string][]sample{
		lstr(a...): {{10 * hourMs, 1}, {10*hourMs + 1, 2}},
		lstr(c...): {{10 * hourMs, 1}, {10*hourMs + 5, 8}},
	}, queryAll(t, ing, "t1", 0, math.MaxInt64))
}

func TestPush_RefusedSampleTakesNoSlotOfTheLimit(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngesterDeps(t, cfg, Deps{Limits: newFakeLimits(1, 0)})
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	push(t, ing, "t1", ts(a, sample{10 * hourMs, 1}))
	// b's only sample is too old: refused as such, not as over the limit...
	resp := push(t, ing, "t1", ts(b, sample{hourMs, 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)
	// ...and a's samples still fit.
	resp = push(t, ing, "t1", ts(a, sample{10*hourMs + 1, 1}))
	require.Zero(t, resp.RejectedSamples)
	require.Equal(t, 1, ing.getTenant("t1").memorySeries())
}

func TestTenantFailure_OthersUnaffectedAndRecovers(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir())
	ing := startIngesterDeps(t, cfg, Deps{Registerer: reg})
	fault := withFaultDB(t, ing)
	a := []string{"__name__", "a"}
	// 130 samples: a finished chunk of 120 to flush, 10 in the open one.
	push(t, ing, "bad", ts(a, seqSamples(0, 130)...))
	push(t, ing, "good", ts(a, seqSamples(0, 130)...))

	fault.set("bad", true)
	ing.flushAll(t.Context(), keepOpenChunks)
	require.Equal(t, map[string]string{"bad": "append to db: " + errInjected.Error()}, ing.FailedTenants())
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.tenantFailed.WithLabelValues("bad")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.tenantFailures), 0)

	// The failed tenant is refused with a retryable error carrying its ID...
	_, err := ing.Push(tenantCtx("bad"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{200, 1})}})
	require.Equal(t, codes.Unavailable, status.Code(err), err)
	require.Contains(t, status.Convert(err).Message(), string(apierror.IngesterTenantFailed)+": tenant bad refused since")
	require.Contains(t, status.Convert(err).Message(), errInjected.Error())
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.tenantRefusals), 0)
	// ...and still readable, exact; the other tenant pushes and flushes.
	want := map[string][]sample{lstr(a...): seqSamples(0, 130)}
	requireSamples(t, want, queryAll(t, ing, "bad", 0, math.MaxInt64))
	push(t, ing, "good", ts(a, sample{200, 1}))
	require.Equal(t, 1, storedChunks(t, ing, "good"))
	require.Equal(t, 0, storedChunks(t, ing, "bad"))

	// The fault clears: the next flush persists the chunk and lifts the
	// refusal, without a restart.
	fault.set("bad", false)
	ing.flushAll(t.Context(), keepOpenChunks)
	require.Empty(t, ing.FailedTenants())
	require.Equal(t, 1, storedChunks(t, ing, "bad"))
	require.Zero(t, testutil.CollectAndCount(reg, "argus_ingester_tenant_failed"))
	push(t, ing, "bad", ts(a, sample{200, 1}))
	want[lstr(a...)] = append(want[lstr(a...)], sample{200, 1})
	requireSamples(t, want, queryAll(t, ing, "bad", 0, math.MaxInt64))
	requireSamples(t, want, queryAll(t, ing, "good", 0, math.MaxInt64))
}

// seqSamples returns n samples at 0, step 1 ms from start, value k.
func seqSamples(start int64, n int) []sample {
	out := make([]sample, n)
	for k := range out {
		out[k] = sample{start + int64(k), float64(k)}
	}
	return out
}

func TestIdleTenants_ClosedAndReopened(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxChunkIdle = time.Minute
	cfg.TenantIdleTimeout = time.Hour
	ing := startIngesterDeps(t, cfg, Deps{Registerer: reg}, func(i *Ingester) { i.now = clock.now })
	a := []string{"__name__", "a"}
	t0 := clock.ms
	push(t, ing, "pushed", ts(a, sample{t0, 1}))
	push(t, ing, "queried", ts(a, sample{t0, 1}))
	require.Len(t, ing.tenantList(), 2)

	// Both go idle and lose their series; "queried" is read meanwhile.
	clock.ms += 2 * hourMs
	queryAll(t, ing, "queried", 0, math.MaxInt64)
	flushTenants(t, ing, cutIdleChunks)
	truncateTenants(t, ing)
	require.Equal(t, []string{"queried"}, tenantIDs(ing))
	require.Zero(t, ing.getTenant("queried").memorySeries())
	require.Equal(t, 1, testutil.CollectAndCount(reg, "argus_ingester_memory_series"))
	require.Equal(t, 1, testutil.CollectAndCount(reg, "argus_ingester_samples_appended_total"))
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.tenants), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.tenantsClosed), 0)

	clock.ms += 2 * hourMs
	truncateTenants(t, ing)
	require.Empty(t, tenantIDs(ing))
	require.Zero(t, testutil.CollectAndCount(reg, "argus_ingester_memory_series"))
	require.Zero(t, testutil.CollectAndCount(reg, "argus_ingester_samples_appended_total"))
	require.Zero(t, ing.instanceSeries.Load())

	// A closed tenant is read from the DB without being opened...
	want := map[string][]sample{lstr(a...): {{t0, 1}}}
	requireSamples(t, want, queryAll(t, ing, "pushed", 0, math.MaxInt64))
	require.Empty(t, tenantIDs(ing))
	// ...and a push opens it again, knowing what it persisted.
	resp := push(t, ing, "pushed", ts(a, sample{t0, 2}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
	push(t, ing, "pushed", ts(a, sample{t0 + 1, 3}))
	want[lstr(a...)] = append(want[lstr(a...)], sample{t0 + 1, 3})
	requireSamples(t, want, queryAll(t, ing, "pushed", 0, math.MaxInt64))
	require.Equal(t, []string{"pushed"}, tenantIDs(ing))

	// A restart replays the same data: the WAL kept no record of closed heads
	// that would resurrect them wrongly.
	ing2 := restart(t, ing, func(i *Ingester) { i.now = clock.now })
	requireSamples(t, want, queryAll(t, ing2, "pushed", 0, math.MaxInt64))
	requireSamples(t, map[string][]sample{lstr(a...): {{t0, 1}}}, queryAll(t, ing2, "queried", 0, math.MaxInt64))
}

// TestIdleTenants_ClosedWhilePushing races pushes with closing: every push
// lands in an open head, whichever it resolved first.
func TestIdleTenants_ClosedWhilePushing(t *testing.T) {
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.TenantIdleTimeout = time.Hour
	ing := startIngester(t, cfg, func(i *Ingester) { i.now = clock.now })
	var wg sync.WaitGroup
	const pushes = 200
	for k := range pushes {
		lbls := []string{"__name__", fmt.Sprintf("m%d", k)}
		wg.Go(func() { push(t, ing, "t1", ts(lbls, sample{1, 1})) })
		if k%20 == 0 {
			// Closes only a head without series: none of these has lost its
			// series, so a close must refuse every head that took a push.
			ing.truncMu.Lock()
			ing.closeIdleTenants()
			ing.truncMu.Unlock()
		}
	}
	wg.Wait()
	require.Equal(t, pushes, ing.getTenant("t1").memorySeries())
	require.Len(t, queryAll(t, ing, "t1", 0, math.MaxInt64), pushes)
}

func tenantIDs(ing *Ingester) []string {
	var ids []string
	for _, h := range ing.tenantList() {
		ids = append(ids, h.id)
	}
	return ids
}

// TestIdleTenants_MemoryReturnsToBaseline opens 10,000 tenants that push and
// go idle, and checks that the heap, the goroutines and the metric series
// return to what they were before them (with the documented residual of one
// removed_series_max_time entry per tenant that ever lost a series).
func TestIdleTenants_MemoryReturnsToBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 tenants")
	}
	reg := prometheus.NewRegistry()
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxChunkIdle = time.Minute
	cfg.TenantIdleTimeout = time.Hour
	ing := startIngesterDeps(t, cfg, Deps{Registerer: reg}, func(i *Ingester) { i.now = clock.now })
	// Without fsyncs: 10,000 flushes.
	require.NoError(t, ing.db.Close())
	db, err := storage.OpenDB(filepath.Join(cfg.Dir, dbDir), storage.DBOptions{Now: clock.now, NoSync: true})
	require.NoError(t, err)
	ing.db = db

	cycle := func(prefix string, tenants int) (peakHeap uint64) {
		for k := range tenants {
			id := fmt.Sprintf("%s-%05d", prefix, k)
			push(t, ing, id, ts([]string{"__name__", "up", "job", "a"}, sample{clock.ms, 1}),
				ts([]string{"__name__", "up", "job", "b"}, sample{clock.ms, 1}))
		}
		require.Len(t, ing.tenantList(), tenants)
		peakHeap = heapAfterGC()
		clock.ms += 2 * hourMs
		flushTenants(t, ing, cutIdleChunks)
		truncateTenants(t, ing)
		require.Empty(t, ing.tenantList())
		return peakHeap
	}
	metricSeries := func() int {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}

	cycle("warm", 1000) // Pools, maps and the DB's caches reach their steady size.
	baseHeap, baseGoroutines, baseSeries := heapAfterGC(), runtime.NumGoroutine(), metricSeries()
	peak := cycle("churn", 10_000)
	heap, goroutines, series := heapAfterGC(), runtime.NumGoroutine(), metricSeries()
	t.Logf("heap: baseline %d B, with 10,000 tenants open %d B, after they closed %d B (%+d B, %.0f B per tenant); goroutines %d -> %d; metric series %d -> %d",
		baseHeap, peak, heap, int64(heap)-int64(baseHeap), float64(int64(heap)-int64(baseHeap))/10_000,
		baseGoroutines, goroutines, baseSeries, series)

	require.Equal(t, baseSeries, series)
	require.LessOrEqual(t, goroutines, baseGoroutines)
	require.Zero(t, ing.instanceSeries.Load())
	// The heads held the memory (about 3 KB a tenant of two series); the
	// closed tenants keep only their removed_series_max_time entry (about
	// 45 B in the map) and the DB's freelist grows with its file: 84 B a
	// tenant measured.
	require.Greater(t, peak, baseHeap+10_000*1000, "the open heads should have cost memory")
	require.Less(t, heap, baseHeap+10_000*150, "memory after the tenants closed")
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestInstanceLimits_MaxSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := &testClock{ms: 100 * hourMs}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxChunkIdle = time.Minute
	cfg.InstanceLimits.MaxSeries = 3
	ing := startIngesterDeps(t, cfg, Deps{Registerer: reg}, func(i *Ingester) { i.now = clock.now })
	lbls := func(n int) []string { return []string{"__name__", fmt.Sprintf("m%d", n)} }
	push(t, ing, "t1", ts(lbls(1), sample{clock.ms, 1}), ts(lbls(2), sample{clock.ms, 1}))
	push(t, ing, "t2", ts(lbls(1), sample{clock.ms, 1}))

	// A new series of any tenant is refused, whole push, retryable...
	_, err := ing.Push(tenantCtx("t2"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		ts(lbls(1), sample{clock.ms + 1, 2}), ts(lbls(9), sample{clock.ms, 1}),
	}})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), string(apierror.IngesterOverloaded)+": ingester instance limit reached: the ingester holds 3 in-memory series (-ingester.instance-limits.max-series=3)")
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.instanceLimitRefusals.WithLabelValues("max_series")), 0)
	// ...samples of existing series are not.
	push(t, ing, "t2", ts(lbls(1), sample{clock.ms + 1, 2}))

	// Once series leave memory, new ones fit again.
	clock.ms += 2 * time.Minute.Milliseconds()
	push(t, ing, "t1", ts(lbls(1), sample{clock.ms, 3}))
	flushTenants(t, ing, cutIdleChunks)
	truncateTenants(t, ing)
	require.Equal(t, int64(1), ing.instanceSeries.Load())
	push(t, ing, "t2", ts(lbls(9), sample{clock.ms, 1}))
	require.Equal(t, int64(2), ing.instanceSeries.Load())
}

func TestInstanceLimits_MaxInflightPushRequests(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.InstanceLimits.MaxInflightPushRequests = 1
	ing := startIngester(t, cfg)
	req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts([]string{"__name__", "a"}, sample{1, 1})}}
	require.NoError(t, ing.inflight.acquire()) // A push in flight.
	_, err := ing.Push(tenantCtx("t1"), req)
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), string(apierror.IngesterOverloaded)+": ingester instance limit reached: 1 push requests in flight")
	require.InDelta(t, 1, testutil.ToFloat64(ing.metrics.instanceLimitRefusals.WithLabelValues("max_inflight_push_requests")), 0)
	ing.inflight.release()
	push(t, ing, "t1", req.Timeseries...)
	require.Zero(t, ing.inflight.n.Load())
}
