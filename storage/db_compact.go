package storage

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Compact seals partitions that ended before sealBefore (no flush will
// write to them again) into immutable ones and merges sealed ones into
// CompactedRange partitions, applying tombstones and retention. It also
// finishes the tenant deletions a crash interrupted. Crash-safe at every
// step: an output names the files it replaces, and OpenDB removes those of
// a complete output.
func (db *DB) Compact(ctx context.Context, sealBefore int64) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	if db.isClosed() {
		return ErrClosed
	}
	if err := db.finishTenantDeletions(ctx); err != nil {
		return err
	}
	for _, p := range db.snapshot(func(p *partition) bool { return p.level == 0 && p.maxT < sealBefore }) {
		if err := db.seal(ctx, "seal", p, true); err != nil {
			return err
		}
	}
	if err := db.sealEarly(ctx, sealBefore); err != nil {
		return err
	}
	cr := db.opts.CompactedRange.Milliseconds()
	groups := map[int64][]*partition{}
	for _, p := range db.snapshot(func(*partition) bool { return true }) {
		w := p.minT - mod(p.minT, cr)
		groups[w] = append(groups[w], p)
	}
	starts := make([]int64, 0, len(groups))
	for w := range groups {
		starts = append(starts, w)
	}
	slices.Sort(starts)
	for _, w := range starts {
		g := groups[w]
		if w+cr-1 >= sealBefore {
			if err := db.mergeDaySoFar(ctx, w, g, sealBefore); err != nil {
				return fmt.Errorf("compact window %d so far: %w", w, err)
			}
			continue
		}
		if slices.ContainsFunc(g, func(p *partition) bool { return p.level == 0 || p.maxT >= w+cr }) {
			continue
		}
		if len(g) == 1 && g[0].level >= 2 {
			continue
		}
		if _, err := db.rewrite(ctx, "compact", g, 2, w, w+cr-1); err != nil {
			return fmt.Errorf("compact window %d: %w", w, err)
		}
	}
	return nil
}

// daySoFarParts is how many sealed windows of a day that has not ended
// mergeDaySoFar waits for before it merges them into the day's level-2 part.
const daySoFarParts = 4

// mergeDaySoFar merges the level-1 parts of the ended windows of day w,
// which has not ended (g are its partitions), with the day's level-2 part
// so far, into a new level-2 part from the day's start to the last of
// those windows, once there are daySoFarParts of them: a level-1 part per
// 2h window repeats its index (symbols, postings, series entries) twelve
// times a day, so a day left in level 1 until it ends is the least dense
// sealed data. The day's last merge (in Compact) takes this part and the
// rest. The day's part is rewritten about every daySoFarParts windows.
func (db *DB) mergeDaySoFar(ctx context.Context, w int64, g []*partition, sealBefore int64) error {
	var srcs []*partition
	ended := 0
	maxT := int64(math.MinInt64)
	for _, p := range g {
		switch {
		case p.level == 1 && p.maxT < sealBefore:
			ended++
		case p.level == 2:
		default:
			continue
		}
		srcs = append(srcs, p)
		maxT = max(maxT, p.maxT)
	}
	if ended < daySoFarParts {
		return nil
	}
	slices.SortFunc(srcs, func(a, b *partition) int { return cmpInt64(int64(a.seq), int64(b.seq)) })
	_, err := db.rewrite(ctx, "compact", srcs, 2, w, maxT)
	return err
}

// maxEarlyParts is how many level-1 parts an early seal leaves in a window
// before it merges them: the window's reads consult at most this many
// parts and a level-0 file, and a part is rewritten about once per
// maxEarlyParts early seals.
const maxEarlyParts = 3

// seal detaches the level-0 file p from appends and rewrites it into a
// level-1 part of its window: with the window's level-1 parts (those of
// early seals, or of a late flush) if merge, so that a window ends as one
// part; alone otherwise, which costs only the level-0 file's data. The
// sources are merged in the order they were created.
func (db *DB) seal(ctx context.Context, op string, p *partition, merge bool) error {
	db.detach(p)
	srcs := []*partition{p}
	if merge {
		srcs = append(srcs, db.snapshot(func(q *partition) bool { return q.level == 1 && q.minT == p.minT && q.maxT == p.maxT })...)
		slices.SortFunc(srcs, func(a, b *partition) int { return cmpInt64(int64(a.seq), int64(b.seq)) })
	}
	if _, err := db.rewrite(ctx, op, srcs, 1, p.minT, p.maxT); err != nil {
		return fmt.Errorf("seal partition %s: %w", p.name, err)
	}
	return nil
}

// sealEarly seals the level-0 files of windows that have not ended (they
// end at or after sealBefore): once sealBefore is SealStep past the
// window's start or its last early seal (no flush writes a chunk that
// starts before sealBefore any more, so the part holds the window's data
// up to there for good), or once no Append has written to the file for
// SealIdle (flushes come in bursts when series cut their chunks together).
// Later flushes into the window create a new level-0 file. The part is
// merged with the window's parts when the file is idle or the window has
// maxEarlyParts of them, and written alone otherwise (flushes that never
// stop: the cost of a seal stays that of the file's data).
func (db *DB) sealEarly(ctx context.Context, sealBefore int64) error {
	step, idle := db.opts.SealStep.Milliseconds(), db.opts.SealIdle.Nanoseconds()
	for w := range db.sealedUpTo {
		if w+db.opts.PartitionRange.Milliseconds() <= sealBefore {
			delete(db.sealedUpTo, w) // the window has ended
		}
	}
	now := db.opts.Now().UnixNano()
	sealed := map[int64]bool{}
	for _, p := range db.snapshot(func(p *partition) bool { return p.level == 0 && p.maxT >= sealBefore }) {
		from, ok := db.sealedUpTo[p.minT]
		if !ok {
			from = p.minT
		}
		stepDue := step > 0 && p.minT < sealBefore && sealBefore-from >= step
		idleDue := idle > 0 && now-p.l0.written.Load() >= idle
		if !stepDue && !idleDue {
			continue
		}
		// Idle, the window is quiet (a burst of flushes is over): merge it
		// into one part, which a read would otherwise meet in pieces.
		parts := len(db.snapshot(func(q *partition) bool { return q.level == 1 && q.minT == p.minT && q.maxT == p.maxT }))
		if err := db.seal(ctx, "earlyseal", p, idleDue || parts >= maxEarlyParts); err != nil {
			return err
		}
		if p.minT < sealBefore {
			sealed[p.minT] = true
		}
	}
	for w := range sealed {
		db.sealedUpTo[w] = max(sealBefore, db.sealedUpTo[w])
	}
	return nil
}

// mod is the non-negative remainder of a by b.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// snapshot returns the partitions that keep accepts.
func (db *DB) snapshot(keep func(*partition) bool) []*partition {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []*partition
	for _, p := range db.parts {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// detach stops Append from writing to the level-0 partition p; a later
// Append to its window creates a new file.
func (db *DB) detach(p *partition) {
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.writable[p.minT] == p {
		delete(db.writable, p.minT)
	}
}

// rewrite writes the merge of sources, filtered, as one sealed partition
// of the given level and range, then replaces the sources with it: the
// output is complete (renamed into place) before any source is removed,
// and it names them, so a crash in between is finished by OpenDB. If
// nothing is left, the sources are removed without an output. The sources
// must not be written to any more. It returns the output, or nil.
func (db *DB) rewrite(ctx context.Context, op string, sources []*partition, level int, minT, maxT int64) (*partition, error) {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil, ErrClosed
	}
	out := &partition{level: level, minT: minT, maxT: maxT, seq: db.nextSeq}
	out.name = partitionName(level, minT, maxT, out.seq)
	db.nextSeq++
	src := &mergeSource{ctx: ctx, sources: sources, hidden: db.hidden, filter: db.filterFor}
	// Take the filters now: the ones in force when the sources are read.
	filters := map[string]*tenantFilter{}
	for _, t := range src.Tenants() {
		filters[t] = db.filterFor(t)
	}
	deleted := map[string]deletion{}
	for t, d := range db.deleted {
		deleted[t] = d
	}
	db.mu.Unlock()
	src.filter = func(t string) *tenantFilter { return filters[t] }
	src.hidden = func(p *partition, t string) bool {
		d, ok := deleted[t]
		return ok && p.level > 0 && p.seq <= d.seq
	}
	names := make([]string, len(sources))
	for i, p := range sources {
		names[i] = p.name
	}
	if len(src.Tenants()) > 0 {
		meta := partMeta{MinTime: minT, MaxTime: maxT, Level: level, Sources: names}
		path := filepath.Join(db.dir, out.name)
		// Every sealed part is compressed, level 1 too: the rebuild of its
		// XOR chunks costs less than decoding them (see PART.md), and
		// sealed data is most of what an ingester keeps.
		err := writePart(path, meta, src, partWriteOptions{Compress: true, NoSync: db.opts.NoSync,
			hook: func(s string) error { return db.step("%s:part-%s %s", op, s, out.name) }})
		if err != nil {
			return nil, err
		}
		if err := db.step("%s:written %s", op, out.name); err != nil {
			return nil, err
		}
		sp, err := openPart(path)
		if err != nil {
			return nil, err
		}
		sp.blobs = db.opts.BlobCache
		out.r = sp
	} else {
		out = nil
	}
	return out, db.replace(op, sources, out)
}

// replace swaps sources for out (nil: nothing) in the partition list,
// closes the sources and removes their files.
func (db *DB) replace(op string, sources []*partition, out *partition) error {
	names := make([]string, len(sources))
	for i, p := range sources {
		names[i] = p.name
	}
	var add []*partition
	if out != nil {
		add = append(add, out)
	}
	if err := db.recordPartitions(add, names); err != nil {
		if out != nil { // not committed: gone, lest a retry name the same sources
			_ = out.r.Close()
			_ = os.Remove(filepath.Join(db.dir, out.name))
		}
		return err
	}
	if err := db.step("%s:manifest %s", op, strings.Join(names, ",")); err != nil {
		return err
	}
	db.mu.Lock()
	db.parts = slices.DeleteFunc(db.parts, func(p *partition) bool { return slices.Contains(sources, p) })
	for _, p := range sources {
		if db.writable[p.minT] == p {
			delete(db.writable, p.minT)
		}
	}
	if out != nil {
		db.addPartition(out)
	}
	db.mu.Unlock()
	for _, p := range sources {
		if err := p.r.Close(); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(db.dir, p.name)); err != nil {
			return err
		}
		if err := db.step("%s:removed %s", op, p.name); err != nil {
			return err
		}
	}
	if !db.opts.NoSync {
		if err := syncDir(db.dir); err != nil {
			return err
		}
	}
	if err := db.forgetPartitions(names); err != nil {
		return err
	}
	return db.step("%s:forgotten %s", op, strings.Join(names, ","))
}

// RetentionPolicy says how long each tenant's data is kept, and how many
// bytes the whole store may use (0: no bound; oldest partitions go first).
type RetentionPolicy struct {
	// Period is the retention of a tenant; 0 or less keeps its data for
	// ever.
	Period   func(tenant string) time.Duration
	MaxBytes int64
}

// ApplyRetention drops the data older than each tenant's retention period:
// at once for reads (the cut-off, now - period, is recorded in meta.db and
// holds until the next pass), then on disk: a partition file whose range
// ended before the cut-off of every tenant in it is deleted; a level-0 file
// drops the bucket of a tenant whose cut-off it ended before, and a sealed
// one is rewritten without it. Then it deletes the oldest partitions while
// the store is over MaxBytes, keeping the newest one.
func (db *DB) ApplyRetention(ctx context.Context, p RetentionPolicy) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	if db.isClosed() {
		return ErrClosed
	}
	now := db.opts.Now().UnixMilli()
	db.mu.Lock()
	cutoffs := map[string]int64{}
	for _, t := range db.tenantsLocked() {
		if p.Period == nil {
			break
		}
		if d := p.Period(t); d > 0 {
			cutoffs[t] = now - d.Milliseconds()
		}
	}
	err := db.putCutoffs(db.cutoffs, cutoffs)
	if err == nil {
		db.cutoffs = cutoffs
	}
	db.mu.Unlock()
	if err != nil {
		return fmt.Errorf("record retention cut-offs: %w", err)
	}
	if err := db.step("retention:cutoffs"); err != nil {
		return err
	}
	for _, part := range db.snapshot(func(*partition) bool { return true }) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := db.expire(ctx, part, cutoffs); err != nil {
			return fmt.Errorf("retention of %s: %w", part.name, err)
		}
	}
	return db.applyMaxBytes(p.MaxBytes)
}

// expire deletes p if every tenant in it is past its cut-off, else drops the
// tenants that are.
func (db *DB) expire(ctx context.Context, p *partition, cutoffs map[string]int64) error {
	var expired, kept []string
	db.mu.RLock()
	for _, t := range p.r.Tenants() {
		if db.hidden(p, t) {
			continue
		}
		if c, ok := cutoffs[t]; ok && p.maxT < c {
			expired = append(expired, t)
		} else {
			kept = append(kept, t)
		}
	}
	db.mu.RUnlock()
	switch {
	case len(expired) == 0:
		return nil
	case len(kept) == 0:
		db.detach(p)
		return db.replace("retention", []*partition{p}, nil)
	case p.level == 0:
		return db.dropL0Tenants(p, "retention", expired)
	default:
		_, err := db.rewrite(ctx, "retention", []*partition{p}, p.level, p.minT, p.maxT)
		return err
	}
}

// dropL0Tenants deletes the buckets of tenants from the level-0 file p.
func (db *DB) dropL0Tenants(p *partition, op string, tenants []string) error {
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	for _, t := range tenants {
		if err := p.l0.deleteTenant(t); err != nil {
			return err
		}
		if err := db.step("%s:dropped %s %s", op, t, p.name); err != nil {
			return err
		}
	}
	return nil
}

// applyMaxBytes deletes the oldest partitions while the store is over
// maxBytes, keeping the newest one.
func (db *DB) applyMaxBytes(maxBytes int64) error {
	if maxBytes <= 0 {
		return nil
	}
	for {
		db.mu.RLock()
		total := dirBytes(filepath.Join(db.dir, metaFileName))
		var oldest *partition
		for _, p := range db.parts {
			total += dirBytes(filepath.Join(db.dir, p.name))
			if oldest == nil || p.maxT < oldest.maxT || (p.maxT == oldest.maxT && p.seq < oldest.seq) {
				oldest = p
			}
		}
		n := len(db.parts)
		db.mu.RUnlock()
		if total <= maxBytes || n <= 1 {
			return nil
		}
		db.logger.Info("deleting the oldest partition: store over its size bound", "file", oldest.name, "bytes", total, "max_bytes", maxBytes)
		db.detach(oldest)
		if err := db.replace("retention-size", []*partition{oldest}, nil); err != nil {
			return err
		}
	}
}

// dirBytes returns the size of the file at path, 0 if it is gone.
func dirBytes(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// DeleteTenant removes every persisted sample and tombstone of tenant. It
// records the deletion (reads hide the tenant from then on), deletes the
// tenant's bucket in every level-0 file, rewrites every sealed partition
// holding the tenant without it, and clears the record. Its cost is a
// rewrite of each sealed partition the tenant has data in (so about the
// store's size if the tenant is in every partition). A crash leaves the
// record, and OpenDB and the next Compact finish the deletion.
func (db *DB) DeleteTenant(tenant string) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	db.appendMu.Lock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		db.appendMu.Unlock()
		return ErrClosed
	}
	d := deletion{seq: db.nextSeq - 1}
	if old, ok := db.deleted[tenant]; ok {
		d.seq = max(d.seq, old.seq)
	}
	err := db.putDeletion(tenant, &d)
	if err == nil {
		db.deleted[tenant] = d
		delete(db.tombs, tenant)
		delete(db.cutoffs, tenant)
	}
	db.mu.Unlock()
	if err == nil {
		err = db.step("delete:recorded %s", tenant)
	}
	if err == nil {
		err = db.dropL0Buckets(tenant, d)
	}
	db.appendMu.Unlock()
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", tenant, err)
	}
	if err := db.finishTenantDeletions(context.Background()); err != nil {
		return fmt.Errorf("delete tenant %q: %w", tenant, err)
	}
	return nil
}

// dropL0Buckets deletes tenant's bucket in the level-0 files of a deletion
// and records that in meta.db. Callers hold appendMu (or own db).
func (db *DB) dropL0Buckets(tenant string, d deletion) error {
	for _, p := range db.snapshot(func(p *partition) bool { return p.level == 0 && p.seq <= d.seq }) {
		if err := p.l0.deleteTenant(tenant); err != nil {
			return err
		}
		if err := db.step("delete:dropped %s %s", tenant, p.name); err != nil {
			return err
		}
	}
	d.l0Done = true
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.putDeletion(tenant, &d); err != nil {
		return err
	}
	db.deleted[tenant] = d
	return nil
}

// redoTenantDeletions deletes again the level-0 buckets of the deletions a
// crash interrupted before they were gone. Run by OpenDB, before any
// Append can write to those files again.
func (db *DB) redoTenantDeletions() error {
	for t, d := range db.deleted {
		if d.l0Done {
			continue
		}
		if err := db.dropL0Buckets(t, d); err != nil {
			return fmt.Errorf("delete tenant %q: %w", t, err)
		}
	}
	return nil
}

// finishTenantDeletions rewrites the sealed partitions that still hold a
// deleted tenant, then clears the deletions. Callers hold maintMu.
func (db *DB) finishTenantDeletions(ctx context.Context) error {
	db.mu.RLock()
	pending := map[string]deletion{}
	for t, d := range db.deleted {
		pending[t] = d
	}
	db.mu.RUnlock()
	for tenant, d := range pending {
		victims := db.snapshot(func(p *partition) bool {
			return p.level > 0 && p.seq <= d.seq && p.hasTenant(tenant)
		})
		for _, p := range victims {
			if _, err := db.rewrite(ctx, "delete", []*partition{p}, p.level, p.minT, p.maxT); err != nil {
				return fmt.Errorf("delete tenant %q: %w", tenant, err)
			}
		}
		db.mu.Lock()
		err := db.putDeletion(tenant, nil)
		if err == nil {
			delete(db.deleted, tenant)
		}
		db.mu.Unlock()
		if err != nil {
			return fmt.Errorf("delete tenant %q: %w", tenant, err)
		}
		if err := db.step("delete:cleared %s", tenant); err != nil {
			return err
		}
	}
	return nil
}

// CleanTombstones rewrites every partition holding deleted data without it
// (level-0 files in place, sealed ones as new files), then drops the
// tombstones that can cover no data any more: those that end before
// headMinT(tenant), the oldest time the tenant may still flush (its head's
// min time). The others are kept for the data still to come.
func (db *DB) CleanTombstones(ctx context.Context, headMinT func(tenant string) int64) error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	if db.isClosed() {
		return ErrClosed
	}
	db.mu.RLock()
	tombs := map[string][]tombstoneEntry{}
	for t, es := range db.tombs {
		tombs[t] = slices.Clone(es)
	}
	db.mu.RUnlock()
	for _, p := range db.snapshot(func(*partition) bool { return true }) {
		if err := db.cleanPartition(ctx, p, tombs); err != nil {
			return fmt.Errorf("clean tombstones of %s: %w", p.name, err)
		}
	}
	for tenant, es := range tombs {
		limit := int64(math.MinInt64)
		if headMinT != nil {
			limit = headMinT(tenant)
		}
		var drop []uint64
		for _, e := range es {
			if e.t.MaxTime < limit {
				drop = append(drop, e.key)
			}
		}
		db.mu.Lock()
		err := db.dropTombstones(tenant, drop)
		db.mu.Unlock()
		if err != nil {
			return err
		}
		if err := db.step("clean:dropped %s", tenant); err != nil {
			return err
		}
	}
	return nil
}

// cleanPartition purges from p the data the tombstones delete.
func (db *DB) cleanPartition(ctx context.Context, p *partition, tombs map[string][]tombstoneEntry) error {
	var dirty []string
	for _, tenant := range p.r.Tenants() {
		for _, e := range tombs[tenant] {
			if e.t.MaxTime < p.minT || e.t.MinTime > p.maxT {
				continue
			}
			ss, err := p.r.Select(tenant, e.t.MinTime, e.t.MaxTime, SelectOptions{SkipChunks: true}, e.t.Matchers)
			if err != nil {
				return err
			}
			if len(ss) > 0 {
				dirty = append(dirty, tenant)
				break
			}
		}
	}
	if len(dirty) == 0 {
		return nil
	}
	if p.level > 0 {
		_, err := db.rewrite(ctx, "clean", []*partition{p}, p.level, p.minT, p.maxT)
		return err
	}
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	for _, tenant := range dirty {
		db.mu.RLock()
		flt := db.filterFor(tenant)
		db.mu.RUnlock()
		if err := p.l0.purge(tenant, flt); err != nil {
			return err
		}
		if err := db.step("clean:purged %s %s", tenant, p.name); err != nil {
			return err
		}
	}
	return nil
}
