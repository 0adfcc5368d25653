package ingester

import (
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

const (
	// samplesPerChunk is when an open chunk is cut, as in Prometheus.
	samplesPerChunk = 120
	// chunkRangeMs aligns chunks: a chunk never spans a multiple of it.
	chunkRangeMs = int64(2 * 60 * 60 * 1000)
	// chunkInitialCap is the first allocation of an open chunk's bytes: a
	// few samples' worth, grown by append. Prometheus starts at 128 bytes;
	// starting small keeps series with few samples cheap.
	chunkInitialCap = 32
	// noTime marks an absent time: a series with nothing in memory.
	noTime = int64(math.MaxInt64)
)

// chunkIndex is the 2h-aligned range t falls in (floored for negative t).
func chunkIndex(t int64) int64 {
	if t < 0 {
		return (t+1)/chunkRangeMs - 1
	}
	return t / chunkRangeMs
}

// finishedChunk is a cut chunk that is not persisted yet. data is immutable
// once cut, so readers may share it without a lock.
type finishedChunk struct {
	minT, maxT int64
	data       []byte
}

// memSeries is one series of a tenant head. Its fields are kept to the
// minimum: memory per series is a benchmarked goal.
//
// Two locks guard it: mu guards the chunks (written by appends, flushes and
// idle cuts, read by queries); the tenant's appendMu guards the ordering
// state that Push checks before writing the WAL, so that the check, the WAL
// write and the in-memory append of a push are one atomic step per tenant.
type memSeries struct {
	ref  chunks.HeadSeriesRef // immutable
	lset labels.Labels        // immutable

	mu sync.Mutex
	// open is the chunk appended to; app is nil when there is none.
	open               chunkenc.XORChunk // guarded by mu
	app                chunkenc.Appender // guarded by mu
	openMinT, openMaxT int64             // guarded by mu
	finished           []finishedChunk   // guarded by mu, ordered by time
	persistedMaxT      int64             // guarded by mu: samples <= it are in the chunk store
	lastAppendMs       int64             // guarded by mu: wall clock of the last append, Unix ms

	// lastT and lastV are the latest sample accepted (lastT starts at the
	// persisted max time). Guarded by the tenant's appendMu.
	lastT int64
	lastV float64

	queued bool // guarded by mu: the series is in the tenant's flush queue
	// guarded by the tenant's appendMu:
	lastVKnown bool // lastV is the value at lastT (false: lastT is the persisted max)
	logged     bool // the series record is in the WAL
	deleted    bool // removed from the head by GC; a push must recreate it
}

func newMemSeries(ref chunks.HeadSeriesRef, lset labels.Labels, persistedMaxT, nowMs int64) *memSeries {
	return &memSeries{
		ref:           ref,
		lset:          lset,
		openMinT:      noTime,
		persistedMaxT: persistedMaxT,
		lastAppendMs:  nowMs,
		lastT:         persistedMaxT,
	}
}

// appendLocked appends one sample, cutting the open chunk first when it is
// full or t is in another 2h range. It reports whether a chunk was cut. The
// caller holds mu and has checked that t is newer than every sample.
func (s *memSeries) appendLocked(t int64, v float64, nowMs int64) (cut bool) {
	if s.app != nil && (s.open.NumSamples() >= samplesPerChunk || chunkIndex(t) != chunkIndex(s.openMinT)) {
		s.cutLocked()
		cut = true
	}
	if s.app == nil {
		s.open.Reset(make([]byte, 2, chunkInitialCap)) // 2 zero bytes: the sample count.
		app, err := s.open.Appender()
		if err != nil {
			panic("appender of an empty XOR chunk: " + err.Error()) // Cannot fail: nothing to iterate.
		}
		s.app = app
		s.openMinT = t
	}
	s.app.Append(0, t, v)
	s.openMaxT = t
	s.lastAppendMs = nowMs
	return cut
}

// cutLocked moves the open chunk to finished. The caller holds mu.
func (s *memSeries) cutLocked() {
	if s.app == nil {
		return
	}
	s.open.Compact() // Trims the spare capacity: finished chunks are never appended to.
	s.finished = append(s.finished, finishedChunk{minT: s.openMinT, maxT: s.openMaxT, data: s.open.Bytes()})
	s.open.Reset(nil)
	s.app = nil
	s.openMinT, s.openMaxT = noTime, 0
}

// firstInMemoryLocked returns the min time of the oldest chunk in memory, or
// noTime. The caller holds mu.
func (s *memSeries) firstInMemoryLocked() int64 {
	if len(s.finished) > 0 {
		return s.finished[0].minT
	}
	if s.app != nil {
		return s.openMinT
	}
	return noTime
}

// inMemoryLocked reports whether the series has any chunk in memory.
func (s *memSeries) inMemoryLocked() bool {
	return s.app != nil || len(s.finished) > 0
}

// overlapsLocked reports whether a chunk in memory overlaps [mint, maxt].
func (s *memSeries) overlapsLocked(mint, maxt int64) bool {
	for _, c := range s.finished {
		if c.minT <= maxt && c.maxT >= mint {
			return true
		}
	}
	return s.app != nil && s.openMinT <= maxt && s.openMaxT >= mint
}

// stripeCount is the number of lock stripes of a head's series maps, a power
// of two. Per tenant, so kept moderate (Prometheus uses 16384 for one head).
const stripeCount = 1 << 9

// seriesStripe is one lock stripe. Stripe i holds the series whose label hash
// is i (mod stripeCount) in byHash and, independently, the series whose ref
// is i (mod stripeCount) in byRef.
type seriesStripe struct {
	mu        sync.RWMutex
	byHash    map[uint64]*memSeries               // guarded by mu
	conflicts map[uint64][]*memSeries             // guarded by mu; other series with a hash in byHash, nil until needed
	byRef     map[chunks.HeadSeriesRef]*memSeries // guarded by mu
	_         [16]byte                            // pads the stripe to a 64-byte cache line
}

// stripeSeries is the series map of a head, striped over power-of-two
// RWMutexes (STYLE C12, as Prometheus's stripeSeries). Safe for concurrent
// use.
type stripeSeries struct {
	stripes [stripeCount]seriesStripe
}

func newStripeSeries() *stripeSeries {
	ss := &stripeSeries{}
	for i := range ss.stripes {
		ss.stripes[i].byHash = map[uint64]*memSeries{}
		ss.stripes[i].byRef = map[chunks.HeadSeriesRef]*memSeries{}
	}
	return ss
}

// getByHash returns the series with labels lset (of hash hash), or nil.
func (ss *stripeSeries) getByHash(hash uint64, lset labels.Labels) *memSeries {
	st := &ss.stripes[hash&(stripeCount-1)]
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.lookupLocked(hash, lset)
}

func (st *seriesStripe) lookupLocked(hash uint64, lset labels.Labels) *memSeries {
	if s := st.byHash[hash]; s != nil && labels.Equal(s.lset, lset) {
		return s
	}
	for _, s := range st.conflicts[hash] {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

// getByRef returns the series of ref, or nil.
func (ss *stripeSeries) getByRef(ref chunks.HeadSeriesRef) *memSeries {
	st := &ss.stripes[uint64(ref)&(stripeCount-1)]
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.byRef[ref]
}

// setIfAbsent inserts s (of hash hash) unless a series with its labels
// exists, and returns the series in the map and whether it is s.
func (ss *stripeSeries) setIfAbsent(hash uint64, s *memSeries) (*memSeries, bool) {
	st := &ss.stripes[hash&(stripeCount-1)]
	st.mu.Lock()
	if prev := st.lookupLocked(hash, s.lset); prev != nil {
		st.mu.Unlock()
		return prev, false
	}
	if _, taken := st.byHash[hash]; !taken {
		st.byHash[hash] = s
	} else {
		if st.conflicts == nil {
			st.conflicts = map[uint64][]*memSeries{}
		}
		st.conflicts[hash] = append(st.conflicts[hash], s)
	}
	st.mu.Unlock()

	rs := &ss.stripes[uint64(s.ref)&(stripeCount-1)]
	rs.mu.Lock()
	rs.byRef[s.ref] = s
	rs.mu.Unlock()
	return s, true
}

// remove deletes s (of hash hash) from both maps.
func (ss *stripeSeries) remove(hash uint64, s *memSeries) {
	st := &ss.stripes[hash&(stripeCount-1)]
	st.mu.Lock()
	if st.byHash[hash] == s {
		delete(st.byHash, hash)
		// Promote a conflicting series, if any, to the main map.
		if cs := st.conflicts[hash]; len(cs) > 0 {
			st.byHash[hash] = cs[0]
			st.setConflictsLocked(hash, cs[1:])
		}
	} else if cs := st.conflicts[hash]; len(cs) > 0 {
		kept := make([]*memSeries, 0, len(cs))
		for _, c := range cs {
			if c != s {
				kept = append(kept, c)
			}
		}
		st.setConflictsLocked(hash, kept)
	}
	st.mu.Unlock()

	rs := &ss.stripes[uint64(s.ref)&(stripeCount-1)]
	rs.mu.Lock()
	if rs.byRef[s.ref] == s {
		delete(rs.byRef, s.ref)
	}
	rs.mu.Unlock()
}

func (st *seriesStripe) setConflictsLocked(hash uint64, cs []*memSeries) {
	if len(cs) == 0 {
		delete(st.conflicts, hash)
		return
	}
	st.conflicts[hash] = cs
}

// forEach calls f for every series, one stripe at a time, without holding a
// stripe lock while f runs (so f may lock the series). Series added or
// removed concurrently may or may not be visited.
func (ss *stripeSeries) forEach(f func(s *memSeries)) {
	var buf []*memSeries
	for i := range ss.stripes {
		st := &ss.stripes[i]
		st.mu.RLock()
		buf = buf[:0]
		for _, s := range st.byRef {
			buf = append(buf, s)
		}
		st.mu.RUnlock()
		for _, s := range buf {
			f(s)
		}
	}
}
