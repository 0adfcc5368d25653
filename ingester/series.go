package ingester

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/proto/arguspb"
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

// finishedChunk is a cut chunk that is not persisted yet, in a list ordered
// by time. data is immutable once cut, so readers may share it without a
// lock.
type finishedChunk struct {
	minT, maxT int64
	data       []byte
	next       *finishedChunk // guarded by the series' mu
}

// memSeries is one series of a tenant head. Its fields are kept to the
// minimum (120 bytes, in the 128-byte size class with room for one more
// pointer): memory per series is a benchmarked goal. The open
// chunk's min time is not stored: it is the first varint of the chunk. Its
// labels are symbolic (symbols.go): read them with stripeSeries.labelsOf or
// rangeLabels.
//
// Two locks guard it: mu guards the chunks (written by appends, flushes and
// idle cuts, read by queries); the tenant's appendMu guards the ordering
// state that Push checks before writing the WAL, so that the check, the WAL
// write and the in-memory append of a push are one atomic step per tenant.
type memSeries struct {
	ref  chunks.HeadSeriesRef // immutable
	syms string               // immutable: the symbolic labels, IDs in the head's symbolTable

	mu sync.Mutex
	// open is the XOR chunk appended to, nil when there is none, and xor
	// its encoder's state (xor.go); xor.t is the open chunk's max time.
	open     []byte         // guarded by mu
	xor      xorState       // guarded by mu
	finished *finishedChunk // guarded by mu: the oldest cut chunk not persisted yet
	// hist is the chunk state of a series that has had a native histogram
	// sample, nil for the others (hist.go). Guarded by mu.
	hist *histState

	// lastT is the time of the latest sample accepted; it starts at the
	// persisted max time. Guarded by the tenant's appendMu.
	lastT      int64
	lastAppend uint32 // guarded by mu: wall clock of the last append, Unix seconds

	// flags are guarded by mu: flagQueued, flagGone, flagPersisted. One
	// byte for all keeps the struct small.
	flags uint8
	// guarded by the tenant's appendMu:
	lastAccepted bool // lastT is a sample accepted here (false: it is the persisted max time)
	logged       bool // the series record is in the WAL
	deleted      bool // removed from the head by GC; a push must recreate it
}

// Flags of memSeries.flags.
const (
	// flagQueued: the series is in the tenant's flush queue.
	flagQueued uint8 = 1 << iota
	// flagGone: GC removed the series; its symbols may be another's.
	flagGone
	// flagPersisted: the series has samples in the DB (it was created
	// with a persisted max time, or a flush persisted a chunk of it), so
	// a retried sample may be there (retry.go).
	flagPersisted
)

// queuedLocked reports whether the series is in the flush queue. The
// caller holds mu.
func (s *memSeries) queuedLocked() bool { return s.flags&flagQueued != 0 }

// setQueuedLocked sets whether the series is in the flush queue. The caller
// holds mu.
func (s *memSeries) setQueuedLocked(queued bool) {
	if queued {
		s.flags |= flagQueued
	} else {
		s.flags &^= flagQueued
	}
}

// goneLocked reports whether GC removed the series. The caller holds mu.
func (s *memSeries) goneLocked() bool { return s.flags&flagGone != 0 }

// unixSeconds converts Unix milliseconds to the seconds of
// memSeries.lastAppend, rounded down (so idleness is never overestimated).
func unixSeconds(ms int64) uint32 {
	return uint32(min(max(ms/1000, 0), math.MaxUint32))
}

// newMemSeries returns a series with the symbolic labels syms whose samples
// up to persistedMaxT are in the chunk store (math.MinInt64: none).
func newMemSeries(ref chunks.HeadSeriesRef, syms string, persistedMaxT, nowMs int64) *memSeries {
	s := &memSeries{ref: ref, syms: syms, lastAppend: unixSeconds(nowMs), lastT: persistedMaxT}
	if persistedMaxT != math.MinInt64 {
		s.flags |= flagPersisted
	}
	return s
}

// openMinTLocked returns the min time of the open chunk, which the caller
// knows exists: an XOR chunk starts with its sample count (2 bytes) and its
// first timestamp as a varint. The caller holds mu.
func (s *memSeries) openMinTLocked() int64 {
	t, _ := binary.Varint(s.open[xorHeaderSize:])
	return t
}

// hasOpenLocked reports whether the series has an open chunk. The caller
// holds mu.
func (s *memSeries) hasOpenLocked() bool { return s.open != nil }

// openMaxTLocked returns the max time of the open chunk, which the caller
// knows exists. The caller holds mu.
func (s *memSeries) openMaxTLocked() int64 { return s.xor.t }

// openBytesLocked returns the bytes of the open chunk, nil if none: the
// next append writes to them. The caller holds mu.
func (s *memSeries) openBytesLocked() []byte { return s.open }

// dropOpenLocked discards the open chunk. The caller holds mu.
func (s *memSeries) dropOpenLocked() {
	s.open, s.xor = nil, xorState{}
}

// appendLocked appends one sample, cutting the open chunk first when it is
// full or t is in another 2h range. It reports whether a chunk was cut. The
// caller holds mu and has checked that t is newer than every sample.
func (s *memSeries) appendLocked(t int64, v float64, nowMs int64) (cut bool) {
	if s.hist != nil {
		return s.appendAnyLocked(t, v, nil, nil, nowMs)
	}
	// The open chunk's samples are all in one 2h range: its max time's is its min time's.
	if s.open != nil && (binary.BigEndian.Uint16(s.open) >= samplesPerChunk || chunkIndex(t) != chunkIndex(s.xor.t)) {
		s.cutLocked()
		cut = true
	}
	if s.open == nil {
		s.open = make([]byte, xorHeaderSize, chunkInitialCap) // The sample count, 0.
	}
	xorAppend(&s.open, &s.xor, t, v)
	s.lastAppend = unixSeconds(nowMs)
	return cut
}

// cutLocked moves the open chunk to the end of finished. The caller holds mu.
func (s *memSeries) cutLocked() {
	s.hist.cut()
	if s.open == nil {
		return
	}
	data := s.open
	if cap(data) > len(data) { // Finished chunks are never appended to: no spare capacity.
		data = make([]byte, len(s.open))
		copy(data, s.open)
	}
	fc := &finishedChunk{minT: s.openMinTLocked(), maxT: s.xor.t, data: data}
	if s.finished == nil {
		s.finished = fc
	} else {
		last := s.finished
		for last.next != nil {
			last = last.next
		}
		last.next = fc
	}
	s.dropOpenLocked()
}

// lastSampleLocked returns the newest sample in memory, decoding the chunk
// that holds it (for the rare duplicate check of a retried push). The
// caller holds mu.
func (s *memSeries) lastSampleLocked() (t int64, v float64, ok bool) {
	if s.hist.inMemory() {
		return s.hist.lastFloat()
	}
	var data []byte
	switch {
	case s.open != nil:
		data = s.open
	case s.finished != nil:
		last := s.finished
		for last.next != nil {
			last = last.next
		}
		data = last.data
	default:
		return 0, 0, false
	}
	var c chunkenc.XORChunk
	c.Reset(data)
	it := c.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v = it.At()
		ok = true
	}
	return t, v, ok && it.Err() == nil
}

// firstInMemoryLocked returns the min time of the oldest chunk in memory, or
// noTime. The caller holds mu.
func (s *memSeries) firstInMemoryLocked() int64 {
	if s.finished != nil {
		return s.finished.minT
	}
	if s.open != nil {
		return s.openMinTLocked()
	}
	return s.hist.firstInMemory()
}

// inMemoryLocked reports whether the series has any chunk in memory.
func (s *memSeries) inMemoryLocked() bool {
	return s.open != nil || s.finished != nil || s.hist.inMemory()
}

// overlapsLocked reports whether a chunk in memory overlaps [mint, maxt].
func (s *memSeries) overlapsLocked(mint, maxt int64) bool {
	for c := s.finished; c != nil; c = c.next {
		if c.minT <= maxt && c.maxT >= mint {
			return true
		}
	}
	return (s.open != nil && s.openMinTLocked() <= maxt && s.xor.t >= mint) || s.hist.overlaps(mint, maxt)
}

// Stripes of a head's series map. A head starts with minStripes lock stripes
// and multiplies them by stripeGrowth whenever it holds more than
// seriesPerStripe series per stripe, up to maxStripes (Prometheus uses 16384
// for its one head; a head here is per tenant). A tenant of a few series
// then costs one stripe and two small maps rather than 512 stripes and
// 1,024 maps (about 100 KB).
const (
	minStripes      = 1
	maxStripes      = 1 << 9
	stripeGrowth    = 8
	seriesPerStripe = 64
)

// seriesStripe is one lock stripe. Stripe i holds the series whose label hash
// is i (mod the stripe count) in byHash and, independently, the series whose
// ref is i (mod the stripe count) in byRef. Its maps are created by the
// first insert.
type seriesStripe struct {
	mu        sync.RWMutex
	byHash    map[uint64]*memSeries               // guarded by mu
	conflicts map[uint64][]*memSeries             // guarded by mu; other series with a hash in byHash, nil until needed
	byRef     map[chunks.HeadSeriesRef]*memSeries // guarded by mu
	// moved is set, under mu, when the table of the stripe was replaced by a
	// larger one: the stripe's maps are then frozen, and a caller that finds
	// it set retries on the new table.
	moved bool
	_     [15]byte // pads the stripe to a 64-byte cache line
}

// stripeTable is one generation of the stripes of a stripeSeries.
type stripeTable struct {
	stripes []seriesStripe // a power of two of them
}

func (t *stripeTable) stripe(key uint64) *seriesStripe {
	return &t.stripes[key&uint64(len(t.stripes)-1)]
}

// stripeSeries is the series map of a head, striped over power-of-two
// RWMutexes (CONTRIBUTING.md, "Concurrency"; as Prometheus's stripeSeries) that grow with the
// series. Safe for concurrent use.
//
// Locks: an operation holds one stripe lock at a time; grow holds every
// stripe of the old table, taken in index order, under growMu. Both are
// leaf locks (nothing is locked while they are held).
type stripeSeries struct {
	table  atomic.Pointer[stripeTable]
	count  atomic.Int64  // series inserted minus removed
	maxRef atomic.Uint64 // the greatest ref inserted
	growMu sync.Mutex    // serializes grow
	spanMu sync.Mutex    // guards span's creation
	sp     *headSpan     // guarded by spanMu; nil until a label read needs it
	ranks  headRanks     // the label order of the series, for reads of many
	syms   *symbolTable  // the labels of the series
}

func newStripeSeries() *stripeSeries {
	ss := &stripeSeries{syms: newSymbolTable()}
	ss.table.Store(&stripeTable{stripes: make([]seriesStripe, minStripes)})
	return ss
}

// span returns the head span cache of the series.
func (ss *stripeSeries) span() *headSpan {
	ss.spanMu.Lock()
	defer ss.spanMu.Unlock()
	if ss.sp == nil {
		ss.sp = &headSpan{computed: math.MinInt64}
	}
	return ss.sp
}

// lock returns the stripe of key in the current table, locked (read-locked
// if read), retrying when a grow moved it.
func (ss *stripeSeries) lock(key uint64, read bool) *seriesStripe {
	for {
		st := ss.table.Load().stripe(key)
		if read {
			st.mu.RLock()
		} else {
			st.mu.Lock()
		}
		if !st.moved {
			return st
		}
		if read {
			st.mu.RUnlock()
		} else {
			st.mu.Unlock()
		}
	}
}

// getByHash returns the series with labels lset (of hash hash), or nil.
func (ss *stripeSeries) getByHash(hash uint64, lset labels.Labels) *memSeries {
	st := ss.lock(hash, true)
	defer st.mu.RUnlock()
	return st.lookupLocked(hash, func(s *memSeries) bool { return ss.syms.equal(s.syms, lset) })
}

// getByLabels returns the series with labels lset, or nil.
func (ss *stripeSeries) getByLabels(lset labels.Labels) *memSeries {
	return ss.getByHash(hashLabels(lset), lset)
}

// getByProto returns the series with the labels ls of a request (of hash
// hash, from a labelHasher), or nil. It builds no label set: the lookup of
// every series of every push.
func (ss *stripeSeries) getByProto(hash uint64, ls []*arguspb.Label) *memSeries {
	st := ss.lock(hash, true)
	defer st.mu.RUnlock()
	return st.lookupLocked(hash, func(s *memSeries) bool { return ss.equalProto(s.syms, ls) })
}

// equalProto reports whether syms are the labels ls. The caller may read
// syms (symbols.go).
func (ss *stripeSeries) equalProto(syms string, ls []*arguspb.Label) bool {
	t, i := ss.syms, 0
	for _, l := range ls {
		var n, v uint64
		if i+1 < len(syms) && syms[i]|syms[i+1] < 0x80 { // Two one-byte IDs: most names and many values.
			n, v = uint64(syms[i]), uint64(syms[i+1])
			i += 2
		} else {
			if i >= len(syms) {
				return false
			}
			var k int
			n, k = uvarintString(syms[i:])
			i += k
			v, k = uvarintString(syms[i:])
			i += k
		}
		if t.symbol(uint32(v)) != l.GetValue() || t.symbol(uint32(n)) != l.GetName() {
			return false
		}
	}
	return i == len(syms)
}

// lookupLocked returns the series of hash for which is is true, or nil.
// The caller holds st.mu, so is may read the series' symbols.
func (st *seriesStripe) lookupLocked(hash uint64, is func(*memSeries) bool) *memSeries {
	if s := st.byHash[hash]; s != nil && is(s) {
		return s
	}
	for _, s := range st.conflicts[hash] {
		if is(s) {
			return s
		}
	}
	return nil
}

// labelsOf returns the labels of s, and false if GC removed s from the head
// (then its symbols may be another series' by now).
func (ss *stripeSeries) labelsOf(s *memSeries) (labels.Labels, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goneLocked() {
		return labels.EmptyLabels(), false
	}
	return ss.syms.decode(s.syms), true
}

// rangeLabels calls f with each label of s, in order, until f returns
// false, without building a label set; it returns false, calling f for
// none, if GC removed s from the head. The strings are the symbol table's:
// safe to keep. f runs under the series' mu: it must not lock the series.
func (ss *stripeSeries) rangeLabels(s *memSeries, f func(name, value string) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goneLocked() {
		return false
	}
	ss.syms.rangeSymbols(s.syms, f)
	return true
}

// labelValue returns the value of label name of s ("" if it has none), and
// false if GC removed s from the head.
func (ss *stripeSeries) labelValue(s *memSeries, name string) (string, bool) {
	value := ""
	ok := ss.rangeLabels(s, func(n, v string) bool {
		if n == name {
			value = v
			return false
		}
		return n < name
	})
	return value, ok
}

// getByRef returns the series of ref, or nil.
func (ss *stripeSeries) getByRef(ref chunks.HeadSeriesRef) *memSeries {
	st := ss.lock(uint64(ref), true)
	defer st.mu.RUnlock()
	return st.byRef[ref]
}

// setIfAbsent inserts s (of hash hash) unless a series with its labels
// exists, and returns the series in the map and whether it is s.
func (ss *stripeSeries) setIfAbsent(hash uint64, s *memSeries) (*memSeries, bool) {
	st := ss.lock(hash, false)
	// One symbol table: equal labels are equal IDs.
	if prev := st.lookupLocked(hash, func(o *memSeries) bool { return o.syms == s.syms }); prev != nil {
		st.mu.Unlock()
		return prev, false
	}
	st.insertHashLocked(hash, s)
	st.mu.Unlock()

	rs := ss.lock(uint64(s.ref), false)
	rs.insertRefLocked(s)
	rs.mu.Unlock()
	raiseTo(&ss.maxRef, uint64(s.ref))

	if n, t := ss.count.Add(1), ss.table.Load(); n > int64(len(t.stripes))*seriesPerStripe && len(t.stripes) < maxStripes {
		ss.grow(t)
	}
	return s, true
}

// raiseTo sets v to x if x is greater.
func raiseTo(v *atomic.Uint64, x uint64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

func (st *seriesStripe) insertHashLocked(hash uint64, s *memSeries) {
	if st.byHash == nil {
		st.byHash = map[uint64]*memSeries{}
	}
	if _, taken := st.byHash[hash]; !taken {
		st.byHash[hash] = s
		return
	}
	if st.conflicts == nil {
		st.conflicts = map[uint64][]*memSeries{}
	}
	st.conflicts[hash] = append(st.conflicts[hash], s)
}

func (st *seriesStripe) insertRefLocked(s *memSeries) {
	if st.byRef == nil {
		st.byRef = map[chunks.HeadSeriesRef]*memSeries{}
	}
	st.byRef[s.ref] = s
}

// grow replaces the table old, if it is still the current one, by one with
// stripeGrowth times its stripes, rehashing every series. It holds every
// stripe of old meanwhile, so no insert or removal is lost: those that
// waited find their stripe moved and retry on the new table.
func (ss *stripeSeries) grow(old *stripeTable) {
	ss.growMu.Lock()
	defer ss.growMu.Unlock()
	if ss.table.Load() != old {
		return // Grown by a concurrent insert.
	}
	for i := range old.stripes {
		old.stripes[i].mu.Lock()
	}
	t := &stripeTable{stripes: make([]seriesStripe, len(old.stripes)*stripeGrowth)}
	for i := range old.stripes {
		st := &old.stripes[i]
		for hash, s := range st.byHash {
			t.stripe(hash).insertHashLocked(hash, s)
		}
		for hash, cs := range st.conflicts {
			for _, s := range cs {
				t.stripe(hash).insertHashLocked(hash, s)
			}
		}
		for ref, s := range st.byRef {
			t.stripe(uint64(ref)).insertRefLocked(s)
		}
		st.moved = true
	}
	ss.table.Store(t)
	for i := range old.stripes {
		old.stripes[i].mu.Unlock()
	}
}

// remove deletes s (of hash hash) from both maps.
func (ss *stripeSeries) remove(hash uint64, s *memSeries) {
	st := ss.lock(hash, false)
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

	rs := ss.lock(uint64(s.ref), false)
	if rs.byRef[s.ref] == s {
		delete(rs.byRef, s.ref)
		ss.count.Add(-1)
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
// removed concurrently may or may not be visited; every series added before
// forEach was called and not removed is.
func (ss *stripeSeries) forEach(f func(s *memSeries)) {
	var buf []*memSeries
	t := ss.table.Load()
	for i := range t.stripes {
		st := &t.stripes[i]
		st.mu.RLock()
		buf = buf[:0]
		for _, s := range st.byRef { // A moved stripe's maps are frozen, with every series of the time of the move.
			buf = append(buf, s)
		}
		st.mu.RUnlock()
		for _, s := range buf {
			f(s)
		}
	}
}

// decodeAll sets the labels of the snapshots es that have none from their
// series (s set), carved from sl, and drops those GC removed.
func (ss *stripeSeries) decodeAll(es []headSnapshot, sl *labelSlab) []headSnapshot {
	kept := es[:0]
	for _, e := range es {
		if e.lset.IsEmpty() {
			e.s.mu.Lock()
			gone := e.s.goneLocked()
			if !gone {
				e.lset = sl.decode(ss.syms, e.s.syms)
			}
			e.s.mu.Unlock()
			if gone {
				continue
			}
		}
		kept = append(kept, e)
	}
	clear(es[len(kept):])
	return kept
}
