package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// purge drops, in one transaction, tenant's samples that flt deletes:
// chunks wholly deleted are removed, chunks partly deleted re-encoded,
// series left without chunks removed with their index entries (and the
// tenant's bucket if no series is left). bbolt reuses the freed pages.
func (f *boltPartition) purge(tenant string, flt *tenantFilter) error {
	if flt.empty() {
		return nil
	}
	return f.db.Update(func(tx *bbolt.Tx) error {
		tenants := tx.Bucket(bucketTenants)
		tb := tenants.Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		r := newReader(tb)
		victims, err := purgeVictims(r, flt)
		if err != nil {
			return err
		}
		var (
			a  arena
			rm postingsRemoval
		)
		for _, v := range victims {
			if err := purgeSeries(r, &a, v); err != nil {
				return err
			}
			if r.seriesTime.Get(appendID(r.key[:0], v.id)) == nil {
				if err := rm.add(v.enc, v.id); err != nil {
					return err
				}
			}
		}
		if err := rm.apply(r, &a); err != nil {
			return err
		}
		if r.seriesTime.Stats().KeyN == 0 {
			return tenants.DeleteBucket([]byte(tenant))
		}
		return nil
	})
}

// purgeVictim is a series with samples to delete.
type purgeVictim struct {
	id   uint64
	enc  []byte // encoded labels, copied
	dels intervals
}

// purgeVictims returns the series of r that have samples in flt's
// deletions.
func purgeVictims(r *reader, flt *tenantFilter) ([]purgeVictim, error) {
	var (
		out []purgeVictim
		a   arena
		lb  = labels.NewScratchBuilder(8)
	)
	err := r.series.ForEach(func(k, v []byte) error {
		if len(k) != idLen {
			return corruptf("series key %x is not an id", k)
		}
		lbls, err := decodeLabels(v, &a, &lb)
		if err != nil {
			return err
		}
		dels := flt.deletions(lbls)
		if len(dels) == 0 {
			return nil
		}
		minT, maxT, err := decodeSeriesTime(r.seriesTime.Get(k))
		if err != nil || !dels.overlaps(minT, maxT) {
			return err
		}
		out = append(out, purgeVictim{id: binary.BigEndian.Uint64(k), enc: bytes.Clone(v), dels: dels})
		return nil
	})
	return out, err
}

// purgeSeries rewrites the chunks of one victim and its index entries.
func purgeSeries(r *reader, a *arena, v purgeVictim) error {
	if r.chunkRefs != nil {
		return purgeSeriesByRef(r, a, v)
	}
	type stored struct {
		key []byte
		c   Chunk
	}
	var all []stored
	prefix := appendID(nil, v.id)
	c := r.chunks.Cursor()
	for k, val := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, val = c.Next() {
		m, err := decodeChunk(k, val)
		if err != nil {
			return err
		}
		all = append(all, stored{bytes.Clone(k), Chunk{MinTime: m.minT, MaxTime: m.maxT, Encoding: m.enc, Data: bytes.Clone(m.data)}})
	}
	minT, maxT, n := int64(0), int64(0), 0
	for _, s := range all {
		kept, res, err := trimChunk(s.c, v.dels)
		if err != nil {
			return err
		}
		if res != chunkKept {
			if err := r.chunks.Delete(s.key); err != nil {
				return err
			}
		}
		if res == chunkDropped {
			continue
		}
		if res == chunkTrimmed {
			key := appendChunkKey(a.alloc(chunkKeyLen), v.id, kept.MaxTime)
			if err := r.chunks.Put(key, appendChunkValue(a.alloc(chunkValueLen(&kept)), &kept)); err != nil {
				return err
			}
		}
		if n == 0 {
			minT = kept.MinTime
		}
		maxT = kept.MaxTime
		n++
	}
	if n > 0 {
		return r.seriesTime.Put(prefix, appendSeriesTime(a.alloc(seriesTimeLen), minT, maxT))
	}
	return removeSeries(r, v.id, v.enc)
}

// removeSeries deletes a series without chunks from the buckets keyed by
// its ID or labels. Its postings are left to postingsRemoval, which purge
// applies once for all the series it removes.
func removeSeries(r *reader, id uint64, enc []byte) error {
	idKey := appendID(nil, id)
	err := errors.Join(r.series.Delete(idKey), r.seriesTime.Delete(idKey), r.byLabels.Delete(enc))
	if err == nil && r.chunkRefs != nil {
		err = r.chunkRefs.Delete(idKey)
	}
	return err
}

// postingsRemoval collects the label pairs of the series a purge removes,
// so that each pair's entries, which list many series each, are rewritten
// once per transaction rather than once per removed series.
type postingsRemoval struct {
	pairs map[string][]uint64 // name 0xff value 0xff -> removed IDs
}

// add records that series id, with encoded labels enc, is removed.
func (p *postingsRemoval) add(enc []byte, id uint64) error {
	if p.pairs == nil {
		p.pairs = map[string][]uint64{}
	}
	var key []byte
	return rangeLabels(enc, func(name, value []byte) bool {
		key = append(append(append(append(key[:0], name...), sep), value...), sep)
		p.pairs[string(key)] = append(p.pairs[string(key)], id)
		return true
	})
}

// apply removes the recorded IDs from the postings, pair by pair in key
// order, and the pairs left without series from the label-values index.
func (p *postingsRemoval) apply(r *reader, a *arena) error {
	for _, pair := range slices.Sorted(maps.Keys(p.pairs)) {
		if err := removePostings(r, a, []byte(pair), sortUnique(p.pairs[pair])); err != nil {
			return err
		}
	}
	return nil
}

// removePostings rewrites each entry of the pair whose key prefix (name 0xff
// value 0xff) is prefix that holds any of sorted gone, without them: deleted
// if none is left, else put again under its first remaining ID. The pair's
// label_values entry goes when no entry is left.
func removePostings(r *reader, a *arena, prefix []byte, gone []uint64) error {
	type edit struct {
		key  []byte
		kept []uint64
	}
	var (
		edits []edit
		left  bool
	)
	c := r.postings.Cursor()
	for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+idLen {
			continue // a value extending this one with 0xff
		}
		ids, err := appendPostingIDs(nil, binary.BigEndian.Uint64(k[len(prefix):]), v)
		if err != nil {
			return err
		}
		n := len(ids)
		kept := subtract(ids, gone)
		left = left || len(kept) > 0
		if len(kept) != n {
			edits = append(edits, edit{key: bytes.Clone(k), kept: kept})
		}
	}
	// bbolt cursors are invalidated by writes: edit after the walk.
	for _, e := range edits {
		if err := r.postings.Delete(e.key); err != nil {
			return err
		}
	}
	for _, e := range edits {
		if len(e.kept) == 0 {
			continue
		}
		v := emptyValue
		if len(e.kept) > 1 {
			v = appendPostingValue(a.alloc(postingValueLen(e.kept)), e.kept)
		}
		if err := r.postings.Put(appendID(bytes.Clone(prefix), e.kept[0]), v); err != nil {
			return err
		}
	}
	if r.lvIndex != nil && !left {
		return r.lvIndex.Delete(prefix[:len(prefix)-1])
	}
	return nil
}

// Stats returns tenant's share of the file (Partition is left to the
// caller). It reads every chunk header of the tenant.
func (f *boltPartition) Stats(tenant string) (TenantPartitionStats, error) {
	var st TenantPartitionStats
	err := f.db.View(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		bs := tb.Stats()
		st.Bytes = int64(bs.BranchInuse + bs.LeafInuse + bs.InlineBucketInuse)
		return tenantStats(newReader(tb), &st)
	})
	return st, err
}

// tenantStats counts the series, chunks and samples of r into st.
func tenantStats(r *reader, st *TenantPartitionStats) error {
	first := true
	err := r.seriesTime.ForEach(func(_, v []byte) error {
		minT, maxT, err := decodeSeriesTime(v)
		if err != nil {
			return err
		}
		if first || minT < st.MinTime {
			st.MinTime = minT
		}
		if first || maxT > st.MaxTime {
			st.MaxTime = maxT
		}
		first = false
		st.Series++
		return nil
	})
	if err != nil {
		return err
	}
	if r.chunkRefs != nil {
		return r.chunks.ForEach(func(_, v []byte) error {
			st.Chunks++
			if len(v) >= 3 {
				st.Samples += int64(binary.BigEndian.Uint16(v[1:]))
			}
			return nil
		})
	}
	return r.chunks.ForEach(func(k, v []byte) error {
		m, err := decodeChunk(k, v)
		if err != nil {
			return err
		}
		st.Chunks++
		if len(m.data) >= 2 {
			st.Samples += int64(binary.BigEndian.Uint16(m.data)) // every chunkenc encoding starts with its sample count
		}
		return nil
	})
}

// checkBoltPartition verifies the partition file at path: bbolt's page
// consistency, and for every tenant what Check verifies of a ChunkStore file
// plus that the label-values index holds exactly the pairs of the postings.
func checkBoltPartition(path string) error {
	f, err := openBoltPartition(path, true, true)
	if err != nil {
		return err
	}
	var all checker
	err = f.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			all.addf("bbolt: %v", err)
		}
		return tx.Bucket(bucketTenants).ForEachBucket(func(name []byte) error {
			tb := tx.Bucket(bucketTenants).Bucket(name)
			for _, b := range tenantDataBuckets {
				if tb.Bucket(b) == nil {
					all.addf("tenant %q: bucket %s missing", name, b)
					return nil
				}
			}
			var c checker
			r := newReader(tb)
			c.run(r)
			checkLabelValues(r, &c)
			if len(c.series) == 0 {
				c.addf("no series")
			}
			for _, p := range c.problems {
				all.addf("tenant %q: %s", name, p)
			}
			all.total += c.total - len(c.problems)
			return nil
		})
	})
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("check partition %s: %w", path, err)
	}
	if all.total > 0 {
		return fmt.Errorf("check partition %s: %w", path, corruptError{problems: all.problems, total: all.total})
	}
	return nil
}

// checkLabelValues checks that label_values lists exactly the label pairs
// of the postings.
func checkLabelValues(r *reader, c *checker) {
	pairs := map[string]bool{}
	_ = r.postings.ForEach(func(k, _ []byte) error {
		if name, value, _, err := parsePostingKey(k); err == nil {
			pairs[string(appendPostingKey(nil, name, value, 0)[:len(name)+1+len(value)])] = false
		}
		return nil
	})
	_ = r.lvIndex.ForEach(func(k, _ []byte) error {
		if _, ok := pairs[string(k)]; !ok {
			c.addf("label_values entry %q has no postings", k)
		}
		pairs[string(k)] = true
		return nil
	})
	for p, ok := range pairs {
		if !ok {
			c.addf("label pair %q missing from label_values", p)
		}
	}
}
