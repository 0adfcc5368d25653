package ingester

import "sync/atomic"

// The head series behind a PushStream ref.
//
// A series sent by ref on a PushStream (pushstream.go) is the same label set
// push after push, yet resolve hashed its labels and compared them with the
// head's symbols every time to find its memSeries: with refs the largest
// cost left of a replica's push (docs/benchmarks.md, "Cluster ingest").
// Each ref of a stream therefore remembers the series it resolved to last
// (refHint), tagged with the head's series generation, and resolve takes it
// as it is while the generation is unchanged.
//
// # Why a remembered series is the right one
//
//   - A ref names one label set of one tenant for the life of its stream
//     (streamSeries), and the remembered series was found or created for
//     exactly that label set.
//   - A series leaves a head only through GC (removeSeries) or with the
//     head itself (a closed head is never pushed to again: its tenant gets a
//     new head). removeSeries gives the head a new generation before it
//     marks any series deleted, and every head starts with a generation of
//     its own: generations come from one counter for the process
//     (seriesGens), so a hint taken in another head, or before a GC pass,
//     never matches.
//   - A GC pass that runs between resolve's check and the append is the
//     race every resolved series has: appendBatchLocked sees the series
//     deleted and recreates it.
//
// A hint costs one allocation when it changes: when a series is first sent
// by ref on a stream, and once per stream and ref after a GC pass that
// removed series. It keeps its series reachable until the ref resolves
// again or the stream ends, as the stream keeps the ref's labels: at most
// one series per ref, and refs are bounded (MaxStreamRefs).

// seriesGens hands out head series generations: a fresh one to every new
// head and to a head after each GC pass that removes series.
var seriesGens atomic.Uint64

// refSeries is the series a ref resolved to in the head of generation gen,
// and the hash of its labels (resolve's, needed to recreate it). It is
// immutable once published.
type refSeries struct {
	gen  uint64
	s    *memSeries
	hash uint64
}

// refHint is the last series one ref of a stream resolved to. The pushes of
// a stream run concurrently, so it is read and replaced atomically.
type refHint struct {
	p atomic.Pointer[refSeries]
}

// series returns the remembered series if it was resolved in h at h's
// current generation, else nil.
func (r *refHint) series(h *tenantHead) (*memSeries, uint64) {
	if rs := r.p.Load(); rs != nil && rs.gen == h.gen.Load() {
		return rs.s, rs.hash
	}
	return nil, 0
}

// remember records that the ref resolved to s in h, at the generation
// read before the lookup (gen): a GC pass since then leaves the hint stale.
func (r *refHint) remember(gen uint64, s *memSeries, hash uint64) {
	r.p.Store(&refSeries{gen: gen, s: s, hash: hash})
}
