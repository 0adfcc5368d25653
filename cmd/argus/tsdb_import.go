package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/argus-tsdb/argus/internal/promimport"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/storage"
)

const tsdbImportAbout = `Usage: argus tsdb import -storage.path=DIR -tenant=T PROM_DATA_DIR

Imports the blocks of a Prometheus TSDB data directory (or of one block
directory, or of the output of promtool tsdb create-blocks-from openmetrics)
into tenant T of the store of a stopped argus, so that the tenant answers
queries over that history as the Prometheus did.

Only blocks are read, never the head: the samples of the last hours that
are still in PROM_DATA_DIR/wal (and chunks_head) are not imported. Stop
Prometheus first (its compactor deletes and writes blocks while it runs), or
better, take a snapshot, which writes the head as a block too:

  curl -XPOST http://prometheus:9090/api/v1/admin/tsdb/snapshot
  (needs --web.enable-admin-api) then import <data dir>/snapshots/<name>.

Overlapping blocks are merged as Prometheus's compactor merges them, deleted
series and ranges (tombstones) are left out, and chunks crossing a 2h
partition boundary are re-encoded. Native histogram samples are skipped and
counted: histograms are not in the Argus data model yet. The tenant must hold
no persisted data in the time range of the blocks (import into a new tenant,
or before the tenant receives data for that range). Reading PROM_DATA_DIR
changes nothing in it.`

// runTSDBImport imports Prometheus blocks into a tenant of the store.
func runTSDBImport(args []string, stdout, stderr io.Writer) int {
	var tf tsdbFlags
	fs := newTSDBFlagSet("import", tsdbImportAbout, "The tenant to import into (required).", &tf, stderr)
	pos, status, ok := parseTSDBArgs(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want one PROM_DATA_DIR, got %d arguments", len(pos))
	}
	if tf.tenant == "" {
		return usageError(fs, stderr, "-tenant is required")
	}
	if err := tenant.Validate(tf.tenant); err != nil {
		return usageError(fs, stderr, "-tenant: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := importBlocks(ctx, stdout, stderr, tf, pos[0]); err != nil {
		fmt.Fprintf(stderr, "argus tsdb import: %v\n", err)
		return 1
	}
	return 0
}

// importBlocks finds the blocks of promDir, checks that the tenant has no
// data in their range, imports them and prints what it did.
func importBlocks(ctx context.Context, stdout, stderr io.Writer, tf tsdbFlags, promDir string) (err error) {
	blocks, err := promimport.FindBlocks(promDir)
	if err != nil {
		return err
	}
	head, err := promimport.HeadBytes(promDir)
	if err != nil {
		return err
	}
	if head > 0 {
		fmt.Fprintf(stderr, "warning: %s has a head of %d bytes (wal/, chunks_head/); its samples are not in blocks and are not imported (import a snapshot to get them)\n", promDir, head)
	}
	if len(blocks) == 0 {
		return fmt.Errorf("no Prometheus blocks in %s (directories named by a ULID with a meta.json)", promDir)
	}
	minT, maxT := blocks[0].MinTime, blocks[0].MaxTime
	for _, b := range blocks {
		minT, maxT = min(minT, b.MinTime), max(maxT, b.MaxTime)
	}
	db, err := openTSDB(tf.storagePath, createStore)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the store: %w", cerr))
		}
	}()
	if err := requireNoOverlap(db, tf.tenant, minT, maxT-1); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "importing %d blocks from %s into tenant %s, %s to %s\n", len(blocks), promDir, tf.tenant, fmtTime(minT), fmtTime(maxT-1))
	start := time.Now()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := promimport.Import(ctx, db, blocks, promimport.Options{Tenant: tf.tenant, Logger: logger})
	printImportStats(stdout, st, time.Since(start))
	if err != nil {
		return fmt.Errorf("import stopped, the batches before the error are in the store: %w", err)
	}
	return nil
}

// requireNoOverlap fails if tenant has persisted data in [minT, maxT]: the
// store takes a series' chunks only in time order, so the import would fail
// half-way on the first series both hold.
func requireNoOverlap(db *storage.DB, tenantID string, minT, maxT int64) error {
	stats, err := db.TenantStats(tenantID)
	if err != nil {
		return fmt.Errorf("stats of tenant %s: %w", tenantID, err)
	}
	for _, p := range stats {
		if p.Samples > 0 && p.MinTime <= maxT && p.MaxTime >= minT {
			return fmt.Errorf("tenant %s already has data from %s to %s, within the range of the blocks (%s to %s): import into another tenant, or delete the tenant's data first",
				tenantID, fmtTime(p.MinTime), fmtTime(p.MaxTime), fmtTime(minT), fmtTime(maxT))
		}
	}
	return nil
}

// printImportStats prints what an import did.
func printImportStats(w io.Writer, st promimport.Stats, took time.Duration) {
	fmt.Fprintf(w, "imported %d series, %d chunks, %d samples from %d blocks in %v",
		st.Series, st.Chunks, st.Samples, st.Blocks, took.Round(time.Millisecond))
	if st.Chunks > 0 {
		fmt.Fprintf(w, ", %s to %s", fmtTime(st.MinTime), fmtTime(st.MaxTime))
	}
	fmt.Fprintln(w)
	if st.SplitChunks > 0 || st.ReencodedChunks > 0 {
		fmt.Fprintf(w, "re-encoded %d chunks that crossed a 2h partition boundary and %d float chunks of another encoding than XOR\n",
			st.SplitChunks, st.ReencodedChunks)
	}
	if st.HistogramChunks > 0 {
		fmt.Fprintf(w, "skipped %d native histogram chunks (%d samples): histograms are not in the Argus data model yet\n",
			st.HistogramChunks, st.HistogramSamples)
	}
}
