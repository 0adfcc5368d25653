package storage

// This file is a stand-in for the sealed partition format (storage/part*.go,
// written on another branch): the same internal API, implemented with the
// bbolt layout of a level-0 file opened read-only and no compression. It is
// deleted when the real format is merged.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/bbolt"
)

// keyPartMeta holds the JSON partMeta of a sealed file.
var keyPartMeta = []byte("part_meta")

// partMeta describes a sealed partition.
type partMeta struct {
	MinTime, MaxTime int64
	Level            int
	Sources          []string // file names this part replaces
}

// partSource is what a part is written from.
type partSource interface {
	Tenants() []string
	Series(tenant string, fn func(Series) error) error
}

// partWriteOptions tune writePart.
type partWriteOptions struct {
	Compress bool
	NoSync   bool
}

// part is an open sealed partition.
type part struct {
	*boltPartition
	meta partMeta
}

// writePart writes src as a sealed partition at path: a temporary file,
// synced, renamed into place.
func writePart(path string, meta partMeta, src partSource, opts partWriteOptions) error {
	tmp := path + tmpSuffix
	if err := createBoltPartition(tmp, opts.NoSync); err != nil {
		return err
	}
	db, err := bbolt.Open(tmp, fileMode, &bbolt.Options{Timeout: openTimeout, NoSync: opts.NoSync, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("write part %s: %w", path, err)
	}
	err = writePartData(db, meta, src)
	if err = errors.Join(err, db.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write part %s: %w", path, err)
	}
	return renameDurably(tmp, path, opts.NoSync)
}

// writePartData writes meta and the series of src, a transaction per
// thousands of series.
func writePartData(db *bbolt.DB, meta partMeta, src partSource) error {
	enc, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		return errors.Join(m.Put(keyPartMeta, enc), m.Put(keyKind, []byte("sealed")))
	})
	if err != nil {
		return err
	}
	const batchSize = 4096
	for _, tenant := range src.Tenants() {
		var batch []Series
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			f := &boltPartition{db: db}
			err := f.Append(tenant, batch)
			batch = batch[:0]
			return err
		}
		err := src.Series(tenant, func(s Series) error {
			if len(s.Chunks) == 0 {
				return nil
			}
			batch = append(batch, s)
			if len(batch) == batchSize {
				return flush()
			}
			return nil
		})
		if err = errors.Join(err, flush()); err != nil {
			return fmt.Errorf("tenant %q: %w", tenant, err)
		}
	}
	return nil
}

// openPart opens a sealed partition read-only.
func openPart(path string) (*part, error) {
	f, err := openBoltPartition(path, true, true)
	if err != nil {
		return nil, err
	}
	p := &part{boltPartition: f}
	err = f.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyPartMeta)
		if v == nil {
			return corruptf("part meta missing")
		}
		return json.Unmarshal(v, &p.meta)
	})
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open part %s: %w", path, err)
	}
	return p, nil
}

// Meta returns the part's meta.
func (p *part) Meta() partMeta { return p.meta }

// LabelNames is boltPartition.LabelNames (same signature).
func (p *part) LabelNames(tenant string, ms []*labels.Matcher) ([]string, error) {
	return p.boltPartition.LabelNames(tenant, ms)
}

// Check verifies the part.
func (p *part) Check() error { return checkBoltPartition(p.path) }
