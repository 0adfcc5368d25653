package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/storage"
)

// tombstoneStore is what deletion needs from the persistent store: a
// durable record of each tenant's tombstones, and their purge. storage.DB
// implements it; until the ingester runs on one DB, fileTombstones does.
type tombstoneStore interface {
	tombstoneReader
	// DeleteSeries records t for tenant and returns once it is durable.
	DeleteSeries(tenant string, t storage.Tombstone) error
	// CleanTombstones purges the persisted data tombstones cover and drops
	// the tombstones that no data can be under any more.
	CleanTombstones(ctx context.Context, headMinT func(tenant string) int64) error
}

// tombstoneReader gives the tombstones in force for a tenant: what a head
// read masks its chunks with. The returned slice is shared: read only.
type tombstoneReader interface {
	Tombstones(tenant string) []storage.Tombstone
}

// tombstonesFile is the name of a tenant's tombstone file in its directory.
const tombstonesFile = "tombstones.json"

// fileTombstones keeps each tenant's tombstones in a small JSON file in the
// tenant's directory (<tenants dir>/<tenant>/tombstones.json), rewritten
// whole and atomically (temporary file, fsync, rename, fsync of the
// directory) by every deletion, and cached in memory. It stands in for
// storage.DB's tombstones while the ingester keeps a chunk store per
// tenant, which cannot rewrite its data: CleanTombstones therefore keeps
// every tombstone, and reads answer the same either way. Safe for
// concurrent use.
type fileTombstones struct {
	dir string // the directory of the tenant directories

	mu       sync.Mutex
	byTenant map[string][]storage.Tombstone // guarded by mu; a loaded tenant is present, maybe with nil
}

var _ tombstoneStore = (*fileTombstones)(nil)

func newFileTombstones(dir string) *fileTombstones {
	return &fileTombstones{dir: dir, byTenant: map[string][]storage.Tombstone{}}
}

// Tombstones returns tenant's tombstones, reading its file on first use. A
// file that cannot be read masks nothing here, but DeleteSeries, which
// reads it too, then fails loudly rather than forget it.
func (f *fileTombstones) Tombstones(tenant string) []storage.Tombstone {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts, _ := f.loadLocked(tenant)
	return ts
}

// DeleteSeries appends t to tenant's file (the tenant's directory must
// exist) and returns once the file is durable.
func (f *fileTombstones) DeleteSeries(tenant string, t storage.Tombstone) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts, err := f.loadLocked(tenant)
	if err != nil {
		return err
	}
	// A new slice: readers may hold the old one.
	next := append(append(make([]storage.Tombstone, 0, len(ts)+1), ts...), t)
	if err := writeTombstones(filepath.Join(f.dir, tenant), next); err != nil {
		return err
	}
	f.byTenant[tenant] = next
	return nil
}

// CleanTombstones keeps every tombstone: a per-tenant chunk store cannot
// drop the data they cover (see fileTombstones).
func (*fileTombstones) CleanTombstones(context.Context, func(string) int64) error { return nil }

func (f *fileTombstones) loadLocked(tenant string) ([]storage.Tombstone, error) {
	if ts, ok := f.byTenant[tenant]; ok {
		return ts, nil
	}
	ts, err := readTombstones(filepath.Join(f.dir, tenant))
	if err != nil {
		return nil, err
	}
	f.byTenant[tenant] = ts
	return ts, nil
}

// tombstoneJSON is the file form of a storage.Tombstone.
type tombstoneJSON struct {
	MinTime  int64         `json:"min_time_ms"`
	MaxTime  int64         `json:"max_time_ms"`
	Matchers []matcherJSON `json:"matchers"`
}

type matcherJSON struct {
	Type  labels.MatchType `json:"type"`
	Name  string           `json:"name"`
	Value string           `json:"value"`
}

func readTombstones(dir string) ([]storage.Tombstone, error) {
	b, err := os.ReadFile(filepath.Join(dir, tombstonesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tombstones: %w", err)
	}
	var raw []tombstoneJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode tombstones %s: %w", filepath.Join(dir, tombstonesFile), err)
	}
	out := make([]storage.Tombstone, 0, len(raw))
	for _, r := range raw {
		t := storage.Tombstone{MinTime: r.MinTime, MaxTime: r.MaxTime}
		for _, m := range r.Matchers {
			lm, err := labels.NewMatcher(m.Type, m.Name, m.Value)
			if err != nil {
				return nil, fmt.Errorf("decode tombstones %s: %w", filepath.Join(dir, tombstonesFile), err)
			}
			t.Matchers = append(t.Matchers, lm)
		}
		out = append(out, t)
	}
	return out, nil
}

// writeTombstones replaces the tombstone file of dir with ts, atomically
// and durably.
func writeTombstones(dir string, ts []storage.Tombstone) error {
	raw := make([]tombstoneJSON, 0, len(ts))
	for _, t := range ts {
		r := tombstoneJSON{MinTime: t.MinTime, MaxTime: t.MaxTime}
		for _, m := range t.Matchers {
			r.Matchers = append(r.Matchers, matcherJSON{Type: m.Type, Name: m.Name, Value: m.Value})
		}
		raw = append(raw, r)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("encode tombstones: %w", err)
	}
	path := filepath.Join(dir, tombstonesFile)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("write tombstones: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write tombstones: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write tombstones: sync %s: %w", dir, err)
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// interval is a closed range of deleted sample times.
type interval struct{ mint, maxt int64 }

func (iv interval) overlaps(mint, maxt int64) bool { return iv.mint <= maxt && iv.maxt >= mint }

// deleted reports whether t is in one of ivs.
func deleted(ivs []interval, t int64) bool {
	for _, iv := range ivs {
		if t >= iv.mint && t <= iv.maxt {
			return true
		}
	}
	return false
}

// deletedIntervals returns the ranges of the tombstones that lset matches.
func deletedIntervals(ts []storage.Tombstone, lset labels.Labels) []interval {
	var out []interval
	for _, t := range ts {
		if matchesAll(t.Matchers, lset) {
			out = append(out, interval{t.MinTime, t.MaxTime})
		}
	}
	return out
}

// matchesAll reports whether lset matches every matcher, an absent label
// being the empty value, as selectors do.
func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// maskDeleted removes the deleted samples from the snapshots of a head
// read: a chunk with deleted samples is re-encoded without them (dropped if
// none is left), and without chunks (series API) a series keeps inRange
// only if a sample in [mint, maxt] survives. Every snapshot is kept: its
// minT still decides which store chunks the head supersedes. Series without
// tombstones cost one matcher check per tombstone.
func (h *tenantHead) maskDeleted(snaps []headSnapshot, mint, maxt int64, mode seriesMode) ([]headSnapshot, error) {
	stones := h.deletions.Tombstones(h.id)
	if len(stones) == 0 {
		return snaps, nil
	}
	for n := range snaps {
		snap := &snaps[n]
		ivs := deletedIntervals(stones, snap.lset)
		if len(ivs) == 0 {
			continue
		}
		if mode == withoutChunks {
			if snap.inRange {
				kept, err := h.keepsSamples(snap.lset, mint, maxt, ivs)
				if err != nil {
					return nil, err
				}
				snap.inRange = kept
			}
			continue
		}
		chks, err := maskChunks(snap.chunks, ivs)
		if err != nil {
			return nil, err
		}
		snap.chunks = chks
	}
	return snaps, nil
}

// keepsSamples reports whether the head series lset has an in-memory sample
// in [mint, maxt] outside ivs.
func (h *tenantHead) keepsSamples(lset labels.Labels, mint, maxt int64, ivs []interval) (bool, error) {
	s := h.series.getByHash(lset.Hash(), lset)
	if s == nil {
		return false, nil // Removed since the read: its data is in the store.
	}
	s.mu.Lock()
	chks := s.appendChunksLocked(nil, mint, maxt)
	s.mu.Unlock()
	for _, c := range chks {
		xc, err := chunkenc.FromData(c.Encoding, c.Data)
		if err != nil {
			return false, fmt.Errorf("read head chunk of %s: %w", lset, err)
		}
		sit := xc.Iterator(nil)
		for sit.Next() == chunkenc.ValFloat {
			t, _ := sit.At()
			if t >= mint && t <= maxt && !deleted(ivs, t) {
				return true, nil
			}
		}
		if err := sit.Err(); err != nil {
			return false, fmt.Errorf("read head chunk of %s: %w", lset, err)
		}
	}
	return false, nil
}

// maskChunks returns chks without the samples in ivs, in a new slice
// (chks may share its array with other snapshots). Chunks that do not
// overlap ivs are kept as they are.
func maskChunks(chks []storage.Chunk, ivs []interval) ([]storage.Chunk, error) {
	out := make([]storage.Chunk, 0, len(chks))
	for _, c := range chks {
		touched := false
		for _, iv := range ivs {
			if iv.overlaps(c.MinTime, c.MaxTime) {
				touched = true
				break
			}
		}
		if !touched {
			out = append(out, c)
			continue
		}
		kept, ok, err := reencodeWithout(c, ivs)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, kept)
		}
	}
	return out, nil
}

// reencodeWithout returns c re-encoded without its samples in ivs, and
// false if none is left.
func reencodeWithout(c storage.Chunk, ivs []interval) (storage.Chunk, bool, error) {
	src, err := chunkenc.FromData(c.Encoding, c.Data)
	if err != nil {
		return storage.Chunk{}, false, fmt.Errorf("read chunk to mask: %w", err)
	}
	dst := chunkenc.NewXORChunk()
	app, err := dst.Appender()
	if err != nil {
		return storage.Chunk{}, false, fmt.Errorf("mask chunk: %w", err)
	}
	out := storage.Chunk{Encoding: chunkenc.EncXOR}
	n := 0
	it := src.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		if deleted(ivs, t) {
			continue
		}
		if n == 0 {
			out.MinTime = t
		}
		out.MaxTime = t
		app.Append(0, t, v)
		n++
	}
	if err := it.Err(); err != nil {
		return storage.Chunk{}, false, fmt.Errorf("read chunk to mask: %w", err)
	}
	if n == 0 {
		return storage.Chunk{}, false, nil
	}
	out.Data = dst.Bytes()
	return out, true, nil
}
