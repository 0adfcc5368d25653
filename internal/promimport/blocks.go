package promimport

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"
)

// Block is one Prometheus block found on disk. Times are Unix milliseconds;
// MaxTime is exclusive, as in the block's meta.json.
type Block struct {
	Dir              string
	ULID             string
	MinTime, MaxTime int64
	Series, Samples  uint64
	// HistogramSamples are the native histogram samples among Samples,
	// which the import skips (as meta.json counts them; zero in blocks
	// written before Prometheus counted them apart).
	HistogramSamples uint64
}

// blockMeta is the part of a block's meta.json read here.
type blockMeta struct {
	ULID    string `json:"ulid"`
	MinTime int64  `json:"minTime"`
	MaxTime int64  `json:"maxTime"`
	Stats   struct {
		NumSamples          uint64 `json:"numSamples"`
		NumHistogramSamples uint64 `json:"numHistogramSamples"`
		NumSeries           uint64 `json:"numSeries"`
	} `json:"stats"`
	Version int `json:"version"`
}

// metaFile is the name of a block's metadata file.
const metaFile = "meta.json"

// FindBlocks returns the blocks of the Prometheus data directory dir (or of
// a snapshot of one), ordered by MinTime then ULID: its subdirectories named
// by a ULID that hold a meta.json. Half-written or half-deleted blocks
// (Prometheus names them <ulid>.tmp-for-creation or .tmp-for-deletion) are
// not blocks. If dir itself is a block, it is the only one.
func FindBlocks(dir string) ([]Block, error) {
	if b, err := readBlock(dir); err == nil {
		return []Block{b}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read prometheus data dir: %w", err)
	}
	var out []Block
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := ulid.ParseStrict(e.Name()); err != nil {
			continue
		}
		b, err := readBlock(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // A block directory without meta.json is not finished.
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Block) int {
		return cmp.Or(cmp.Compare(a.MinTime, b.MinTime), cmp.Compare(a.ULID, b.ULID))
	})
	return out, nil
}

// readBlock reads the meta.json of the block in dir; the error wraps
// fs.ErrNotExist if there is none.
func readBlock(dir string) (Block, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return Block{}, fmt.Errorf("read block meta: %w", err)
	}
	var m blockMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return Block{}, fmt.Errorf("parse %s: %w", filepath.Join(dir, metaFile), err)
	}
	if m.Version != 1 {
		return Block{}, fmt.Errorf("block %s: meta.json version %d, want 1", dir, m.Version)
	}
	return Block{
		Dir: dir, ULID: m.ULID, MinTime: m.MinTime, MaxTime: m.MaxTime,
		Series: m.Stats.NumSeries, Samples: m.Stats.NumSamples, HistogramSamples: m.Stats.NumHistogramSamples,
	}, nil
}

// HeadBytes returns the bytes in the head of the Prometheus data directory
// dir (its wal/ and chunks_head/ directories), which the import does not
// read: samples there are not in any block yet.
func HeadBytes(dir string) (int64, error) {
	var total int64
	for _, sub := range []string{"wal", "chunks_head"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				info, err := d.Info()
				if err != nil {
					return err
				}
				total += info.Size()
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("measure prometheus head: %w", err)
		}
	}
	return total, nil
}
