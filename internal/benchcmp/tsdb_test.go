package benchcmp

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// tsdbUnderTest is one side of a comparison, fed the same WriteRequests. It is
// not safe for concurrent use, and a push may not retain req.
type tsdbUnderTest interface {
	// push appends every sample of req, and returns once they are in the WAL.
	push(ctx context.Context, req *arguspb.WriteRequest) error
	// persist writes the samples pushed so far, up to maxt (Unix ms), out
	// of memory into the TSDB's persistent format and measures them. Only
	// close may follow.
	persist(ctx context.Context, maxt int64) (persisted, error)
	// settle waits until the background work that the pushes so far set off
	// is done, so that a benchmark that follows measures the steady state
	// (Argus: the periodic flush of the finishedChunks chunks that the
	// pushes cut to the chunk store).
	settle(ctx context.Context, finishedChunks int) error
	// queryable reads everything pushed so far. Only valid before persist.
	queryable(tb testing.TB) storage.Queryable
	// close releases everything; it is idempotent.
	close() error
}

// persisted is what persist measured.
type persisted struct {
	// chunkBytes is the sum of the encoded chunk payloads.
	chunkBytes int64
	// fileBytes is the (apparent) size of the persistent files: chunks,
	// index and metadata, never the WAL.
	fileBytes int64
	// samples is the number of samples in the measured chunks.
	samples int64
}

// impl names one side; open builds a fresh, empty instance in tb.TempDir and
// closes it in tb.Cleanup.
type impl struct {
	name string
	open func(tb testing.TB, o openOptions) tsdbUnderTest
}

// openOptions tune how a side is run.
type openOptions struct {
	// noBackground runs no background loop: Argus's Running (periodic
	// flush, WAL fsync and truncation) is not started, so that what is
	// persisted does not depend on timing. Prometheus's head has none.
	noBackground bool
	// oooWindow is the out-of-order time window of both sides (Argus's
	// out_of_order_time_window, Prometheus's head option, with its WBL).
	oooWindow time.Duration
}

// impls are the two sides, Argus first (sub-benchmark impl=argus, then
// impl=prometheus).
var impls = []impl{
	{name: "argus", open: openArgus},
	{name: "prometheus", open: openPrometheus},
}

// pushAll pushes reqs with one sample per series at timestamp scrapeTime(k)
// for every k in [from, to).
func pushAll(ctx context.Context, tb testing.TB, db tsdbUnderTest, g *valueGen, reqs []*arguspb.WriteRequest, from, to int) {
	tb.Helper()
	for k := from; k < to; k++ {
		g.fill(reqs, scrapeTime(k))
		for _, req := range reqs {
			if err := db.push(ctx, req); err != nil {
				tb.Fatalf("push scrape %d: %v", k, err)
			}
		}
	}
}

// dirSize returns the total size of the regular files under dir, skipping
// the directories for which skip returns true.
func dirSize(dir string, skip func(path string) bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && skip != nil && skip(path) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}
