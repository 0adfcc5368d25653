package ingester

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
)

// gcCandidate is a series that a truncation may remove, with the lastT it
// had when chosen: if a push moved it since, the series stays.
type gcCandidate struct {
	s     *memSeries
	lastT int64
}

// gcPlan is the series of one tenant that a truncation or a retention pass
// removes.
type gcPlan struct {
	h           *tenantHead
	idleBefore  uint32 // a candidate must have had no sample since (Unix seconds)
	candidates  []gcCandidate
	removedMaxT int64
}

// removeIdleSeries removes from every head the series with nothing in
// memory and no sample for MaxChunkIdle. Their data stays queryable from the
// DB. The caller holds truncMu. It returns how many series it removed.
func (i *Ingester) removeIdleSeries(heads []*tenantHead) (int, error) {
	var plans []gcPlan
	for _, h := range heads {
		idleBefore := unixSeconds(h.nowMs() - h.cfg.MaxChunkIdle.Milliseconds())
		plans = append(plans, h.planGC(idleBefore, math.MaxInt64))
	}
	return i.removeSeries(plans)
}

// removeSeries removes the candidates of plans from their heads. Each
// tenant's removedMaxT is raised, and written durably for every tenant in
// one file, before any of its series leaves the head; the file is written
// without holding any tenant's appendMu. The caller holds truncMu.
func (i *Ingester) removeSeries(plans []gcPlan) (int, error) {
	raised := map[string]int64{}
	for _, p := range plans {
		if len(p.candidates) > 0 && p.removedMaxT > p.h.removedMaxT.Load() {
			raised[p.h.id] = p.removedMaxT
		}
	}
	if len(raised) > 0 {
		if err := i.raiseRemovedMaxT(raised); err != nil {
			return 0, err
		}
		for _, p := range plans {
			if t, ok := raised[p.h.id]; ok {
				p.h.removedMaxT.Store(t)
			}
		}
	}
	n := 0
	for _, p := range plans {
		n += p.h.removeSeries(p)
	}
	return n, nil
}

// planGC returns the series with nothing in memory, no sample since
// idleBefore (wall clock, Unix seconds) and a lastT before lastBefore, and
// the removedMaxT that covers them.
func (h *tenantHead) planGC(idleBefore uint32, lastBefore int64) gcPlan {
	var empty []*memSeries
	h.series.forEach(func(s *memSeries) {
		s.mu.Lock()
		if !s.inMemoryLocked() && s.lastAppend < idleBefore {
			empty = append(empty, s)
		}
		s.mu.Unlock()
	})
	p := gcPlan{h: h, idleBefore: idleBefore, removedMaxT: h.removedMaxT.Load()}
	if len(empty) == 0 {
		return p
	}
	h.appendMu.Lock() // lastT and deleted
	for _, s := range empty {
		if !s.deleted && s.lastT < lastBefore {
			p.candidates = append(p.candidates, gcCandidate{s: s, lastT: s.lastT})
			p.removedMaxT = max(p.removedMaxT, s.lastT) // lastT >= the persisted max time.
		}
	}
	h.appendMu.Unlock()
	return p
}

// removeSeries removes the candidates of p that are still empty, idle and
// unchanged since planGC. A push that resolved one before sees deleted and
// recreates it. The caller holds the Ingester's truncMu (aliases).
func (h *tenantHead) removeSeries(p gcPlan) int {
	if len(p.candidates) == 0 {
		return 0
	}
	deleted := make(map[promstorage.SeriesRef]struct{}, len(p.candidates))
	affected := map[labels.Label]struct{}{}
	var gone []*memSeries
	h.appendMu.Lock()
	h.createMu.Lock() // The counts change with the series map.
	// A new generation before any series is deleted: stream hints go stale
	// (refseries.go).
	h.gen.Store(seriesGens.Add(1))
	for _, c := range p.candidates {
		s := c.s
		if s.deleted || s.lastT != c.lastT {
			continue
		}
		s.mu.Lock()
		ok := !s.inMemoryLocked() && s.lastAppend < p.idleBefore
		if ok {
			s.flags |= flagGone // Readers stop decoding its symbols, which are released below.
		}
		s.mu.Unlock()
		if !ok {
			continue
		}
		s.deleted = true
		h.series.remove(h.series.syms.hashSymbols(s.syms), s)
		h.counts.remove(h.series.syms.metricName(s.syms))
		deleted[promstorage.SeriesRef(s.ref)] = struct{}{}
		h.series.syms.rangeSymbols(s.syms, func(name, value string) bool {
			affected[labels.Label{Name: name, Value: value}] = struct{}{}
			return true
		})
		gone = append(gone, s)
	}
	h.createMu.Unlock()
	h.appendMu.Unlock()
	if len(deleted) == 0 {
		return 0
	}
	h.postings.Delete(deleted, affected)
	// Out of the maps and the postings, gone and deleted: no reader decodes
	// these series' symbols any more (symbols.go).
	for _, s := range gone {
		h.series.syms.release(s.syms)
	}
	for ref, s := range h.aliases {
		if s.deleted {
			delete(h.aliases, ref)
		}
	}
	h.instanceSeries.Add(-int64(len(deleted)))
	h.metrics.seriesGCed.Add(float64(len(deleted)))
	return len(deleted)
}

// removedMaxTFile is the file, under -storage.path, that keeps every
// tenant's removedMaxT across restarts, one "tenant time" line each. A
// tenant absent from it never had a series removed from its head, so every
// series it persisted is in the WAL.
const removedMaxTFile = "removed_series_max_time"

// raiseRemovedMaxT records the raised bounds of some tenants and writes the
// bounds of every tenant durably.
func (i *Ingester) raiseRemovedMaxT(raised map[string]int64) error {
	i.removedMu.Lock()
	defer i.removedMu.Unlock()
	next := make(map[string]int64, len(i.removed)+len(raised))
	for id, t := range i.removed {
		next[id] = t
	}
	for id, t := range raised {
		next[id] = max(next[id], t)
	}
	if err := writeRemovedMaxT(i.cfg.Dir, next); err != nil {
		return err
	}
	i.removed = next
	return nil
}

// removedMaxTOf returns the removedMaxT of tenant, math.MinInt64 if none.
func (i *Ingester) removedMaxTOf(tenant string) int64 {
	i.removedMu.Lock()
	defer i.removedMu.Unlock()
	if t, ok := i.removed[tenant]; ok {
		return t
	}
	return math.MinInt64
}

func readRemovedMaxT(dir string) (map[string]int64, error) {
	out := map[string]int64{}
	b, err := os.ReadFile(filepath.Join(dir, removedMaxTFile))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read removed series max time: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		id, v, ok := strings.Cut(sc.Text(), " ")
		t, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, fmt.Errorf("%s line %d: want \"tenant time\", got %q", removedMaxTFile, n, sc.Text())
		}
		out[id] = t
	}
	return out, nil
}

// writeRemovedMaxT replaces the file atomically and durably: temporary file,
// fsync, rename, fsync of the directory.
func writeRemovedMaxT(dir string, bounds map[string]int64) error {
	ids := make([]string, 0, len(bounds))
	for id := range bounds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var buf bytes.Buffer
	for _, id := range ids {
		fmt.Fprintf(&buf, "%s %d\n", id, bounds[id])
	}
	path := filepath.Join(dir, removedMaxTFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write removed series max time: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write removed series max time: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
