package ingester

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// randomHead pushes n random series, some lacking some labels, to tenant t1
// of a new ingester and returns its head.
func randomHead(t *testing.T, rng *rand.Rand, n int) *tenantHead {
	t.Helper()
	ing := startIngester(t, testConfig(t, t.TempDir()))
	var tss []*arguspb.TimeSeries
	for k := range n {
		lbls := []string{"__name__", fmt.Sprintf("m_%d_total", rng.IntN(6))}
		for _, name := range []string{"a", "b", "job"} {
			if rng.IntN(4) > 0 { // A quarter of the series lack each label.
				lbls = append(lbls, name, randomValue(rng))
			}
		}
		lbls = append(lbls, "uniq", fmt.Sprint(k))
		tss = append(tss, ts(lbls, sample{1000, 1}))
	}
	push(t, ing, "t1", tss...)
	h := ing.getTenant("t1")
	require.NotNil(t, h)
	return h
}

var testValues = []string{"x", "y", "xy", "yx", "X", "foo", "foobar", "bar"}

func randomValue(rng *rand.Rand) string { return testValues[rng.IntN(len(testValues))] }

// randomMatcher returns a matcher of a random kind on a random label name,
// drawn to hit every branch of postingsForMatchers: equality to a value or
// to "", alternations (set matches), prefixes, case-insensitive regexps,
// .*, .+ and regexps that match "".
func randomMatcher(rng *rand.Rand) *labels.Matcher {
	names := []string{"__name__", "a", "b", "job", "missing"}
	values := []string{"", "x", "foo", ".*", ".+", "x|y", "x|y|", "foo.*", "f.+", "(?i)x", "x.*|bar", "m_1_total|m_2_total", "m_.*_total", ".*y", "nope"}
	types := []labels.MatchType{labels.MatchEqual, labels.MatchNotEqual, labels.MatchRegexp, labels.MatchNotRegexp}
	m, err := regexpMatchers.get(types[rng.IntN(len(types))], names[rng.IntN(len(names))], values[rng.IntN(len(values))])
	if err != nil {
		panic(err)
	}
	return m
}

// bruteMatch reports whether lset matches every matcher, a missing label
// being the empty value.
func bruteMatch(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// TestPostingsForMatchers_RandomEquivalence checks postingsForMatchers, the
// label names and the label values against a walk over every series, for
// random matchers of every kind on random series.
func TestPostingsForMatchers_RandomEquivalence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := randomHead(t, rng, 2000)
	var all []*memSeries
	h.series.forEach(func(s *memSeries) { all = append(all, s) })
	slices.SortFunc(all, func(a, b *memSeries) int { return int(a.ref) - int(b.ref) })
	ctx := context.Background()

	for range 3000 {
		ms := make([]*labels.Matcher, 1+rng.IntN(3))
		for k := range ms {
			ms[k] = randomMatcher(rng)
		}
		var want []promstorage.SeriesRef
		wantNames, wantValues := map[string]struct{}{}, map[string]map[string]struct{}{}
		for _, s := range all {
			if !bruteMatch(lsetOf(h.series, s), ms) {
				continue
			}
			want = append(want, promstorage.SeriesRef(s.ref))
			lsetOf(h.series, s).Range(func(l labels.Label) {
				wantNames[l.Name] = struct{}{}
				if wantValues[l.Name] == nil {
					wantValues[l.Name] = map[string]struct{}{}
				}
				wantValues[l.Name][l.Value] = struct{}{}
			})
		}
		p, err := postingsForMatchers(ctx, h.postings, ms)
		require.NoError(t, err)
		got, err := index.ExpandPostings(p)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(want), fmt.Sprint(got), "%v", ms)

		names, err := h.headNames(ctx, ms, 0, 2000)
		require.NoError(t, err)
		require.Equal(t, sortedKeys(wantNames), nonNil(names), "names %v", ms)
		for _, name := range []string{"__name__", "a", "job", "uniq", "missing"} {
			values, err := h.headValues(ctx, name, ms, 0, 2000)
			require.NoError(t, err)
			require.Equal(t, sortedKeys(wantValues[name]), nonNil(values), "values of %s %v", name, ms)
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestHeadLabels_NoMatchers checks the names and values of the whole head
// and the span rules: a range that ends before the head's oldest chunk in
// memory, or starts after its newest sample, gets nothing from the head.
func TestHeadLabels_NoMatchers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := randomHead(t, rng, 300)
	ctx := context.Background()
	names, err := h.headNames(ctx, nil, 1000, 1000)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "a", "b", "job", "uniq"}, names)
	values, err := h.headValues(ctx, "a", nil, 0, math.MaxInt64)
	require.NoError(t, err)
	want := slices.Clone(testValues)
	slices.Sort(want)
	require.Equal(t, want, values)
	for _, r := range [][2]int64{{0, 999}, {1001, 5000}, {math.MinInt64, 0}} {
		names, err := h.headNames(ctx, nil, r[0], r[1])
		require.NoError(t, err)
		require.Empty(t, names, r)
		values, err := h.headValues(ctx, "a", nil, r[0], r[1])
		require.NoError(t, err)
		require.Empty(t, values, r)
	}
}

// TestHeadSpan checks the cached span against pushes that append below the
// min time the last walk found, and against flushes that raise it.
func TestHeadSpan(t *testing.T) {
	clock := &testClock{ms: 10_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	push(t, ing, "t1", ts([]string{"__name__", "a"}, sample{5_000_000, 1}))
	h := ing.getTenant("t1")
	require.True(t, h.overlaps(5_000_000, 5_000_000))
	require.False(t, h.overlaps(0, 4_999_999)) // Walks: the head starts at 5,000,000.
	// A new series below the cached min time (but above minValidTime):
	// the request ends between floor and min time, so it walks again.
	push(t, ing, "t1", ts([]string{"__name__", "b"}, sample{4_000_000, 1}))
	require.True(t, h.overlaps(0, 4_000_000))
	require.False(t, h.overlaps(0, 3_999_999))
	// Flushing everything empties memory: after spanRefreshMs the head has
	// no span before its max time.
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + spanRefreshMs + 1
	flushTenants(t, ing, cutIdleChunks)
	require.False(t, h.overlaps(0, 4_999_999))
	require.True(t, h.overlaps(0, 5_000_000), "a range reaching the head's newest sample overlaps")
}

// TestStripeSeries_Grow inserts series from several goroutines across
// every growth of the stripes, removing some, and checks every lookup.
func TestStripeSeries_Grow(t *testing.T) {
	ss := newStripeSeries()
	const workers, perWorker = 4, maxStripes * seriesPerStripe / 2
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range perWorker {
				ref := uint64(w*perWorker + k + 1)
				s := newTestSeries(ss, ref, labelsOf("n", fmt.Sprint(ref)))
				got, ok := ss.setIfAbsent(hashLabels(lsetOf(ss, s)), s)
				if !ok || got != s || ss.getByRef(s.ref) != s || ss.getByHash(hashLabels(lsetOf(ss, s)), lsetOf(ss, s)) != s {
					panic(fmt.Sprintf("series %d lost", ref))
				}
				if ref%3 == 0 {
					ss.remove(hashLabels(lsetOf(ss, s)), s)
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, ss.table.Load().stripes, maxStripes)
	n := 0
	ss.forEach(func(*memSeries) { n++ })
	require.Equal(t, workers*perWorker-workers*perWorker/3, n)
	require.EqualValues(t, n, ss.count.Load())
	for ref := uint64(1); ref <= workers*perWorker; ref++ {
		lset := labelsOf("n", fmt.Sprint(ref))
		s := ss.getByHash(hashLabels(lset), lset)
		if ref%3 == 0 {
			require.Nil(t, s, ref)
			require.Nil(t, ss.getByRef(chunksRef(ref)), ref)
			continue
		}
		require.NotNil(t, s, ref)
		require.Same(t, s, ss.getByRef(chunksRef(ref)), ref)
	}
}

// TestMatcherCache checks that a cached matcher is reused and that the
// cache stays within its size.
func TestMatcherCache(t *testing.T) {
	c := newMatcherCache(2)
	a, err := c.get(labels.MatchRegexp, "a", "x.*")
	require.NoError(t, err)
	again, err := c.get(labels.MatchRegexp, "a", "x.*")
	require.NoError(t, err)
	require.Same(t, a, again)
	_, err = c.get(labels.MatchNotRegexp, "a", "x.*") // Another type: another entry.
	require.NoError(t, err)
	_, err = c.get(labels.MatchRegexp, "b", "y")
	require.NoError(t, err)
	require.Equal(t, 2, c.order.Len())
	evicted, err := c.get(labels.MatchRegexp, "a", "x.*")
	require.NoError(t, err)
	require.NotSame(t, a, evicted, "the least recently used entry was evicted")
	_, err = c.get(labels.MatchRegexp, "a", "(")
	require.Error(t, err)
}

// TestSortByRanks checks that snapshots sorted by stale ranks (series
// created and removed since the build) come out in label order.
func TestSortByRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ss := newStripeSeries()
	var all []*memSeries
	add := func(n int) {
		for range n {
			ref := uint64(len(all) + 1)
			s := newTestSeries(ss, ref, labelsOf("__name__", fmt.Sprintf("m%d", rng.IntN(50)), "i", fmt.Sprint(rng.IntN(1000))))
			if _, ok := ss.setIfAbsent(hashLabels(lsetOf(ss, s)), s); ok {
				all = append(all, s)
			}
		}
	}
	add(3000)
	require.Nil(t, ss.ranks.cur.Load())
	ranks := ss.buildRanks()
	require.Equal(t, len(all), ranks.ranked)
	add(500) // Unranked.
	for k := 0; k < len(all); k += 7 {
		ss.remove(hashLabels(lsetOf(ss, all[k])), all[k])
	}
	for range 20 {
		var snaps []headSnapshot
		for _, s := range all {
			if ss.getByRef(s.ref) != nil && rng.IntN(3) > 0 {
				snaps = append(snaps, headSnapshot{lset: lsetOf(ss, s), ref: uint64(s.ref)})
			}
		}
		rng.Shuffle(len(snaps), func(i, j int) { snaps[i], snaps[j] = snaps[j], snaps[i] })
		want := slices.Clone(snaps)
		slices.SortFunc(want, compareEntries)
		sortByRanks(snaps, ranks)
		require.Equal(t, want, snaps)
	}
	// A read of many series rebuilds stale ranks (500 new of 3,000 > 1/8).
	var snaps []headSnapshot
	ss.forEach(func(s *memSeries) { snaps = append(snaps, headSnapshot{lset: lsetOf(ss, s), ref: uint64(s.ref)}) })
	for len(snaps) < rankMinSeries { // Repeats are fine: only the order is checked.
		snaps = append(snaps, snaps[rng.IntN(len(snaps))])
	}
	ss.sortEntries(snaps)
	require.True(t, slices.IsSortedFunc(snaps, compareEntries))
	require.NotSame(t, ranks, ss.ranks.cur.Load())
	require.Equal(t, ss.count.Load(), int64(ss.ranks.cur.Load().ranked))
}

// TestSortUnlabeled checks that snapshots without labels are sorted in
// label order by their ranks alone (in place), and left for a sort by
// labels when some are unranked or too few.
func TestRankOrder(t *testing.T) {
	splitReads(t, 1024) // Keys looked up and sorted in 4 parts, merged in two rounds.
	rng := rand.New(rand.NewPCG(7, 8))
	ss := newStripeSeries()
	var all []*memSeries
	add := func(n int) {
		for range n {
			s := newTestSeries(ss, uint64(len(all)+1), labelsOf("__name__", fmt.Sprintf("m%d", rng.IntN(50)), "i", fmt.Sprint(rng.IntN(1000))))
			if _, ok := ss.setIfAbsent(hashLabels(lsetOf(ss, s)), s); ok {
				all = append(all, s)
			}
		}
	}
	add(2 * rankMinSeries)
	snaps := func(pick func(k int) bool) (got, want []headSnapshot) {
		for k, s := range all {
			if pick(k) {
				got = append(got, headSnapshot{ref: uint64(s.ref), s: s})
				want = append(want, headSnapshot{lset: lsetOf(ss, s), ref: uint64(s.ref), s: s})
			}
		}
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(want, compareEntries)
		return got, want
	}
	for range 5 {
		got, want := snaps(func(int) bool { return rng.IntN(4) > 0 })
		require.True(t, sortUnlabeled(ss, got)) // Builds the ranks, the first time.
		for k := range got {
			require.Equal(t, want[k].ref, got[k].ref, "position %d", k)
			require.Same(t, want[k].s, got[k].s)
		}
	}
	got, _ := snaps(func(k int) bool { return k < rankMinSeries-1 })
	require.False(t, sortUnlabeled(ss, got), "too few to use the ranks")
	add(10) // Unranked: the ranks are not stale enough to be rebuilt.
	got, want := snaps(func(int) bool { return true })
	order := slices.Clone(got)
	require.False(t, sortUnlabeled(ss, got))
	require.Equal(t, order, got, "left as it was")
	got = ss.decodeAll(got, &labelSlab{})
	slices.SortFunc(got, compareEntries)
	require.Equal(t, want, got)
}

// sortUnlabeled sorts es, snapshots with ref set and no labels, by
// rankOrder, and reports whether it did; es is left as it is otherwise.
func sortUnlabeled(ss *stripeSeries, es []headSnapshot) bool {
	refs := make([]promstorage.SeriesRef, len(es))
	for k := range es {
		refs[k] = promstorage.SeriesRef(es[k].ref)
	}
	keys := ss.rankOrder(refs)
	if keys == nil {
		return false
	}
	permute(es, keys)
	return true
}

// TestSortKeys checks the parallel sort over every number of parts, an
// odd one carried over a merge round included.
func TestSortKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for procs := 1; procs <= 5; procs++ {
		splitReads(t, 16)
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 31, 32, 33, 100, 1000, 4097} {
			keys := make([]uint64, n)
			for k := range keys {
				keys[k] = rng.Uint64N(500) // Repeats too.
			}
			want := slices.Sorted(slices.Values(keys))
			if n == 0 {
				want = keys
			}
			require.Equal(t, want, sortKeys(keys), "procs=%d n=%d", procs, n)
		}
	}
}

// TestSeries_ManySeriesSorted reads enough series for the ranks to be used,
// with series created after they were built, and checks the order and the
// set against a walk.
func TestSeries_ManySeriesSorted(t *testing.T) {
	t.Run("one part", testManySeriesSorted)
	t.Run("in parts", func(t *testing.T) {
		splitReads(t, 512)
		testManySeriesSorted(t)
	})
}

func testManySeriesSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ing := startIngester(t, testConfig(t, t.TempDir()))
	pushRandom := func(n, from int) {
		var tss []*arguspb.TimeSeries
		for k := range n {
			tss = append(tss, ts([]string{"__name__", fmt.Sprintf("m_%d", rng.IntN(20)), "a", randomValue(rng), "k", fmt.Sprint(from + k)}, sample{1000, 1}))
		}
		push(t, ing, "t1", tss...)
	}
	pushRandom(6000, 0)
	h := ing.getTenant("t1")
	all := &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "a", Value: ".+"}
	requireSorted := func(m *arguspb.LabelMatcher) {
		got := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MaxTimeMs: 2000, Matchers: []*arguspb.LabelMatcher{m}})
		var gotLabels, want []string
		for _, s := range got {
			gotLabels = append(gotLabels, labelsString(s.Labels))
		}
		pm, err := toMatchers([]*arguspb.LabelMatcher{m})
		require.NoError(t, err)
		var wantSets []labels.Labels
		h.series.forEach(func(s *memSeries) {
			if lset := lsetOf(h.series, s); bruteMatch(lset, pm) {
				wantSets = append(wantSets, lset)
			}
		})
		slices.SortFunc(wantSets, labels.Compare)
		for _, l := range wantSets {
			want = append(want, l.String())
		}
		require.Equal(t, len(want), len(gotLabels))
		for k := range want {
			require.Equal(t, want[k], gotLabels[k])
		}
	}
	requireSorted(all) // Builds the ranks and sorts by them: every series is ranked.
	ranks := h.series.ranks.cur.Load()
	require.NotNil(t, ranks)
	requireSorted(all)    // By the ranks built.
	pushRandom(300, 6000) // Unranked, but too few to rebuild.
	for _, m := range []*arguspb.LabelMatcher{all, {Type: arguspb.LabelMatcher_RE, Name: "a", Value: "x|y|foo"}} {
		requireSorted(m)
	}
	require.Same(t, ranks, h.series.ranks.cur.Load(), "300 new series of 6,300 do not rebuild")
}

// TestReadsDuringSeriesCreation runs label and series reads with matchers
// while pushes create series (growing the series map and the postings):
// every read succeeds, and the series a read returns are sorted and match.
// Run with -race.
func TestReadsDuringSeriesCreation(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	ctx := tenantCtx("t1")
	done := make(chan struct{})
	var (
		wg      sync.WaitGroup
		pushErr error // written by the pusher, read after wg.Wait
	)
	wg.Go(func() {
		defer close(done)
		for k := range 40 {
			var tss []*arguspb.TimeSeries
			for n := range 250 {
				tss = append(tss, ts([]string{"__name__", fmt.Sprintf("m_%d", n%7), "k", fmt.Sprint(k*250 + n)}, sample{int64(1000 + k), 1}))
			}
			if _, err := ing.Push(ctx, &arguspb.WriteRequest{Timeseries: tss}); err != nil {
				pushErr = err
				return
			}
		}
	})
	m := &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: "m_1|m_2"}
	for reads := 0; ; reads++ {
		select {
		case <-done:
			wg.Wait()
			require.NoError(t, pushErr)
			require.Positive(t, reads)
			require.EqualValues(t, 10_000, ing.getTenant("t1").series.count.Load())
			return
		default:
		}
		got := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MaxTimeMs: 5000, Matchers: []*arguspb.LabelMatcher{m}})
		for k, s := range got {
			name := s.Labels[0].Value
			require.True(t, name == "m_1" || name == "m_2", name)
			if k > 0 {
				require.Negative(t, labels.Compare(labelsOfProto(got[k-1].Labels), labelsOfProto(s.Labels)))
			}
		}
		_, err := ing.LabelValues(ctx, &arguspb.LabelValuesRequest{Name: "k", MaxTimeMs: 5000, Matchers: []*arguspb.LabelMatcher{m}})
		require.NoError(t, err)
		_, err = ing.LabelNames(ctx, &arguspb.LabelNamesRequest{MinTimeMs: 0, MaxTimeMs: 1010, Matchers: []*arguspb.LabelMatcher{m}})
		require.NoError(t, err)
	}
}

func labelsOfProto(ls []*arguspb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// TestHeadPostings_OutOfOrderAdd adds refs out of order, as WAL replay
// may, and deletes some: every list stays sorted and exact.
func TestHeadPostings_OutOfOrderAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	p, syms := newHeadPostings(), newSymbolTable()
	refs := rng.Perm(500)
	byValue := map[string][]promstorage.SeriesRef{}
	for _, r := range refs {
		ref := promstorage.SeriesRef(r + 1)
		v := fmt.Sprint(r % 7)
		p.Add(ref, syms, syms.encode(labelsOf("a", v)))
		byValue[v] = append(byValue[v], ref)
	}
	deleted := map[promstorage.SeriesRef]struct{}{}
	for ref := promstorage.SeriesRef(1); ref <= 500; ref += 3 {
		deleted[ref] = struct{}{}
	}
	// Every value of "a" is affected, and a label of no series is ignored.
	p.Delete(deleted, map[labels.Label]struct{}{{Name: "a", Value: "0"}: {}, {Name: "a", Value: "1"}: {}, {Name: "a", Value: "2"}: {}, {Name: "a", Value: "3"}: {}, {Name: "a", Value: "4"}: {}, {Name: "a", Value: "5"}: {}, {Name: "a", Value: "6"}: {}, {Name: "b", Value: "x"}: {}})
	var all []promstorage.SeriesRef
	for v, want := range byValue {
		want = slices.DeleteFunc(want, func(r promstorage.SeriesRef) bool { _, ok := deleted[r]; return ok })
		slices.Sort(want)
		all = append(all, want...)
		got, err := index.ExpandPostings(p.Postings(context.Background(), "a", v))
		require.NoError(t, err)
		require.Equal(t, want, got, v)
	}
	slices.Sort(all)
	got, err := index.ExpandPostings(p.All())
	require.NoError(t, err)
	require.Equal(t, all, got)
	require.Equal(t, []string{"a"}, p.LabelNames())
}

// TestBuildRanks_SparseRefs checks that no ranks are built when the refs
// are far more than the series (most of them removed), and that reads still
// sort.
func TestBuildRanks_SparseRefs(t *testing.T) {
	ss := newStripeSeries()
	var es []headSnapshot
	for k := range rankMinSeries {
		ref := uint64(k)*(rankMaxSparsity+1) + rankSlack // Sparse from the start.
		s := newTestSeries(ss, ref, labelsOf("n", fmt.Sprint(rankMinSeries-k)))
		ss.setIfAbsent(hashLabels(lsetOf(ss, s)), s)
		es = append(es, headSnapshot{lset: lsetOf(ss, s), ref: ref})
	}
	require.Nil(t, ss.buildRanks())
	ss.sortEntries(es)
	require.True(t, slices.IsSortedFunc(es, compareEntries))
	require.Nil(t, ss.ranks.cur.Load())
}
