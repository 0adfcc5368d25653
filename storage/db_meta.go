package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// The buckets of meta.db. See doc.go.
var (
	bucketTombstones     = []byte("tombstones")      // tenant -> bucket: seq -> tombstone
	bucketDeletedTenants = []byte("deleted_tenants") // tenant -> seq(8) phase(1)
	bucketCutoffs        = []byte("retention")       // tenant -> cut-off time(8)
)

// Tombstone deletes the samples in [MinTime, MaxTime] of the series that
// match Matchers at read time, until compaction purges them for good. It
// masks every matching series, including series first written after it;
// Prometheus masks only the series that existed at the delete. Deletes of
// past data, what the admin API is for, answer the same.
type Tombstone struct {
	MinTime, MaxTime int64
	Matchers         []*labels.Matcher
}

// tombstoneEntry is a tombstone with its key in meta.db.
type tombstoneEntry struct {
	key uint64
	t   Tombstone
}

// deletion is a tenant deletion in progress: the sealed partitions with a
// sequence up to seq hide the tenant until they are rewritten without it.
type deletion struct {
	seq uint64
	// l0Done says the tenant's buckets in the level-0 files are gone;
	// until then OpenDB deletes them again.
	l0Done bool
}

// openMeta opens meta.db and loads the tombstones and deletions.
func (db *DB) openMeta() error {
	m, err := bbolt.Open(filepath.Join(db.dir, metaFileName), fileMode, &bbolt.Options{
		Timeout: openTimeout, NoSync: db.opts.NoSync,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("open %s: %w", metaFileName, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", metaFileName, err)
	}
	db.meta = m
	err = m.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketTombstones, bucketDeletedTenants, bucketCutoffs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.View(func(tx *bbolt.Tx) error {
		var err error
		db.tombs, db.deleted, err = loadMeta(tx)
		if err != nil {
			return err
		}
		db.cutoffs, err = loadCutoffs(tx)
		return err
	})
}

// loadMeta decodes every tombstone and deletion of meta.db.
func loadMeta(tx *bbolt.Tx) (map[string][]tombstoneEntry, map[string]deletion, error) {
	tombs := map[string][]tombstoneEntry{}
	deleted := map[string]deletion{}
	tb, db := tx.Bucket(bucketTombstones), tx.Bucket(bucketDeletedTenants)
	if tb == nil || db == nil {
		return nil, nil, corruptf("%s: buckets missing", metaFileName)
	}
	err := tb.ForEachBucket(func(tenant []byte) error {
		return tb.Bucket(tenant).ForEach(func(k, v []byte) error {
			t, err := decodeTombstone(v)
			if err != nil || len(k) != 8 {
				return corruptf("tombstone %x of tenant %q: %v", k, tenant, err)
			}
			tombs[string(tenant)] = append(tombs[string(tenant)], tombstoneEntry{binary.BigEndian.Uint64(k), t})
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	err = db.ForEach(func(k, v []byte) error {
		if len(v) != 9 {
			return corruptf("deletion of tenant %q: value of %d bytes", k, len(v))
		}
		deleted[string(k)] = deletion{seq: binary.BigEndian.Uint64(v), l0Done: v[8] == 1}
		return nil
	})
	return tombs, deleted, err
}

// appendTombstone encodes t: min and max time, then for each matcher its
// type (1 byte), name and value (each uvarint length prefixed). The fields
// of a matcher, not its PromQL text, are stored, so that no parser is needed
// to read them back and any value round-trips exactly.
func appendTombstone(dst []byte, t Tombstone) []byte {
	dst = appendTime(appendTime(dst, t.MinTime), t.MaxTime)
	for _, m := range t.Matchers {
		dst = append(dst, byte(m.Type))
		dst = binary.AppendUvarint(dst, uint64(len(m.Name)))
		dst = append(dst, m.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(m.Value)))
		dst = append(dst, m.Value...)
	}
	return dst
}

// decodeTombstone decodes a tombstone, compiling its matchers.
func decodeTombstone(v []byte) (Tombstone, error) {
	if len(v) < 16 {
		return Tombstone{}, fmt.Errorf("value of %d bytes", len(v))
	}
	t := Tombstone{MinTime: decodeTime(v), MaxTime: decodeTime(v[8:])}
	for rest := v[16:]; len(rest) > 0; {
		typ := labels.MatchType(rest[0])
		name, r, ok1 := readLengthPrefixed(rest[1:])
		value, r, ok2 := readLengthPrefixed(r)
		if !ok1 || !ok2 || typ > labels.MatchNotRegexp {
			return Tombstone{}, errors.New("malformed matcher")
		}
		m, err := labels.NewMatcher(typ, string(name), string(value))
		if err != nil {
			return Tombstone{}, err
		}
		t.Matchers = append(t.Matchers, m)
		rest = r
	}
	if len(t.Matchers) == 0 || t.MinTime > t.MaxTime {
		return Tombstone{}, errors.New("no matcher or empty range")
	}
	return t, nil
}

// DeleteSeries records a durable tombstone for tenant; every read after it
// returns honours it. A tombstone needs a matcher and MinTime <= MaxTime
// (ErrInvalidTombstone).
func (db *DB) DeleteSeries(tenant string, t Tombstone) error {
	if len(t.Matchers) == 0 || t.MinTime > t.MaxTime || tenant == "" {
		return fmt.Errorf("%w: %d matchers, range [%d, %d]", ErrInvalidTombstone, len(t.Matchers), t.MinTime, t.MaxTime)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	var key uint64
	err := db.meta.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketTombstones).CreateBucketIfNotExists([]byte(tenant))
		if err != nil {
			return err
		}
		if key, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, key), appendTombstone(nil, t))
	})
	if err != nil {
		return fmt.Errorf("record tombstone: %w", err)
	}
	t.Matchers = append([]*labels.Matcher(nil), t.Matchers...)
	db.tombs[tenant] = append(db.tombs[tenant], tombstoneEntry{key, t})
	return nil
}

// Tombstones returns tenant's tombstones in force, for the ingester to apply
// to its in-memory head. The result is owned by the caller; the matchers are
// shared and must not be modified.
func (db *DB) Tombstones(tenant string) []Tombstone {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []Tombstone
	for _, e := range db.tombs[tenant] {
		out = append(out, e.t)
	}
	return out
}

// dropTombstones removes the tombstones of tenant with the given keys.
// Callers hold mu.
func (db *DB) dropTombstones(tenant string, keys []uint64) error {
	if len(keys) == 0 {
		return nil
	}
	err := db.meta.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTombstones).Bucket([]byte(tenant))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(binary.BigEndian.AppendUint64(nil, k)); err != nil {
				return err
			}
		}
		if b.Stats().KeyN == len(keys) {
			return tx.Bucket(bucketTombstones).DeleteBucket([]byte(tenant))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop tombstones: %w", err)
	}
	kept := db.tombs[tenant][:0]
	for _, e := range db.tombs[tenant] {
		if !containsUint64(keys, e.key) {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		delete(db.tombs, tenant)
	} else {
		db.tombs[tenant] = kept
	}
	return nil
}

func containsUint64(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// putDeletion records (d non-nil) or clears the deletion of tenant in
// meta.db, and with it drops the tenant's tombstones when recording.
func (db *DB) putDeletion(tenant string, d *deletion) error {
	return db.meta.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeletedTenants)
		if d == nil {
			return b.Delete([]byte(tenant))
		}
		if tx.Bucket(bucketTombstones).Bucket([]byte(tenant)) != nil {
			if err := tx.Bucket(bucketTombstones).DeleteBucket([]byte(tenant)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketCutoffs).Delete([]byte(tenant)); err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint64(nil, d.seq)
		if d.l0Done {
			v = append(v, 1)
		} else {
			v = append(v, 0)
		}
		return b.Put([]byte(tenant), v)
	})
}

// loadCutoffs decodes the retention cut-offs of meta.db.
func loadCutoffs(tx *bbolt.Tx) (map[string]int64, error) {
	out := map[string]int64{}
	b := tx.Bucket(bucketCutoffs)
	if b == nil {
		return out, nil // written by a version before retention
	}
	err := b.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return corruptf("retention cut-off of tenant %q: value of %d bytes", k, len(v))
		}
		out[string(k)] = decodeTime(v)
		return nil
	})
	return out, err
}

// putCutoffs replaces the retention cut-offs in meta.db with cutoffs,
// writing only what changed.
func (db *DB) putCutoffs(old, cutoffs map[string]int64) error {
	return db.meta.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCutoffs)
		for t := range old {
			if _, ok := cutoffs[t]; !ok {
				if err := b.Delete([]byte(t)); err != nil {
					return err
				}
			}
		}
		for t, c := range cutoffs {
			if o, ok := old[t]; ok && o == c {
				continue
			}
			if err := b.Put([]byte(t), appendTime(nil, c)); err != nil {
				return err
			}
		}
		return nil
	})
}
