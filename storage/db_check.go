package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// CheckDB verifies the store under dir, which must not be open: meta.db
// decodes, every partition file passes its check (Check's verifications for
// each tenant of a level-0 file, part.Check for a sealed one), and nothing a
// crash leaves is there (temporary files, sources of a complete output,
// which OpenDB removes). It returns every inconsistency found, joined.
func CheckDB(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("check db %s: %w", dir, err)
	}
	var (
		errs    []error
		names   []string
		sources []string
	)
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == metaFileName:
		case strings.HasSuffix(name, tmpSuffix):
			errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("temporary file %s", name)))
		default:
			if p, ok := parsePartitionName(name); ok {
				names = append(names, name)
				errs = append(errs, checkPartitionFile(dir, p, &sources))
			} else {
				errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("unknown file %s", name)))
			}
		}
	}
	for _, s := range sources {
		if slices.Contains(names, s) {
			errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("partition %s is replaced by a complete output but still there", s)))
		}
	}
	metaPath := filepath.Join(dir, metaFileName)
	if _, err := os.Stat(metaPath); !errors.Is(err, os.ErrNotExist) { // a store never opened has none
		errs = append(errs, guardBolt(metaPath, func() error { return checkMeta(metaPath) }))
	}
	return errors.Join(errs...)
}

// checkPartitionFile checks one partition file and appends the sources its
// meta names to sources.
func checkPartitionFile(dir string, p partition, sources *[]string) error {
	path := filepath.Join(dir, p.name)
	return guardBolt(path, func() error { return checkPartitionContent(path, p, sources) })
}

// checkPartitionContent checks a partition file whose page structure is
// sound.
func checkPartitionContent(path string, p partition, sources *[]string) error {
	if p.level == 0 {
		return checkBoltPartition(path)
	}
	sp, err := openPart(path)
	if err != nil {
		return err
	}
	defer sp.Close()
	m := sp.Meta()
	*sources = append(*sources, m.Sources...)
	if m.Level != p.level || m.MinTime != p.minT || m.MaxTime != p.maxT {
		return fmt.Errorf("check partition %s: %w", path, corruptf("meta says level %d [%d, %d]", m.Level, m.MinTime, m.MaxTime))
	}
	return sp.Check()
}

// checkMeta checks that every record of meta.db decodes.
func checkMeta(path string) error {
	m, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("check %s: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	err = m.View(func(tx *bbolt.Tx) error {
		var problems []error
		for err := range tx.Check() { // drain: Check writes from a goroutine
			problems = append(problems, corruptf("bbolt: %v", err))
		}
		_, _, err := loadMeta(tx)
		_, err2 := loadCutoffs(tx)
		return errors.Join(append(problems, err, err2)...)
	})
	if err = errors.Join(err, m.Close()); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
}
