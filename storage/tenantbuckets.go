package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// The buckets of a partition file of a DB (format 2). See doc.go.
var (
	// bucketLabelValues is the label-values index of a tenant in a
	// partition: name 0xff value -> (empty), one key per label pair that
	// some series of the partition has.
	bucketLabelValues = []byte("label_values")
	// keyKind says which kind of partition file this is (kindL0 for now).
	keyKind = []byte("kind")
)

// l0InitialMmap is the initial mapping of a level-0 file.
const l0InitialMmap = 256 << 20

// dbFormatVersion is the format of a DB level-0 file: 3 since a postings
// entry lists several series. Version 2 files, whose entries list one
// each, read the same and are upgraded by the first writable open, so that
// a binary from before version 3, which would read only the first series of
// each entry, refuses them instead.
const (
	dbFormatVersion          = 3
	dbFormatVersionOneIDList = 2
)

// tenantDataBuckets are the buckets of a tenant in a partition file.
var tenantDataBuckets = [][]byte{bucketSeries, bucketSeriesTime, bucketByLabels, bucketPostings, bucketChunks, bucketLabelValues, bucketChunkRefs}

// boltPartition is a partition file of a DB in bbolt: the level-0 window
// files that flushes append to. Each tenant has a bucket under "tenants"
// with a ChunkStore's buckets plus a label-values index. Methods are safe
// for concurrent use (bbolt serializes writers); results are copied out of
// the memory map.
type boltPartition struct {
	db   *bbolt.DB
	path string
	// written is when a DB Append last wrote to the file, or the DB opened
	// it (Unix ns of DBOptions.Now), for the early seal of idle files.
	written atomic.Int64
}

// createBoltPartition creates an empty partition file at path through a
// temporary file renamed into place, so that a crash leaves either no file
// or a complete empty one.
func createBoltPartition(path string, noSync bool) error {
	tmp := path + tmpSuffix
	_ = os.Remove(tmp) // a leftover of a crash
	db, err := bbolt.Open(tmp, fileMode, &bbolt.Options{Timeout: openTimeout, NoSync: noSync})
	if err != nil {
		return fmt.Errorf("create partition %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, dbFormatVersion)); err != nil {
			return err
		}
		if err := meta.Put(keyKind, []byte("l0")); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketTenants)
		return err
	})
	if err = errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("create partition %s: %w", path, err)
	}
	return renameDurably(tmp, path, noSync)
}

// renameDurably renames tmp to path and syncs the directory.
func renameDurably(tmp, path string, noSync bool) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// openBoltPartition opens the partition file at path.
func openBoltPartition(path string, readOnly, noSync bool) (*boltPartition, error) {
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout: openTimeout, ReadOnly: readOnly, NoSync: noSync, FreelistType: bbolt.FreelistMapType,
		// Map more than the file from the start (address space only, the
		// file grows by AllocSize): bbolt remaps when the file outgrows
		// the mapping, copying every node of the transaction out of the
		// map and waiting for readers; a window's file stays below this.
		InitialMmapSize: l0InitialMmap,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open partition %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open partition %s: %w", path, err)
	}
	// bbolt grows a file by up to AllocSize (16 MiB by default) past what
	// it needs; a window's file is a few tens of MiB, so that slack would be
	// a large share of it.
	db.AllocSize = 1 << 20
	var upgrade bool
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketTenants) == nil {
			return corruptf("partition buckets missing")
		}
		v := meta.Get(keyFormatVersion)
		if !knownVersion(v, dbFormatVersionOneIDList, dbFormatVersion) {
			return fmt.Errorf("%w: format version %x, want %d", ErrUnsupportedFormat, v, dbFormatVersion)
		}
		upgrade = !readOnly && binary.BigEndian.Uint64(v) != dbFormatVersion
		return nil
	})
	if err == nil && upgrade {
		err = db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, dbFormatVersion))
		})
	}
	if err != nil {
		_ = db.Close() // the format error is the one to report
		return nil, fmt.Errorf("open partition %s: %w", path, err)
	}
	return &boltPartition{db: db, path: path}, nil
}

// Close closes the file.
func (f *boltPartition) Close() error { return f.db.Close() }

// Size returns the size of the file in bytes.
func (f *boltPartition) Size() int64 {
	var n int64
	_ = f.db.View(func(tx *bbolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// view runs fn on the buckets of tenant, if the file has any.
func (f *boltPartition) view(tenant string, fn func(r *reader) error) error {
	return f.db.View(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte(tenant))
		if tb == nil {
			return nil
		}
		return fn(newReader(tb))
	})
}

// Tenants returns the tenants with data in the file, sorted.
func (f *boltPartition) Tenants() []string {
	var out []string
	_ = f.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTenants).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out
}

// hasTenant reports whether the file has a bucket for tenant.
func (f *boltPartition) hasTenant(tenant string) bool {
	found := false
	_ = f.db.View(func(tx *bbolt.Tx) error {
		found = tx.Bucket(bucketTenants).Bucket([]byte(tenant)) != nil
		return nil
	})
	return found
}

// Append writes batch for tenant in one transaction, as ChunkStore.Append
// does (validated by the caller).
func (f *boltPartition) Append(tenant string, batch []Series) error {
	return f.db.Update(func(tx *bbolt.Tx) error {
		tb, err := tenantBucket(tx, tenant)
		if err != nil {
			return err
		}
		w := newWriter(tb)
		for i := range batch {
			if err := w.appendSeries(&batch[i]); err != nil {
				return err
			}
		}
		return w.putIndexEntries()
	})
}

// tenantBucket returns the bucket of tenant, created with its data buckets
// if missing.
func tenantBucket(tx *bbolt.Tx, tenant string) (*bbolt.Bucket, error) {
	if tenant == "" {
		return nil, fmt.Errorf("%w: empty tenant", ErrInvalidLabels)
	}
	tenants := tx.Bucket(bucketTenants)
	if tb := tenants.Bucket([]byte(tenant)); tb != nil {
		return tb, nil
	}
	tb, err := tenants.CreateBucket([]byte(tenant))
	if err != nil {
		return nil, fmt.Errorf("create bucket of tenant %q: %w", tenant, err)
	}
	for _, name := range tenantDataBuckets {
		if _, err := tb.CreateBucket(name); err != nil {
			return nil, fmt.Errorf("create bucket %s of tenant %q: %w", name, tenant, err)
		}
	}
	return tb, nil
}

// Select returns the series of tenant matching ms with chunks in [mint,
// maxt], sorted by labels.
func (f *boltPartition) Select(tenant string, mint, maxt int64, opts SelectOptions, ms []*labels.Matcher) ([]Series, error) {
	var out []Series
	err := f.view(tenant, func(r *reader) error {
		var err error
		out, err = r.selectSeries(mint, maxt, opts, ms)
		return err
	})
	return out, err
}

// LabelNames returns the names of tenant's series matching ms in the whole
// partition. Without matchers it reads the label-values index only.
func (f *boltPartition) LabelNames(tenant string, ms []*labels.Matcher) ([]string, error) {
	var out []string
	err := f.view(tenant, func(r *reader) error {
		var err error
		if len(ms) > 0 {
			out, err = r.labelNames(math.MinInt64, math.MaxInt64, ms)
			return err
		}
		out, err = r.indexedNames()
		slices.Sort(out) // key order puts "a" after "ab"
		return err
	})
	return out, err
}

// indexedNames lists the names of the label-values index, seeking past the
// values of each name (see allLabelNames for why the seek is exact).
func (r *reader) indexedNames() ([]string, error) {
	var names []string
	c := r.lvIndex.Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, sep)
		if i <= 0 {
			return nil, corruptf("malformed label values key %q", k)
		}
		names = append(names, string(k[:i]))
		r.key = append(r.key[:0], k[:i]...)
		r.key[len(r.key)-1]++
		k, _ = c.Seek(r.key)
	}
	return names, nil
}

// LabelValues returns the values of name of tenant's series matching ms in
// the whole partition. Without matchers it reads the label-values index only.
func (f *boltPartition) LabelValues(tenant, name string, ms []*labels.Matcher) ([]string, error) {
	var out []string
	err := f.view(tenant, func(r *reader) error {
		var err error
		if len(ms) > 0 {
			out, err = r.labelValuesMatching(name, math.MinInt64, math.MaxInt64, ms)
			return err
		}
		if name == "" || strings.IndexByte(name, sep) >= 0 {
			return nil
		}
		prefix := appendNamePrefix(nil, name)
		c := r.lvIndex.Cursor()
		for k, _ := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}

// LastTime returns the max time of tenant's series lbls in the file.
func (f *boltPartition) LastTime(tenant string, lbls labels.Labels) (int64, bool, error) {
	key, err := appendLabels(nil, lbls)
	if err != nil {
		return 0, false, err
	}
	var (
		maxT  int64
		found bool
	)
	err = f.view(tenant, func(r *reader) error {
		id := r.byLabels.Get(key)
		if id == nil {
			return nil
		}
		_, t, err := decodeSeriesTime(r.seriesTime.Get(id))
		maxT, found = t, err == nil
		return err
	})
	return maxT, found, err
}

// Series calls fn with every series of tenant and all its chunks, sorted by
// labels. The series passed to fn are owned by fn.
func (f *boltPartition) Series(tenant string, fn func(Series) error) error {
	return f.view(tenant, func(r *reader) error {
		type entry struct {
			enc []byte // aliases the memory map, valid in this transaction
			id  uint64
		}
		var all []entry
		err := r.series.ForEach(func(k, v []byte) error {
			if len(k) != idLen {
				return corruptf("series key %x is not an id", k)
			}
			all = append(all, entry{enc: v, id: binary.BigEndian.Uint64(k)})
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b entry) int { return compareEncodedLabels(a.enc, b.enc) })
		lb := labels.NewScratchBuilder(8)
		cur := r.chunks.Cursor()
		for _, e := range all {
			var a arena
			chunks, _, err := r.chunksInRange(cur, e.id, math.MinInt64, math.MaxInt64, chunkCopier(SelectOptions{}, &a))
			if err != nil {
				return err
			}
			lbls, err := decodeLabels(e.enc, &a, &lb)
			if err != nil {
				return fmt.Errorf("series %d: %w", e.id, err)
			}
			if err := fn(Series{Labels: lbls, Chunks: chunks}); err != nil {
				return err
			}
		}
		return nil
	})
}

// compareEncodedLabels orders encoded label sets as labels.Compare orders
// the decoded ones. Malformed input sorts by its bytes.
func compareEncodedLabels(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		an, ar, ok1 := readLengthPrefixed(a)
		bn, br, ok2 := readLengthPrefixed(b)
		if !ok1 || !ok2 {
			return bytes.Compare(a, b)
		}
		if c := bytes.Compare(an, bn); c != 0 {
			return c
		}
		av, ar, ok1 := readLengthPrefixed(ar)
		bv, br, ok2 := readLengthPrefixed(br)
		if !ok1 || !ok2 {
			return bytes.Compare(a, b)
		}
		if c := bytes.Compare(av, bv); c != 0 {
			return c
		}
		a, b = ar, br
	}
	return len(a) - len(b)
}

// deleteTenant removes tenant's bucket; bbolt reuses its pages.
func (f *boltPartition) deleteTenant(tenant string) error {
	return f.db.Update(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketTenants).DeleteBucket([]byte(tenant))
		if errors.Is(err, bbolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}
