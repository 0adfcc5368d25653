package ingester

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// randomLabels returns a label set of 1-12 labels drawn from a few names and
// values, some long (a size of 255 or more is encoded on 4 bytes by
// stringlabels), some repeated across sets.
func randomLabels(rng *rand.Rand) labels.Labels {
	var b labels.ScratchBuilder
	names := []string{"__name__", "A", "a", "instance", "job", "namespace", "pod", "x", "zone", "é"}
	for _, name := range names {
		if rng.IntN(3) == 0 && name != "__name__" {
			continue
		}
		var v string
		switch rng.IntN(4) {
		case 0:
			v = fmt.Sprintf("v%d", rng.IntN(5))
		case 1:
			v = fmt.Sprintf("unique-%d", rng.Uint64())
		case 2:
			v = strings.Repeat("long", 64+rng.IntN(10)) // 256+ bytes
		default:
			v = fmt.Sprintf("%d", rng.IntN(100_000))
		}
		b.Add(name, v)
	}
	b.Sort()
	return b.Labels()
}

// TestSymbolTable_RoundTrip encodes random label sets and checks decode,
// equal, the hash, the metric name and the proto comparison of each.
func TestSymbolTable_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	ss := newStripeSeries()
	var sets []labels.Labels
	var syms []string
	for range 3000 {
		lset := randomLabels(rng)
		sets = append(sets, lset)
		syms = append(syms, ss.syms.encode(lset))
	}
	for k, lset := range sets {
		got := ss.syms.decode(syms[k])
		require.Equal(t, lset.String(), got.String())
		require.True(t, labels.Equal(lset, got))
		require.True(t, ss.syms.equal(syms[k], lset))
		require.Equal(t, hashLabels(lset), ss.syms.hashSymbols(syms[k]))
		require.Equal(t, lset.Get(labels.MetricName), ss.syms.metricName(syms[k]))
		var ls []*arguspb.Label
		lset.Range(func(l labels.Label) { ls = append(ls, &arguspb.Label{Name: l.Name, Value: l.Value}) })
		require.True(t, ss.equalProto(syms[k], ls))
		other := sets[(k+1)%len(sets)]
		if !labels.Equal(other, lset) {
			require.False(t, ss.syms.equal(syms[k], other))
			require.NotEqual(t, syms[k], ss.syms.encode(other)) // Takes uses; harmless here.
		}
		require.False(t, ss.equalProto(syms[k], ls[:len(ls)-1]), "a prefix is another label set")
		require.False(t, ss.equalProto(syms[k], append(ls, &arguspb.Label{Name: "zz", Value: "1"})))
	}
	// Equal sets share their IDs: the series map compares them as strings.
	require.Equal(t, syms[0], ss.syms.encode(sets[0]))
	require.Equal(t, labels.EmptyLabels(), ss.syms.decode(""))
}

// TestSymbolTable_ReleaseAndReuse releases label sets and checks that
// exactly the symbols no set uses are dropped, that the others still
// decode, and that freed IDs are reused before the table grows.
func TestSymbolTable_ReleaseAndReuse(t *testing.T) {
	st := newSymbolTable()
	a := st.encode(labels.FromStrings("__name__", "up", "pod", "a"))
	b := st.encode(labels.FromStrings("__name__", "up", "pod", "b"))
	require.Equal(t, 5, st.len()) // __name__, up, pod, a, b
	st.release(a)
	require.Equal(t, 4, st.len(), "a is gone, the shared symbols stay")
	require.Equal(t, labels.FromStrings("__name__", "up", "pod", "b"), st.decode(b))
	next := st.next
	c := st.encode(labels.FromStrings("__name__", "up", "pod", "c"))
	require.Equal(t, next, st.next, "c took the ID a left")
	require.Equal(t, labels.FromStrings("__name__", "up", "pod", "c"), st.decode(c))
	require.Equal(t, labels.FromStrings("__name__", "up", "pod", "b"), st.decode(b))
	st.release(b)
	st.release(c)
	require.Zero(t, st.len())
	require.Empty(t, st.ids)
	for _, u := range st.uses {
		require.Zero(t, u)
	}
}

// TestSymbolTable_Pages checks the page arithmetic: IDs map to distinct
// slots, page p holds symbolFirstPage<<p of them, and pages are filled in
// order.
func TestSymbolTable_Pages(t *testing.T) {
	seen := map[[2]uint32]bool{}
	prevPage := 0
	for id := range uint32(100_000) {
		p, off := symbolSlot(id)
		require.Less(t, off, uint32(symbolFirstPage<<p), id)
		require.GreaterOrEqual(t, p, prevPage)
		prevPage = p
		key := [2]uint32{uint32(p), off}
		require.False(t, seen[key], id)
		seen[key] = true
	}
	p, off := symbolSlot(^uint32(0))
	require.Less(t, p, symbolPages)
	require.Less(t, uint64(off), uint64(symbolFirstPage)<<p)
}

// TestSymbols_ManyTenants pushes the same label names, and values that
// differ per tenant, to many tenants: each head decodes its own series
// exactly, and its symbol table holds its own symbols only.
func TestSymbols_ManyTenants(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	const tenants = 50
	for k := range tenants {
		var tss []*arguspb.TimeSeries
		for n := range 20 {
			tss = append(tss, ts([]string{"__name__", fmt.Sprintf("m%d", n%4), "pod", fmt.Sprintf("t%d-p%d", k, n), "tenant_label", fmt.Sprint(k)}, sample{1000, float64(n)}))
		}
		require.Zero(t, push(t, ing, fmt.Sprintf("t%d", k), tss...).RejectedSamples)
	}
	for k := range tenants {
		id := fmt.Sprintf("t%d", k)
		got := queryAll(t, ing, id, 0, 2000)
		require.Len(t, got, 20, id)
		for n := range 20 {
			lset := lstr("__name__", fmt.Sprintf("m%d", n%4), "pod", fmt.Sprintf("t%d-p%d", k, n), "tenant_label", fmt.Sprint(k))
			require.Equal(t, []sample{{1000, float64(n)}}, got[lset], lset)
		}
		// 3 names, 4 metric names, 20 pods, 1 tenant_label value.
		require.Equal(t, 28, ing.getTenant(id).series.syms.len(), id)
	}
}

// TestSymbols_Churn creates series with values never seen again (pods that
// come and go), lets them go idle and be removed, many times over: the
// symbol table holds only the symbols of the series in the head, its IDs
// are reused, and every series reads back with its own labels.
func TestSymbols_Churn(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, func(i *Ingester) { i.now = clock.now })
	const perRound, rounds = 200, 8
	var maxNext uint32
	for r := range rounds {
		var tss []*arguspb.TimeSeries
		for n := range perRound {
			pod := fmt.Sprintf("pod-%d-%d", r, n)
			tss = append(tss, ts([]string{"__name__", "up", "pod", pod, "uid", "uid-" + pod}, sample{clock.ms, float64(n)}))
		}
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
		h := ing.getTenant("t1")
		got := queryAll(t, ing, "t1", clock.ms, clock.ms)
		require.Len(t, got, perRound)
		for n := range perRound {
			pod := fmt.Sprintf("pod-%d-%d", r, n)
			require.Equal(t, []sample{{clock.ms, float64(n)}}, got[lstr("__name__", "up", "pod", pod, "uid", "uid-"+pod)], pod)
		}
		// __name__, up, pod, uid, and two values per series.
		require.Equal(t, 4+2*perRound, h.series.syms.len())
		h.series.syms.mu.Lock()
		maxNext = max(maxNext, h.series.syms.next)
		h.series.syms.mu.Unlock()

		// Idle past MaxChunkIdle: the truncation persists the open chunks,
		// and the next one removes the empty series.
		clock.ms += cfg.MaxChunkIdle.Milliseconds() + 1000
		truncateTenants(t, ing)
		truncateTenants(t, ing)
		require.Zero(t, h.series.count.Load(), "round %d", r)
		require.Equal(t, 0, h.series.syms.len(), "round %d", r)
	}
	require.LessOrEqual(t, maxNext, uint32(4+2*perRound+2), "freed IDs are reused")

	// Every removed series was persisted under its own labels.
	all := queryAll(t, ing, "t1", 0, math.MaxInt64)
	require.Len(t, all, rounds*perRound)
	for r := range rounds {
		for n := range perRound {
			pod := fmt.Sprintf("pod-%d-%d", r, n)
			require.Len(t, all[lstr("__name__", "up", "pod", pod, "uid", "uid-"+pod)], 1, pod)
		}
	}

	// A last round in the head, then kill -9: replay rebuilds the series and
	// their symbols from the WAL.
	var tss []*arguspb.TimeSeries
	for n := range perRound {
		pod := fmt.Sprintf("last-%d", n)
		tss = append(tss, ts([]string{"__name__", "up", "pod", pod, "uid", "uid-" + pod}, sample{clock.ms, float64(n)}))
	}
	require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
	ing = restart(t, ing, func(i *Ingester) { i.now = clock.now })
	got := queryAll(t, ing, "t1", clock.ms, clock.ms)
	require.Len(t, got, perRound)
	for n := range perRound {
		pod := fmt.Sprintf("last-%d", n)
		require.Equal(t, []sample{{clock.ms, float64(n)}}, got[lstr("__name__", "up", "pod", pod, "uid", "uid-"+pod)], pod)
	}
	require.Equal(t, 4+2*perRound, ing.getTenant("t1").series.syms.len())
}

// TestSymbols_ReadersDuringGC reads the labels of series while GC removes
// them and new series take their symbols' IDs: a read either gets the
// series' own labels or learns it is gone, never another series' labels
// (each series' labels are a function of its pod, checked on every read).
// Run it with -race.
func TestSymbols_ReadersDuringGC(t *testing.T) {
	var now atomic.Int64
	now.Store(1_000_000)
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg, func(i *Ingester) { i.now = func() time.Time { return time.UnixMilli(now.Load()) } })
	push(t, ing, "t1", ts([]string{"__name__", "up", "pod", "seed", "uid", "uid-seed"}, sample{now.Load(), 1}))
	h := ing.getTenant("t1")
	stop := make(chan struct{})
	var reads, goneReads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h.series.forEach(func(s *memSeries) {
					lset, ok := h.series.labelsOf(s)
					if !ok {
						goneReads.Add(1)
						return
					}
					reads.Add(1)
					if pod := lset.Get("pod"); lset.Get("uid") != "uid-"+pod || lset.Get("__name__") != "up" || lset.Len() != 3 {
						panic("labels of another series: " + lset.String())
					}
				})
			}
		})
	}
	for r := range 20 {
		var tss []*arguspb.TimeSeries
		for n := range 50 {
			pod := fmt.Sprintf("p%d-%d", r, n)
			tss = append(tss, ts([]string{"__name__", "up", "pod", pod, "uid", "uid-" + pod}, sample{now.Load(), 1}))
		}
		push(t, ing, "t1", tss...)
		now.Add(cfg.MaxChunkIdle.Milliseconds() + 1000)
		truncateTenants(t, ing)
		truncateTenants(t, ing)
	}
	close(stop)
	wg.Wait()
	require.Positive(t, reads.Load())
	t.Logf("%d reads, %d of series already gone", reads.Load(), goneReads.Load())
}
