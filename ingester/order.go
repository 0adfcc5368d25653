package ingester

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// Series reads return series sorted by labels. Sorting the matching series
// by their labels costs most of a read of many series (string comparisons
// over series spread across the heap), so a head of many series keeps the
// label order of its series as a rank per ref, built by one sort of the
// whole head, and a read sorts its series by rank (integers). Series created
// since the build are sorted by labels and merged in; the ranks are rebuilt
// when those become too many, by a read of a large part of the head (which
// would have sorted most of it anyway). They cost 4 bytes per series, and
// nothing to a head that is never read in bulk.

const (
	// rankMinSeries is the fewest series of a read that use (and build)
	// the ranks: below it, sorting by labels is cheap.
	rankMinSeries = 4096
	// rankStaleDivisor: the ranks are rebuilt when the series created since
	// the build are more than 1/rankStaleDivisor of the ranked ones.
	rankStaleDivisor = 8
	// rankBuildFraction: a read builds the ranks only if it has at least
	// 1/rankBuildFraction of the head's series.
	rankBuildFraction = 4
	// rankMaxSparsity and rankSlack: no ranks are built when the greatest
	// ref is above rankMaxSparsity times the series plus rankSlack (the
	// table would cost more than 16 bytes per series).
	rankMaxSparsity = 4
	rankSlack       = 1 << 16
)

// labelRanks is the label order of the series of a head at a build. It is
// immutable.
type labelRanks struct {
	// rank[ref] is 1 + the rank of series ref in label order, 0 for a ref
	// that had no series at the build.
	rank   []uint32
	ranked int
}

// rankOf returns the rank of ref and whether it has one.
func (r *labelRanks) rankOf(ref uint64) (uint32, bool) {
	if r == nil || ref >= uint64(len(r.rank)) || r.rank[ref] == 0 {
		return 0, false
	}
	return r.rank[ref] - 1, true
}

// headRanks holds the label ranks of a head's series. Safe for concurrent
// use.
type headRanks struct {
	cur     atomic.Pointer[labelRanks]
	buildMu sync.Mutex // held by the one build at a time
}

func compareEntries(a, b headSnapshot) int { return labels.Compare(a.lset, b.lset) }

// sortEntries sorts es, snapshots with lset and ref set, by labels, using
// and maintaining the ranks of the series of ss.
func (ss *stripeSeries) sortEntries(es []headSnapshot) {
	if len(es) < rankMinSeries {
		slices.SortFunc(es, compareEntries)
		return
	}
	ranks, _ := ss.ranksFor(len(es), func(r *labelRanks) int {
		unranked := 0
		for k := range es {
			if _, ok := r.rankOf(es[k].ref); !ok {
				unranked++
			}
		}
		return unranked
	})
	if ranks == nil {
		slices.SortFunc(es, compareEntries)
		return
	}
	sortByRanks(es, ranks)
}

// rankOrder returns the label order of refs from the ranks alone (nothing
// of the series is read): rank<<32 | k for each refs[k], sorted, when every
// one has a rank (the usual read of many series: ranks are rebuilt once
// series created since the last build are many). Otherwise it returns nil,
// for the caller to decode the labels and sort by them: too few series for
// ranks to pay, or some unranked, which must be compared by labels with the
// ranked ones too. The rank lookups and the sort run in parts (parts.go).
func (ss *stripeSeries) rankOrder(refs []promstorage.SeriesRef) []uint64 {
	if len(refs) < rankMinSeries {
		return nil
	}
	keys := make([]uint64, len(refs))
	ranks, unranked := ss.ranksFor(len(refs), func(r *labelRanks) int { return rankKeys(r, refs, keys) })
	if ranks == nil || unranked > 0 {
		return nil
	}
	return sortKeys(keys)
}

// rankKeys sets keys[k] to rank<<32 | k for each refs[k] of ranks, and
// returns how many refs have no rank (their keys are then meaningless).
func rankKeys(ranks *labelRanks, refs []promstorage.SeriesRef, keys []uint64) int {
	var unranked atomic.Int64
	_, _ = inParts(keys, func(lo, hi int) (int, error) {
		n := 0
		for k := lo; k < hi; k++ {
			r, ok := ranks.rankOf(uint64(refs[k]))
			if !ok {
				n++
			}
			keys[k] = uint64(r)<<32 | uint64(k)
		}
		unranked.Add(int64(n))
		return hi - lo, nil // Every part keeps all: nothing moves.
	})
	return int(unranked.Load())
}

// sortKeys sorts keys, in parts sorted at once and then merged, and
// returns them sorted: keys itself, or a slice of the same length.
func sortKeys(keys []uint64) []uint64 {
	parts := min(runtime.GOMAXPROCS(0), len(keys)/partMinItems)
	if parts <= 1 {
		slices.Sort(keys)
		return keys
	}
	bounds := make([]int, parts+1)
	for p := range bounds {
		bounds[p] = p * len(keys) / parts
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { slices.Sort(keys[bounds[p]:bounds[p+1]]) })
	}
	wg.Wait()
	src, dst := keys, make([]uint64, len(keys))
	for len(bounds) > 2 { // Merge neighbouring runs, pairwise.
		next := []int{0}
		for p := 0; p+1 < len(bounds); p += 2 {
			if p+2 == len(bounds) { // An odd run out: carried over.
				copy(dst[bounds[p]:], src[bounds[p]:])
			} else {
				mergeKeys(dst[bounds[p]:bounds[p+2]], src[bounds[p]:bounds[p+1]], src[bounds[p+1]:bounds[p+2]])
			}
			next = append(next, bounds[min(p+2, len(bounds)-1)])
		}
		bounds = next
		src, dst = dst, src
	}
	return src
}

// mergeKeys merges the sorted a and b into dst, of their total length.
func mergeKeys(dst, a, b []uint64) {
	k := 0
	for len(a) > 0 && len(b) > 0 {
		if a[0] <= b[0] {
			dst[k], a = a[0], a[1:]
		} else {
			dst[k], b = b[0], b[1:]
		}
		k++
	}
	k += copy(dst[k:], a)
	copy(dst[k:], b)
}

// ranksFor returns the ranks to sort a read of n series by, built now if
// they are stale and the read is a good part of the head, or nil; and how
// many of the read's series they do not rank, which rank(r) looks up (r
// nil: none).
func (ss *stripeSeries) ranksFor(n int, rank func(r *labelRanks) (unranked int)) (*labelRanks, int) {
	ranks := ss.ranks.cur.Load()
	unranked := rank(ranks)
	stale := ranks == nil || unranked > ranks.ranked/rankStaleDivisor
	// A build sorts the whole head: only a read of a good part of it pays
	// for it, at most a few times its own sort.
	if stale && int64(n)*rankBuildFraction >= ss.count.Load() {
		if fresh := ss.buildRanks(); fresh != nil {
			ranks, unranked = fresh, rank(fresh)
		}
	}
	if ranks == nil {
		return nil, n
	}
	return ranks, unranked
}

// sortByRanks sorts es by labels: those with a rank by it, the others by
// labels, then merges the two. When all have a rank (the usual read) es is
// permuted in place: a copy of many snapshots would be garbage the size of
// the read.
func sortByRanks(es []headSnapshot, ranks *labelRanks) {
	keys := make([]uint64, 0, len(es))
	var others []headSnapshot
	for k := range es {
		if r, ok := ranks.rankOf(es[k].ref); ok {
			keys = append(keys, uint64(r)<<32|uint64(k))
		} else {
			others = append(others, es[k])
		}
	}
	slices.Sort(keys)
	if len(others) == 0 {
		permute(es, keys)
		return
	}
	slices.SortFunc(others, compareEntries)
	ranked := make([]headSnapshot, len(keys))
	for k, key := range keys {
		ranked[k] = es[uint32(key)]
	}
	// Merge back into es, whose entries ranked and others now hold.
	out := es[:0]
	for len(ranked) > 0 || len(others) > 0 {
		if len(others) == 0 || (len(ranked) > 0 && compareEntries(ranked[0], others[0]) <= 0) {
			out, ranked = append(out, ranked[0]), ranked[1:]
		} else {
			out, others = append(out, others[0]), others[1:]
		}
	}
}

// permute moves es[uint32(keys[k])] to es[k] for every k, in place,
// following each cycle of the permutation; keys' low halves are overwritten.
func permute(es []headSnapshot, keys []uint64) {
	const low = 1<<32 - 1
	for i := range keys {
		if keys[i]&low == uint64(i) {
			continue // In place, or a cycle already moved.
		}
		tmp := es[i]
		j := i
		for {
			from := int(keys[j] & low)
			keys[j] = keys[j]&^low | uint64(j) // Marks position j done.
			if from == i {
				es[j] = tmp
				break
			}
			es[j] = es[from]
			j = from
		}
	}
}

// buildRanks sorts every series of the head by labels and publishes their
// ranks, unless another build is running or the refs are too sparse (it
// then returns nil). A series created during the build may be left
// unranked.
func (ss *stripeSeries) buildRanks() *labelRanks {
	// The table is indexed by ref: refs left by many removed series would
	// make it larger than the series it ranks.
	if ss.maxRef.Load() > rankMaxSparsity*uint64(max(ss.count.Load(), 0))+rankSlack {
		return nil
	}
	if !ss.ranks.buildMu.TryLock() {
		return nil
	}
	defer ss.ranks.buildMu.Unlock()
	type entry struct {
		lset labels.Labels
		ref  uint64
	}
	var all []entry
	maxRef := uint64(0)
	ss.forEach(func(s *memSeries) {
		if lset, ok := ss.labelsOf(s); ok {
			all = append(all, entry{lset: lset, ref: uint64(s.ref)})
			maxRef = max(maxRef, uint64(s.ref))
		}
	})
	slices.SortFunc(all, func(a, b entry) int { return labels.Compare(a.lset, b.lset) })
	r := &labelRanks{rank: make([]uint32, maxRef+1), ranked: len(all)}
	for k, e := range all {
		r.rank[e.ref] = uint32(k) + 1
	}
	ss.ranks.cur.Store(r)
	return r
}
