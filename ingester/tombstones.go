package ingester

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/storage"
)

// tombstoneStore is what deletion needs from the persistent store: a
// durable record of each tenant's tombstones, which its own reads apply,
// and their purge. storage.DB implements it (chunkDB embeds it).
type tombstoneStore interface {
	// DeleteSeries records t for tenant and returns once it is durable.
	DeleteSeries(tenant string, t storage.Tombstone) error
	// Tombstones gives the tombstones in force for a tenant: what a head
	// read masks its chunks with. The matchers are shared: read only.
	Tombstones(tenant string) []storage.Tombstone
	// CleanTombstones purges the persisted data tombstones cover and drops
	// the tombstones that no data can be under any more.
	CleanTombstones(ctx context.Context, headMinT func(tenant string) int64) error
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
// read (the DB masks its own chunks): a chunk with deleted samples is re-encoded without them (dropped if
// none is left), and without chunks (series API) a series keeps inRange
// only if a sample in [mint, maxt] survives. Every snapshot is kept: its
// minT still decides which store chunks the head supersedes. Series without
// tombstones cost one matcher check per tombstone.
func (h *tenantHead) maskDeleted(snaps []headSnapshot, mint, maxt int64, mode seriesMode) ([]headSnapshot, error) {
	if h.store.db == nil {
		return snaps, nil
	}
	stones := h.store.db.Tombstones(h.id)
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
	s := h.series.getByLabels(lset)
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
	out, n, _, err := storage.ChunkWithout(c, func(t int64) bool { return deleted(ivs, t) })
	if err != nil {
		return storage.Chunk{}, false, fmt.Errorf("read chunk to mask: %w", err)
	}
	return out, n > 0, nil
}
