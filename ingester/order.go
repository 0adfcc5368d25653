package ingester

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
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
	ranks, _ := ss.ranksFor(es)
	if ranks == nil {
		slices.SortFunc(es, compareEntries)
		return
	}
	sortByRanks(es, ranks)
}

// sortUnlabeled sorts es, snapshots with ref set and no labels, by labels
// when every one has a rank (the usual read of many series: ranks are
// rebuilt once series created since the last build are many), and reports
// whether it did. Otherwise es is left as it is, for the caller to decode
// the labels and sort by them: too few series for ranks to pay, or some
// unranked, which must be compared by labels with the ranked ones too.
func (ss *stripeSeries) sortUnlabeled(es []headSnapshot) bool {
	if len(es) < rankMinSeries {
		return false
	}
	ranks, unranked := ss.ranksFor(es)
	if ranks == nil || unranked > 0 {
		return false
	}
	keys := make([]uint64, len(es))
	for k := range es {
		r, _ := ranks.rankOf(es[k].ref)
		keys[k] = uint64(r)<<32 | uint64(k)
	}
	slices.Sort(keys)
	permute(es, keys)
	return true
}

// ranksFor returns the ranks to sort es by, built now if they are stale and
// es is a good part of the head, or nil; and how many of es they do not
// rank.
func (ss *stripeSeries) ranksFor(es []headSnapshot) (*labelRanks, int) {
	ranks := ss.ranks.cur.Load()
	count := func(r *labelRanks) int {
		unranked := 0
		for k := range es {
			if _, ok := r.rankOf(es[k].ref); !ok {
				unranked++
			}
		}
		return unranked
	}
	unranked := count(ranks)
	stale := ranks == nil || unranked > ranks.ranked/rankStaleDivisor
	// A build sorts the whole head: only a read of a good part of it pays
	// for it, at most a few times its own sort.
	if stale && int64(len(es))*rankBuildFraction >= ss.count.Load() {
		if fresh := ss.buildRanks(); fresh != nil {
			ranks, unranked = fresh, count(fresh)
		}
	}
	if ranks == nil {
		return nil, len(es)
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
