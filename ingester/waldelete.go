package ingester

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/argus-tsdb/argus/storage"
)

// DeleteTenantFromWAL removes every series and sample of tenant from the
// WAL of a stopped ingester whose -storage.path is dataDir (argus tsdb
// delete-tenant; the caller holds the store's lock, so no ingester runs
// on it). It checkpoints the whole WAL without the tenant's series, as a
// truncation does without dropping any other sample, then deletes the
// segments and older checkpoints. The checkpoint's rename is the commit
// point: a replay reads the newest checkpoint and only the segments after
// it, so a crash before leaves the WAL as it was, and one after leaves
// the tenant gone from it. It returns the number of the tenant's series
// records dropped (0: the WAL holds none, and is left alone).
func DeleteTenantFromWAL(logger *slog.Logger, dataDir, tenant string) (int, error) {
	dir := filepath.Join(dataDir, walDirName)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err := wlog.DeleteTempCheckpoints(logger, dir); err != nil {
		return 0, err
	}
	refs, err := walTenantRefs(dir, tenant, logger)
	if err != nil || len(refs) == 0 {
		return 0, err
	}
	hook := storage.Failpoint()
	step := func(s truncStep) {
		if hook != nil {
			_ = hook("wal-delete:" + string(s))
		}
	}
	_, last, err := wlog.Segments(dir)
	if err != nil {
		return 0, fmt.Errorf("list wal segments: %w", err)
	}
	if _, cpIdx, err := wlog.LastCheckpoint(dir); err == nil && last <= cpIdx {
		// An ingester leaves a segment after its checkpoint; not this WAL.
		return 0, fmt.Errorf("delete tenant %q from the wal: no segment after checkpoint %d: start and stop the ingester once first", tenant, cpIdx)
	}
	// A new segment, so that every segment with records is checkpointed.
	wl, err := wlog.New(logger, nil, dir, compression.None)
	if err != nil {
		return 0, fmt.Errorf("open wal: %w", err)
	}
	first, _, err := wlog.Segments(dir)
	if err == nil {
		keep := func(ref chunks.HeadSeriesRef) bool { _, gone := refs[ref]; return !gone }
		_, err = wlog.Checkpoint(logger, wl, first, last, keep, math.MinInt64, false, false)
	}
	if err == nil {
		step(stepCheckpointed)
		err = wl.Truncate(last + 1)
	}
	if err == nil {
		step(stepTruncated)
		err = wlog.DeleteCheckpoints(dir, last)
	}
	if err == nil {
		step(stepDone)
	}
	if err := errors.Join(err, wl.Close()); err != nil {
		return 0, fmt.Errorf("delete tenant %q from the wal: %w", tenant, err)
	}
	return len(refs), nil
}

// walTenantRefs returns the refs of the series records of tenant in the
// WAL at dir: in its newest checkpoint and the segments after it, what a
// replay reads.
func walTenantRefs(dir, tenant string, logger *slog.Logger) (map[chunks.HeadSeriesRef]struct{}, error) {
	var ranges []wlog.SegmentRange
	cpDir, cpIdx, err := wlog.LastCheckpoint(dir)
	switch {
	case errors.Is(err, record.ErrNotFound):
		cpIdx = -1
	case err != nil:
		return nil, fmt.Errorf("find last checkpoint: %w", err)
	default:
		ranges = append(ranges, wlog.SegmentRange{Dir: cpDir, First: -1, Last: -1})
	}
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal segments: %w", err)
	}
	if first >= 0 && max(first, cpIdx+1) <= last {
		ranges = append(ranges, wlog.SegmentRange{Dir: dir, First: max(first, cpIdx+1), Last: last})
	}
	refs := map[chunks.HeadSeriesRef]struct{}{}
	for _, sr := range ranges {
		if err := tenantRefsIn(sr, tenant, logger, refs); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// tenantRefsIn adds to refs those of tenant's series records in sr.
func tenantRefsIn(sr wlog.SegmentRange, tenant string, logger *slog.Logger, refs map[chunks.HeadSeriesRef]struct{}) error {
	rc, err := wlog.NewSegmentsRangeReader(sr)
	if err != nil {
		return fmt.Errorf("open wal segments: %w", err)
	}
	defer rc.Close()
	r := wlog.NewReader(rc)
	dec := record.NewDecoder(nil, logger)
	var series []record.RefSeries
	for r.Next() {
		rec := r.Record()
		if dec.Type(rec) != record.Series {
			continue
		}
		if series, err = dec.Series(rec, series[:0]); err != nil {
			return fmt.Errorf("decode series record in %s: %w", sr.Dir, err)
		}
		for _, s := range series {
			if s.Labels.Get(tenantLabel) == tenant {
				refs[s.Ref] = struct{}{}
			}
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read wal %s: %w", sr.Dir, err)
	}
	return nil
}
