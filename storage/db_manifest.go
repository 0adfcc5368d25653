package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/bbolt"
)

// The manifest is the list of partition files the DB believes it has, in
// meta.db, so that a partition file that disappears (deleted by hand, lost
// with a disk) is noticed by CheckDB instead of its data silently missing
// from reads. Its order against the files (DESIGN.md, Crash safety):
//
//   - a file is added once it is complete and renamed into place; a
//     rewrite adds its output and marks its sources dropping in one
//     transaction, its commit point;
//   - a file is marked dropping before it is deleted, and its entry is
//     deleted after the deletion is durable.
//
// So after a crash a live entry's file is always there, and OpenDB
// finishes the rest: it deletes the files of dropping entries, records a
// complete output that names a source in the manifest (as it removes those
// sources), and removes a level-0 file that is not in the manifest and
// holds nothing (created, not yet recorded). Any other file not in the
// manifest is not opened, and CheckDB reports it.

// bucketPartitions is meta.db's manifest: partition file name -> entry.
var bucketPartitions = []byte("partitions")

// manifestEntry is what the manifest records of a partition file.
type manifestEntry struct {
	dropping   bool // being deleted: OpenDB finishes the deletion
	level      int
	minT, maxT int64
	size       int64 // of a sealed file (immutable); 0 for level 0, which grows
}

func (e manifestEntry) encode() []byte {
	state := byte(0)
	if e.dropping {
		state = 1
	}
	v := binary.AppendUvarint([]byte{state}, uint64(e.level))
	v = binary.AppendVarint(binary.AppendVarint(v, e.minT), e.maxT)
	return binary.AppendUvarint(v, uint64(e.size))
}

func decodeManifestEntry(v []byte) (manifestEntry, error) {
	if len(v) < 1 || v[0] > 1 {
		return manifestEntry{}, corruptf("manifest entry %x: bad state", v)
	}
	e := manifestEntry{dropping: v[0] == 1}
	rest := v[1:]
	level, n1 := binary.Uvarint(rest)
	rest = rest[max(n1, 0):]
	minT, n2 := binary.Varint(rest)
	rest = rest[max(n2, 0):]
	maxT, n3 := binary.Varint(rest)
	rest = rest[max(n3, 0):]
	size, n4 := binary.Uvarint(rest)
	if n1 <= 0 || n2 <= 0 || n3 <= 0 || n4 <= 0 || n4 != len(rest) || level > 64 || size > 1<<62 {
		return manifestEntry{}, corruptf("manifest entry %x: malformed", v)
	}
	e.level, e.minT, e.maxT, e.size = int(level), minT, maxT, int64(size)
	return e, nil
}

// loadManifest decodes the manifest; nil, without error, if meta.db has
// none (written by a version before it).
func loadManifest(tx *bbolt.Tx) (map[string]manifestEntry, error) {
	b := tx.Bucket(bucketPartitions)
	if b == nil {
		return nil, nil
	}
	out := map[string]manifestEntry{}
	err := b.ForEach(func(k, v []byte) error {
		e, err := decodeManifestEntry(v)
		if err != nil {
			return err
		}
		out[string(k)] = e
		return nil
	})
	return out, err
}

// entryFor returns the live manifest entry of the partition file p.
func (db *DB) entryFor(p *partition) (manifestEntry, error) {
	e := manifestEntry{level: p.level, minT: p.minT, maxT: p.maxT}
	if p.level > 0 {
		st, err := os.Stat(filepath.Join(db.dir, p.name))
		if err != nil {
			return e, err
		}
		e.size = st.Size()
	}
	return e, nil
}

// recordPartitions adds add to the manifest and marks drop dropping, in one
// transaction (creating the manifest if missing).
func (db *DB) recordPartitions(add []*partition, drop []string) error {
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	entries := make([]manifestEntry, len(add))
	for i, p := range add {
		var err error
		if entries[i], err = db.entryFor(p); err != nil {
			return fmt.Errorf("record partition %s: %w", p.name, err)
		}
	}
	err := db.meta.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPartitions)
		if err != nil {
			return err
		}
		for i, p := range add {
			if err := b.Put([]byte(p.name), entries[i].encode()); err != nil {
				return err
			}
		}
		for _, name := range drop {
			e, err := decodeManifestEntry(b.Get([]byte(name)))
			if err != nil {
				continue // not in the manifest: nothing to mark
			}
			e.dropping = true
			if err := b.Put([]byte(name), e.encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record partitions in %s: %w", metaFileName, err)
	}
	return nil
}

// forgetPartitions deletes the manifest entries of names, whose files are
// gone for good.
func (db *DB) forgetPartitions(names []string) error {
	if len(names) == 0 {
		return nil
	}
	err := db.meta.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPartitions)
		if b == nil {
			return nil
		}
		for _, name := range names {
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget partitions in %s: %w", metaFileName, err)
	}
	return nil
}

// readManifest loads the manifest of the open meta.db.
func (db *DB) readManifest() (map[string]manifestEntry, error) {
	var man map[string]manifestEntry
	err := db.meta.View(func(tx *bbolt.Tx) error {
		var err error
		man, err = loadManifest(tx)
		return err
	})
	return man, err
}

// finishDrops deletes the files of the dropping entries of man (removing
// them from found), then the entries. Run by OpenDB.
func (db *DB) finishDrops(man map[string]manifestEntry, found map[string]partition) error {
	var names []string
	for name, e := range man {
		if !e.dropping {
			continue
		}
		names = append(names, name)
		delete(found, name)
		delete(man, name)
		db.logger.Info("removing a partition whose removal a crash interrupted", "file", name)
		if err := os.Remove(filepath.Join(db.dir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if len(names) == 0 {
		return nil
	}
	if !db.opts.NoSync {
		if err := syncDir(db.dir); err != nil {
			return err
		}
	}
	return db.forgetPartitions(names)
}

// adoptOutputs records in the manifest, with the sources they replace
// marked dropping, the complete outputs in opened that a crash left
// unrecorded: those naming a source in man. It closes the other sealed
// files unknown to man and removes them from opened and found: they are
// not opened. Run by OpenDB before it removes the sources.
func (db *DB) adoptOutputs(man map[string]manifestEntry, found map[string]partition, opened map[string]*part, replaced []string) error {
	var adopt []*partition
	for name, sp := range opened {
		if _, ok := man[name]; ok {
			continue
		}
		if slices.ContainsFunc(sp.Meta().Sources, func(s string) bool { _, ok := man[s]; return ok }) {
			p := found[name]
			adopt = append(adopt, &p)
			man[name] = manifestEntry{level: p.level, minT: p.minT, maxT: p.maxT}
			continue
		}
		db.logger.Error("not opening a partition file that is not in the manifest", "file", name)
		_ = sp.Close()
		delete(opened, name)
		delete(found, name)
	}
	var drop []string
	for _, name := range replaced {
		if _, ok := man[name]; ok {
			drop = append(drop, name)
		}
	}
	return db.recordPartitions(adopt, drop)
}

// reconcileLevel0 deals with the level-0 files of found unknown to man: an
// empty one (created, then a crash before it was recorded) is removed, any
// other is not opened. It then logs the live entries whose file is gone.
func (db *DB) reconcileLevel0(man map[string]manifestEntry, found map[string]partition) error {
	for name, p := range found {
		if _, ok := man[name]; ok || p.level != 0 {
			continue
		}
		delete(found, name)
		path := filepath.Join(db.dir, name)
		if empty, err := emptyLevel0(path); err == nil && empty {
			db.logger.Info("removing an empty partition a crash left unrecorded", "file", name)
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		db.logger.Error("not opening a partition file that is not in the manifest", "file", name)
	}
	for name, e := range man {
		if _, ok := found[name]; !ok && !e.dropping {
			db.logger.Error("a partition file in the manifest is missing: its data is lost; argus tsdb verify reports it", "file", name)
		}
	}
	return nil
}

// emptyLevel0 reports whether the level-0 file at path holds no tenant.
func emptyLevel0(path string) (empty bool, err error) {
	err = guardBolt(path, func() error {
		f, err := openBoltPartition(path, true, true)
		if err != nil {
			return err
		}
		empty = len(f.Tenants()) == 0
		return f.Close()
	})
	return empty, err
}

// settleManifest brings the manifest in step with found after OpenDB's
// clean-up (the replaced sources are gone): it forgets the replaced files,
// deals with unknown level-0 files, and builds the manifest from found if
// meta.db has none (a store written before it existed).
func (db *DB) settleManifest(man map[string]manifestEntry, found map[string]partition, replaced []string) error {
	if man == nil {
		add := make([]*partition, 0, len(found))
		for _, p := range found {
			add = append(add, &p)
		}
		if err := db.recordPartitions(add, nil); err != nil {
			return err
		}
		if len(add) > 0 {
			return nil
		}
		// An empty store: create the manifest, empty.
		return db.meta.Update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketPartitions)
			return err
		})
	}
	if err := db.forgetPartitions(replaced); err != nil {
		return err
	}
	return db.reconcileLevel0(man, found)
}
