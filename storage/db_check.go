package storage

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// CheckDB verifies the store under dir, which must not be open: meta.db
// decodes, every partition file passes its check (Check's verifications for
// each tenant of a level-0 file, part.Check for a sealed one), the files are
// those meta.db's manifest lists, with the recorded level, range and size
// (a deleted partition file is reported), and nothing a crash leaves is
// there (temporary files, sources of a complete output, which OpenDB
// removes). A damaged file is reported, never a panic. It returns every
// inconsistency found, joined, each naming its file.
func CheckDB(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("check db %s: %w", dir, err)
	}
	var (
		errs  []error
		files = map[string]partition{}
		srcOf = map[string][]string{} // sealed file -> the sources its meta names
	)
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == metaFileName:
		case strings.HasSuffix(name, tmpSuffix):
			errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("temporary file %s", name)))
		default:
			if p, ok := parsePartitionName(name); ok {
				files[name] = p
				errs = append(errs, checkPartitionFile(dir, p, srcOf))
			} else {
				errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("unknown file %s", name)))
			}
		}
	}
	replaced := map[string]bool{}
	for _, srcs := range srcOf {
		for _, s := range srcs {
			if _, ok := files[s]; ok && !replaced[s] {
				replaced[s] = true
				errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptf("partition %s is replaced by a complete output but still there", s)))
			}
		}
	}
	metaPath := filepath.Join(dir, metaFileName)
	if _, err := os.Stat(metaPath); !errors.Is(err, os.ErrNotExist) { // a store never opened has none
		var man map[string]manifestEntry
		errs = append(errs, guardBolt(metaPath, func() (err error) { man, err = checkMeta(metaPath); return err }))
		for _, p := range checkManifest(dir, man, files, srcOf, replaced) {
			errs = append(errs, fmt.Errorf("check db %s: %w", dir, corruptError{problems: []string{p}, total: 1}))
		}
	}
	return errors.Join(errs...)
}

// checkManifest compares the manifest with the partition files in the
// directory and returns the disagreements. A nil manifest (meta.db from
// before it existed; OpenDB builds it) is not checked.
func checkManifest(dir string, man map[string]manifestEntry, files map[string]partition,
	srcOf map[string][]string, replaced map[string]bool) []string {
	if man == nil {
		return nil
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(man)) {
		e := man[name]
		p, onDisk := files[name]
		switch {
		case e.dropping:
			problems = append(problems, fmt.Sprintf("partition %s is marked for removal in the manifest: a crash interrupted its removal (OpenDB finishes it)", name))
		case !onDisk:
			problems = append(problems, fmt.Sprintf("partition %s is in the manifest but missing from the directory: its data is lost", name))
		case e.level != p.level || e.minT != p.minT || e.maxT != p.maxT:
			problems = append(problems, fmt.Sprintf("partition %s: the manifest records level %d [%d, %d]", name, e.level, e.minT, e.maxT))
		case p.level > 0:
			if size := dirBytes(filepath.Join(dir, name)); size != e.size {
				problems = append(problems, fmt.Sprintf("partition %s has %d bytes, the manifest records %d", name, size, e.size))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if _, ok := man[name]; ok || replaced[name] {
			continue
		}
		switch {
		case slices.ContainsFunc(srcOf[name], func(s string) bool { _, ok := man[s]; return ok }):
			problems = append(problems, fmt.Sprintf("partition %s is a complete output a crash left out of the manifest (OpenDB records it)", name))
		case files[name].level == 0 && isEmptyLevel0(filepath.Join(dir, name)):
			problems = append(problems, fmt.Sprintf("partition %s is empty and not in the manifest: created just before a crash (OpenDB removes it)", name))
		default:
			problems = append(problems, fmt.Sprintf("partition %s is not in the manifest", name))
		}
	}
	return problems
}

// isEmptyLevel0 reports whether the level-0 file at path is sound and holds
// no tenant.
func isEmptyLevel0(path string) bool {
	empty, err := emptyLevel0(path)
	return err == nil && empty
}

// checkPartitionFile checks one partition file and records the sources its
// meta names in srcOf.
func checkPartitionFile(dir string, p partition, srcOf map[string][]string) error {
	path := filepath.Join(dir, p.name)
	return guardBolt(path, func() error { return checkPartitionContent(path, p, srcOf) })
}

// checkPartitionContent checks a partition file whose page structure is
// sound.
func checkPartitionContent(path string, p partition, srcOf map[string][]string) error {
	if p.level == 0 {
		return checkBoltPartition(path)
	}
	sp, err := openPart(path)
	if err != nil {
		return err
	}
	defer sp.Close()
	m := sp.Meta()
	srcOf[p.name] = m.Sources
	if m.Level != p.level || m.MinTime != p.minT || m.MaxTime != p.maxT {
		return fmt.Errorf("check partition %s: %w", path, corruptf("meta says level %d [%d, %d]", m.Level, m.MinTime, m.MaxTime))
	}
	return sp.Check()
}

// checkMeta checks that every record of meta.db decodes, and returns its
// manifest (nil if it has none).
func checkMeta(path string) (map[string]manifestEntry, error) {
	m, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("check %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	var man map[string]manifestEntry
	err = m.View(func(tx *bbolt.Tx) error {
		var problems []error
		for err := range tx.Check() { // drain: Check writes from a goroutine
			problems = append(problems, corruptf("bbolt: %v", err))
		}
		_, _, err := loadMeta(tx)
		_, err2 := loadCutoffs(tx)
		var err3 error
		man, err3 = loadManifest(tx)
		return errors.Join(append(problems, err, err2, err3)...)
	})
	if err = errors.Join(err, m.Close()); err != nil {
		return man, fmt.Errorf("check %s: %w", path, err)
	}
	return man, nil
}
