package ingester

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// walContent is what the WAL of a data dir holds (last checkpoint and the
// segments after it): per tenant, the label strings of its series records
// and the times of their samples.
type walContent map[string]map[string][]int64

// readWAL decodes the WAL under dir as replay would read it.
func readWAL(t testing.TB, dir string) walContent {
	t.Helper()
	walDir := filepath.Join(dir, walDirName)
	var ranges []wlog.SegmentRange
	cpDir, cpIdx, err := wlog.LastCheckpoint(walDir)
	if errors.Is(err, record.ErrNotFound) {
		cpIdx = -1
	} else {
		require.NoError(t, err)
		ranges = append(ranges, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1})
	}
	first, last, err := wlog.Segments(walDir)
	require.NoError(t, err)
	if first >= 0 {
		ranges = append(ranges, wlog.SegmentRange{Dir: walDir, First: max(first, cpIdx+1), Last: last})
	}
	out := walContent{}
	type owner struct{ tenant, lset string }
	refs := map[chunks.HeadSeriesRef]owner{}
	dec := record.NewDecoder(nil, nil)
	for _, r := range ranges {
		rc, err := wlog.NewSegmentsRangeReader(r)
		require.NoError(t, err)
		rd := wlog.NewReader(rc)
		for rd.Next() {
			rec := rd.Record()
			switch dec.Type(rec) {
			case record.Series:
				ss, err := dec.Series(rec, nil)
				require.NoError(t, err)
				for _, s := range ss {
					id := s.Labels.Get(tenantLabel)
					require.NotEmpty(t, id, "every series record carries its tenant")
					o := owner{id, withoutTenant(s.Labels).String()}
					refs[s.Ref] = o
					if out[id] == nil {
						out[id] = map[string][]int64{}
					}
					if _, ok := out[id][o.lset]; !ok {
						out[id][o.lset] = []int64{} // Present, even without samples.
					}
				}
			case record.Samples, record.SamplesV2:
				smps, err := dec.Samples(rec, nil)
				require.NoError(t, err)
				for _, s := range smps {
					if o, ok := refs[s.Ref]; ok {
						out[o.tenant][o.lset] = append(out[o.tenant][o.lset], s.T)
					}
				}
			}
		}
		require.NoError(t, rd.Err())
		require.NoError(t, rc.Close())
	}
	return out
}

// TestSharedWAL_ManyTenantsInterleaved pushes many tenants in interleaved
// rounds into the one WAL, with flushes and truncations in between, and
// crashes twice: every tenant's samples come back exactly, and no tenant
// has a file of its own.
func TestSharedWAL_ManyTenantsInterleaved(t *testing.T) {
	const tenants, seriesPer, rounds = 40, 3, 150
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = walPageSize // Many segments, shared by tenants.
	ing := startIngester(t, cfg, withClock)
	want := map[string]map[string][]sample{}
	for k := range tenants {
		want[fmt.Sprintf("t%02d", k)] = map[string][]sample{}
	}
	pushRound := func(ing *Ingester, round int) {
		for k := range tenants {
			id := fmt.Sprintf("t%02d", k)
			var tss []*arguspb.TimeSeries
			for n := range seriesPer {
				// Every tenant has the same label sets: only the tenant tells them apart.
				lbls := metricName(n)
				smp := sample{int64(round) * 15_000, float64(k*1_000_000 + n*1000 + round)}
				tss = append(tss, ts(lbls, smp))
				want[id][lstr(lbls...)] = append(want[id][lstr(lbls...)], smp)
			}
			require.Zero(t, push(t, ing, id, tss...).RejectedSamples)
		}
	}
	requireAll := func(ing *Ingester) {
		t.Helper()
		for id, w := range want {
			requireSamples(t, w, queryAll(t, ing, id, 0, math.MaxInt64))
		}
	}
	for round := range rounds / 2 {
		pushRound(ing, round)
		if round%50 == 49 {
			truncateTenants(t, ing) // Persists the cut chunks, checkpoints.
		}
	}
	ing2 := restart(t, ing, withClock)
	requireAll(ing2)
	for round := rounds / 2; round < rounds; round++ {
		pushRound(ing2, round)
		if round%60 == 0 {
			truncateTenants(t, ing2)
		}
	}
	ing3 := restart(t, ing2, withClock)
	requireAll(ing3)

	// Refs are unique across tenants, and the data dir holds no file per tenant.
	seen := map[chunks.HeadSeriesRef]string{}
	for _, h := range ing3.tenantList() {
		h.series.forEach(func(s *memSeries) {
			prev, dup := seen[s.ref]
			require.False(t, dup, "ref %d of %s also belongs to %s", s.ref, h.id, prev)
			seen[s.ref] = h.id
		})
	}
	require.Len(t, seen, tenants*seriesPer)
	entries, err := os.ReadDir(ing3.cfg.Dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{walDirName, dbDir}, names)
}

// TestReplay_SeriesRecordsOutOfRefOrder: series records reach the WAL in
// the order pushes log them, not in ref order; replay still indexes them
// in sorted postings.
func TestReplay_SeriesRecordsOutOfRefOrder(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	push(t, ing, "t1", ts([]string{"__name__", "first"}, sample{1, 1}))
	h := ing.getTenant("t1")
	early := labelsOf("__name__", "m", "i", "early")
	s, err := h.getOrCreate(hashLabels(early), early, nil, math.MaxInt64) // Created, not logged yet, as by a push that lost the race.
	require.NoError(t, err)
	push(t, ing, "t1", ts([]string{"__name__", "m", "i", "late"}, sample{1, 1}))
	push(t, ing, "t1", ts([]string{"__name__", "m", "i", "early"}, sample{2, 2}))
	require.Less(t, s.ref, ing.getTenant("t1").series.getByHash(lsetHash("__name__", "m", "i", "late"), labelsOf("__name__", "m", "i", "late")).ref)

	ing2 := restart(t, ing)
	want := map[string][]sample{
		lstr("__name__", "m", "i", "early"): {{2, 2}},
		lstr("__name__", "m", "i", "late"):  {{1, 1}},
	}
	// Two matchers: their postings are intersected, which needs sorted lists.
	requireSamples(t, want, queryAll(t, ing2, "t1", 0, 10,
		&arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "m"},
		&arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "i", Value: "early|late"}))
}

// TestStarting_RefusesPerTenantLayout: a data dir of the per-tenant layout
// is refused with a message that says what to do, and left untouched.
func TestStarting_RefusesPerTenantLayout(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tenants", "team-a", "wal"), 0o777))
	ing, err := New(testConfig(t, dir), Deps{})
	require.NoError(t, err)
	err = ing.Starting(t.Context())
	require.ErrorContains(t, err, "per-tenant layout")
	require.ErrorContains(t, err, filepath.Join(dir, "tenants"))
	_, err = os.Stat(filepath.Join(dir, walDirName))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing is created next to the old layout")
}

// TestPush_ReservedTenantLabel: the label that carries the tenant in the
// WAL is refused in pushes, so that a series cannot pose as another
// tenant's at replay.
func TestPush_ReservedTenantLabel(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	resp := push(t, ing, "t1",
		ts([]string{"__argus_tenant__", "t2", "__name__", "m"}, sample{1, 1}),
		ts([]string{"__name__", "ok"}, sample{1, 1}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_INVALID_LABELS, resp.Rejected[0].Reason)
	require.Contains(t, resp.Rejected[0].Message, "reserved")
	ing2 := restart(t, ing)
	requireSamples(t, map[string][]sample{lstr("__name__", "ok"): {{1, 1}}}, queryAll(t, ing2, "t1", 0, 10))
	require.Empty(t, queryAll(t, ing2, "t2", 0, 10))
}

// walTimes returns the sorted sample times of tenant's series lset in c.
func (c walContent) times(tenant string, lbls ...string) []int64 {
	out := slices.Clone(c[tenant][lstr(lbls...)])
	slices.Sort(out)
	return out
}

// TestSyncEveryPush_GroupCommit: with -ingester.wal-sync-period=0, the
// pushes of several tenants that log while an fsync runs share one fsync,
// and each is acknowledged only after it.
func TestSyncEveryPush_GroupCommit(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WALSyncPeriod = 0
	ing := startIngester(t, cfg)
	a := []string{"__name__", "a"}
	push(t, ing, "t0", ts(a, sample{1, 1}))
	fsyncs := testutil.ToFloat64(ing.metrics.walFsyncs)
	require.InDelta(t, 1, fsyncs, 0)

	ing.wal.syncMu.Lock() // As if an fsync were running.
	logged := func() uint64 {
		ing.wal.mu.Lock()
		defer ing.wal.mu.Unlock()
		return ing.wal.logged
	}
	before := logged()
	const pushers = 3
	done := make(chan error, pushers)
	for k := range pushers {
		go func() {
			_, err := ing.Push(tenantCtx(fmt.Sprintf("t%d", k+1)), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1, 1})}})
			done <- err
		}()
	}
	require.Eventually(t, func() bool { return logged() == before+pushers }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a push was acknowledged before its fsync: %v", err)
	default:
	}
	ing.wal.syncMu.Unlock()
	for range pushers {
		require.NoError(t, <-done)
	}
	require.InDelta(t, fsyncs+1, testutil.ToFloat64(ing.metrics.walFsyncs), 0, "one fsync for the three pushes")
	require.False(t, ing.wal.dirty)
}

// TestQuery_TenantWithoutHead: a tenant whose every series was persisted
// and left the head (and the WAL) has no head after a restart; its reads
// are served from the DB alone, without creating a head.
func TestQuery_TenantWithoutHead(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, withClock)
	a := []string{"__name__", "a", "job", "j"}
	push(t, ing, "t1", ts(a, seq(0, 1000, 10)...))
	clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
	truncateTenants(t, ing) // Cut idle, persisted, removed from the head.
	truncateTenants(t, ing) // Its series record leaves the WAL.
	require.Empty(t, readWAL(t, cfg.Dir)["t1"])

	ing2 := restart(t, ing, withClock)
	require.Nil(t, ing2.getTenant("t1"))
	requireSamples(t, map[string][]sample{lstr(a...): seq(0, 1000, 10)}, queryAll(t, ing2, "t1", 0, math.MaxInt64))
	names, err := ing2.LabelNames(tenantCtx("t1"), &arguspb.LabelNamesRequest{MinTimeMs: -5000, MaxTimeMs: 5000})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "job"}, names.Names)
	values, err := ing2.LabelValues(tenantCtx("t1"), &arguspb.LabelValuesRequest{Name: "job", MinTimeMs: -5000, MaxTimeMs: -1})
	require.NoError(t, err)
	require.Empty(t, values.Values)
	require.Nil(t, ing2.getTenant("t1"), "reads create no head")
}

// TestSyncEveryPush_GroupCommitOneTenant: the concurrent pushes of one
// tenant share an fsync too: none holds the tenant's appendMu while it
// waits for its fsync, and none is acknowledged before one covers it.
func TestSyncEveryPush_GroupCommitOneTenant(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WALSyncPeriod = 0
	ing := startIngester(t, cfg)
	push(t, ing, "t1", ts([]string{"__name__", "first"}, sample{1, 1}))
	fsyncs := testutil.ToFloat64(ing.metrics.walFsyncs)

	ing.wal.syncMu.Lock() // As if an fsync were running.
	logged := func() uint64 {
		ing.wal.mu.Lock()
		defer ing.wal.mu.Unlock()
		return ing.wal.logged
	}
	before := logged()
	const pushers = 8
	done := make(chan error, pushers)
	for k := range pushers {
		go func() {
			_, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				ts([]string{"__name__", "m", "k", strconv.Itoa(k)}, sample{1, float64(k)}),
			}})
			done <- err
		}()
	}
	// Every push of the one tenant gets through its appendMu and logs while
	// the fsync "runs".
	require.Eventually(t, func() bool { return logged() == before+pushers }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a push was acknowledged before its fsync: %v", err)
	default:
	}
	ing.wal.syncMu.Unlock()
	for range pushers {
		require.NoError(t, <-done)
	}
	require.InDelta(t, fsyncs+1, testutil.ToFloat64(ing.metrics.walFsyncs), 0, "one fsync for the eight pushes")
	want := map[string][]sample{lstr("__name__", "first"): {{1, 1}}}
	for k := range pushers {
		want[lstr("__name__", "m", "k", strconv.Itoa(k))] = []sample{{1, float64(k)}}
	}
	requireSamples(t, want, queryAll(t, restart(t, ing), "t1", 0, 10))
}

// TestSyncEveryPush_SegmentSwitch: a push acknowledged with
// -ingester.wal-sync-period=0 is durable even when the WAL switched
// segments between its write and its fsync (wlog fsyncs the segment it
// leaves in the background): the fsync covers every segment written since
// the last one.
func TestSyncEveryPush_SegmentSwitch(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WALSyncPeriod = 0
	ing := startIngester(t, cfg)
	push(t, ing, "t1", ts([]string{"__name__", "a"}, sample{1, 1}))
	ing.wal.syncMu.Lock()
	firstSeg := ing.wal.syncedSeg
	done := make(chan error, 1)
	go func() {
		_, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts([]string{"__name__", "a"}, sample{2, 2})}})
		done <- err
	}()
	require.Eventually(t, func() bool {
		ing.wal.mu.Lock()
		defer ing.wal.mu.Unlock()
		return ing.wal.dirty
	}, 10*time.Second, time.Millisecond)
	// A switch after the push's write, before its fsync.
	ing.wal.mu.Lock()
	_, err := ing.wal.wl.NextSegment()
	ing.wal.mu.Unlock()
	require.NoError(t, err)
	fsyncs := testutil.ToFloat64(ing.metrics.walFsyncs)
	ing.wal.syncMu.Unlock()
	require.NoError(t, <-done)
	require.Equal(t, firstSeg+1, ing.wal.syncedSeg)
	require.InDelta(t, fsyncs+2, testutil.ToFloat64(ing.metrics.walFsyncs), 0, "the segment left and the current one")
}
