package ingester

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// Idempotent retries against persisted data (WAL.md, "Out-of-order
// samples").
//
// A retried push that had partly landed may hold samples whose chunks a
// flush has already moved from memory to the DB. The ordering check under
// appendMu sees only memory, so it would refuse them as out of order or too
// old. Such a refusal is not final when the sample may be persisted: the
// series has persisted data (flagPersisted, or it may be a series GC removed
// and recreated: removedMaxT), and the sample is older than everything the
// series holds in memory (the chunks in the DB all end before it) and not
// after oooFloor (nothing after it is persisted). Those samples are set
// aside (dbCheck) and looked up in the DB after the push's append, outside
// appendMu: an exact duplicate of a persisted sample is accepted silently
// and not stored again; another value at its timestamp is a duplicate-
// timestamp error; an absent one gets the refusal the head decided.
//
// Deciding outside appendMu is safe because the decision stores nothing:
// such a sample is never appended, only answered. And it cannot race a
// flush: a flush writes a chunk to the DB before it drops it from memory,
// so a sample that was not in memory under appendMu is in the DB already
// if it is anywhere, and no later push can add a sample at or before
// oooFloor or before the series' chunks in memory.
//
// Pushes that refuse nothing, and refusals of series that never persisted
// anything, never read the DB. A series not in the head whose persisted
// samples reach the push's newest (resolve) is looked up the same way.

// dbCheck is a sample the head refused that may be an exact duplicate of a
// persisted one.
type dbCheck struct {
	smp  anyMergeSample // the pushed sample (h or fh set: a native histogram)
	kind rejectKind     // the head's refusal, if the DB does not hold it
	err  sampleError
	// at is the persisted sample at smp.t, if found.
	at    anyMergeSample
	found bool
}

// deferredSeries is a series of a push whose refusals wait for DB lookups:
// sr holds its other refusals, b.dbChecks[from:to] its samples to look up.
type deferredSeries struct {
	ts       *arguspb.TimeSeries
	sr       seriesRejects
	from, to int
}

// mayBePersistedLocked reports whether a sample at t that the series does
// not hold in memory may be persisted: older than the series' chunks in
// memory, and the series has persisted data up to at least t. The caller
// holds mu (and appendMu, for lim).
func (s *memSeries) mayBePersistedLocked(t int64, lim *pushBounds) bool {
	if t >= s.firstInMemoryLocked() {
		return false
	}
	return (s.flags&flagPersisted != 0 && t <= lim.floor) || t <= lim.removedMaxT
}

// mayBePersisted is mayBePersistedLocked for a caller that does not hold mu.
func (s *memSeries) mayBePersisted(t int64, lim *pushBounds) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mayBePersistedLocked(t, lim)
}

// refuse records the refusal of smp (kind k, error err) in sr, or, when it
// may be persisted (onDisk), sets it aside for checkPersisted.
func (b *pushBatch) refuse(sr *seriesRejects, onDisk bool, smp anyMergeSample, k rejectKind, err sampleError) {
	if onDisk {
		b.dbChecks = append(b.dbChecks, dbCheck{smp: smp, kind: k, err: err})
		return
	}
	if smp.h != nil || smp.fh != nil {
		sr.addHist(k, err)
		return
	}
	sr.add(k, err)
}

// flushRejects records the refusals of a series: now, or after
// checkPersisted when some of its samples since from were set aside.
func (b *pushBatch) flushRejects(sr *seriesRejects, ts *arguspb.TimeSeries, from int) {
	if len(b.dbChecks) == from {
		sr.flush(&b.rej, ts)
		return
	}
	b.deferred = append(b.deferred, deferredSeries{ts: ts, sr: *sr, from: from, to: len(b.dbChecks)})
}

// deferSeries sets aside every sample of ts, a series not in the head that
// resolve refuses whole (kind k: out of order, its persisted samples
// reaching its newest, or too old; ref is the persisted max time or the
// minimum valid time), so that exact duplicates of persisted samples are
// accepted. Its histograms are b.hdec[hFirst:].
func (b *pushBatch) deferSeries(ts *arguspb.TimeSeries, hFirst int, k rejectKind, ref int64) {
	from := len(b.dbChecks)
	refusal := func(t int64) sampleError { return sampleError{reason: k.reason(), t: t, ref: ref} }
	var sr seriesRejects
	for _, smp := range ts.GetSamples() {
		t := smp.GetTimestampMs()
		b.refuse(&sr, true, anyMergeSample{t: t, v: smp.GetValue()}, k, refusal(t))
	}
	for _, hs := range b.hdec[hFirst:] {
		b.refuse(&sr, true, hs.mergeSample(), k, refusal(hs.t))
	}
	b.flushRejects(&sr, ts, from)
}

// checkPersisted looks up the samples set aside by the push of b in the DB
// and records the refusals of their series: an exact duplicate of a
// persisted sample is accepted (not stored again), another value at its
// time is a duplicate, an absent sample keeps the head's refusal. A DB that
// cannot be read keeps the head's refusals: the sender sees the error and
// nothing is lost. It reads the DB once per series, outside appendMu.
func (h *tenantHead) checkPersisted(b *pushBatch) {
	for k := range b.deferred {
		d := &b.deferred[k]
		checks := b.dbChecks[d.from:d.to]
		if err := h.lookupPersisted(d.ts.GetLabels(), checks); err != nil {
			h.logger.Warn("persisted samples not read for a retried push, refused as the head decided",
				"tenant", h.id, "err", err)
		}
		for _, c := range checks {
			hist := c.smp.h != nil || c.smp.fh != nil
			var refusal sampleError
			kind := c.kind
			switch {
			case c.found && c.at.equals(c.smp):
				h.metrics.persistedDuplicates.Inc()
				continue
			case c.found:
				kind, refusal = rejectDuplicate, sampleError{reason: rejectDuplicate.reason(), t: c.smp.t, ref: c.smp.t}
			default:
				refusal = c.err
			}
			if hist {
				d.sr.addHist(kind, refusal)
			} else {
				d.sr.add(kind, refusal)
			}
		}
		d.sr.flush(&b.rej, d.ts)
	}
}

// lookupPersisted sets at and found of every check to the persisted sample
// of the series ls at its time, with one DB read over their time range.
func (h *tenantHead) lookupPersisted(ls []*arguspb.Label, checks []dbCheck) error {
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, c := range checks {
		mint, maxt = min(mint, c.smp.t), max(maxt, c.smp.t)
	}
	ms := make([]*labels.Matcher, 0, len(ls))
	for _, l := range ls {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.GetName(), l.GetValue()))
	}
	ss, err := h.store.Select(mint, maxt, storage.SelectOptions{}, ms...)
	if err != nil {
		return fmt.Errorf("read persisted samples: %w", err)
	}
	slices.SortFunc(checks, func(a, b dbCheck) int { return cmp.Compare(a.smp.t, b.smp.t) })
	for _, s := range ss {
		if s.Labels.Len() != len(ls) { // The matchers also match series with more labels.
			continue
		}
		for _, c := range s.Chunks {
			if err := markChunk(c, checks); err != nil {
				return err
			}
		}
	}
	return nil
}

// markChunk sets at and found of the checks (sorted by time) whose time has
// a sample in the persisted chunk c.
func markChunk(c storage.Chunk, checks []dbCheck) error {
	ch, err := chunkenc.FromData(c.Encoding, c.Data)
	if err != nil {
		return fmt.Errorf("decode persisted chunk: %w", err)
	}
	it := ch.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		smp := sampleOf(it, vt)
		k, _ := slices.BinarySearchFunc(checks, smp.t, func(c dbCheck, t int64) int { return cmp.Compare(c.smp.t, t) })
		for ; k < len(checks) && checks[k].smp.t == smp.t; k++ {
			checks[k].at, checks[k].found = smp, true
		}
	}
	return it.Err()
}
