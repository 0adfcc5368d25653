package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/argus-tsdb/argus/ingester"
)

const tsdbDeleteTenantAbout = `Usage: argus tsdb delete-tenant -storage.path=DIR -tenant=T

Deletes every sample of tenant T from a stopped argus and gives its disk
space back at once: its series leave the WAL (rewritten through a
checkpoint that keeps every other sample), then its persisted data leaves
the store (its buckets in the level-0 files are deleted, and each sealed
partition holding it is rewritten without it). It costs a rewrite of the
WAL and of every sealed partition the tenant has data in. Other tenants'
data is untouched. Once the store has recorded the deletion the tenant
stays hidden, and the next start of argus finishes the work if this
command was killed; killed before that (while it rewrites the WAL), run
it again. With argus running, use delete_series instead (docs/deletion.md).`

// runTSDBDeleteTenant deletes a tenant from the WAL and the store of a
// stopped argus.
func runTSDBDeleteTenant(args []string, stdout, stderr io.Writer) int {
	var tf tsdbFlags
	fs := newTSDBFlagSet("delete-tenant", tsdbDeleteTenantAbout, "The tenant to delete (required).", &tf, stderr)
	pos, status, ok := parseTSDBArgs(fs, args)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if tf.tenant == "" {
		return usageError(fs, stderr, "-tenant is required")
	}
	// The store first: its lock refuses while an argus runs on the
	// directory, and so guards the WAL too.
	db, err := openTSDB(tf.storagePath, existingStore)
	if err != nil {
		fmt.Fprintf(stderr, "argus tsdb delete-tenant: %v\n", err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	series, err := ingester.DeleteTenantFromWAL(logger, tf.storagePath, tf.tenant)
	if err == nil {
		err = db.DeleteTenant(tf.tenant)
	}
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the store: %w", cerr))
	}
	if err != nil {
		fmt.Fprintf(stderr, "argus tsdb delete-tenant: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "tenant %q deleted: %d series records dropped from the WAL, persisted data removed\n", tf.tenant, series)
	return 0
}
