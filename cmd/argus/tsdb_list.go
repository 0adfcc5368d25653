package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/argus-tsdb/argus/storage"
)

const tsdbListAbout = `Usage: argus tsdb list -storage.path=DIR [-tenant=T]

Lists the partitions of the store of a stopped argus (time range, level,
tenants, bytes on disk), then each tenant's share of every partition:
series, chunks, samples, bytes, bytes per sample and tombstones in force
(deletions not yet purged by compaction), with a total per tenant. The last line divides the bytes of all partition files by all the
samples they hold. -tenant restricts the listing to one tenant.`

// runTSDBList prints the partitions and tenants of a store.
func runTSDBList(args []string, stdout, stderr io.Writer) int {
	var tf tsdbFlags
	fs := newTSDBFlagSet("list", tsdbListAbout, "List only this tenant.", &tf, stderr)
	pos, status, ok := parseTSDBArgs(fs, args)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	db, err := openTSDB(tf.storagePath, existingStore)
	if err != nil {
		fmt.Fprintf(stderr, "argus tsdb list: %v\n", err)
		return 1
	}
	err = listStore(stdout, db, tf.tenant)
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the store: %w", cerr))
	}
	if err != nil {
		fmt.Fprintf(stderr, "argus tsdb list: %v\n", err)
		return 1
	}
	return 0
}

// listStore writes the listing of db (of tenant only, if not empty) to w.
func listStore(w io.Writer, db *storage.DB, tenant string) error {
	tenants := []string{tenant}
	if tenant == "" {
		var err error
		if tenants, err = db.Tenants(); err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
	}
	stats := make(map[string][]storage.TenantPartitionStats, len(tenants))
	inTenants := map[string]bool{} // partition paths holding a listed tenant
	for _, t := range tenants {
		ps, err := db.TenantStats(t)
		if err != nil {
			return fmt.Errorf("stats of tenant %s: %w", t, err)
		}
		stats[t] = ps
		for _, p := range ps {
			inTenants[p.Partition.Path] = true
		}
	}
	fileBytes, err := listPartitions(w, db, tenant, inTenants)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	allSamples, err := listTenants(w, tenants, stats)
	if err != nil {
		return err
	}
	what := "all partition files"
	if tenant != "" {
		what = "the partition files holding " + tenant + " (shared with other tenants)"
	}
	_, err = fmt.Fprintf(w, "\n%s: %d bytes for %d samples, %s bytes per sample\n", what, fileBytes, allSamples, perSample(fileBytes, allSamples))
	return err
}

// listPartitions writes the table of partitions (those in inTenants if
// tenant is not empty) and returns the sum of their bytes.
func listPartitions(w io.Writer, db *storage.DB, tenant string, inTenants map[string]bool) (int64, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var fileBytes int64
	fmt.Fprintln(tw, "PARTITION\tMIN TIME\tMAX TIME\tLEVEL\tTENANTS\tBYTES")
	for _, p := range db.Partitions() {
		if tenant != "" && !inTenants[p.Path] {
			continue
		}
		fileBytes += p.Bytes
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", filepath.Base(p.Path), fmtTime(p.MinTime), fmtTime(p.MaxTime), p.Level, p.Tenants, p.Bytes)
	}
	return fileBytes, tw.Flush()
}

// listTenants writes each tenant's share of each partition and its total,
// and returns the samples of all of them.
func listTenants(w io.Writer, tenants []string, stats map[string][]storage.TenantPartitionStats) (int64, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var allSamples int64
	fmt.Fprintln(tw, "TENANT\tPARTITION\tMIN TIME\tMAX TIME\tSERIES\tCHUNKS\tSAMPLES\tBYTES\tBYTES/SAMPLE\tTOMBSTONES")
	for _, t := range tenants {
		var tot storage.TenantPartitionStats
		for _, p := range stats[t] {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\n", t, filepath.Base(p.Partition.Path),
				fmtTime(p.MinTime), fmtTime(p.MaxTime), p.Series, p.Chunks, p.Samples, p.Bytes, perSample(p.Bytes, p.Samples), p.Tombstones)
			tot.Chunks += p.Chunks
			tot.Samples += p.Samples
			tot.Bytes += p.Bytes
		}
		fmt.Fprintf(tw, "%s\ttotal\t\t\t\t%d\t%d\t%d\t%s\t\n", t, tot.Chunks, tot.Samples, tot.Bytes, perSample(tot.Bytes, tot.Samples))
		allSamples += tot.Samples
	}
	return allSamples, tw.Flush()
}

// fmtTime formats a Unix millisecond time in UTC, with milliseconds when
// it has some.
func fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.999Z")
}

// perSample formats bytes/samples, or "-" without samples.
func perSample(bytes, samples int64) string {
	if samples == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(bytes)/float64(samples), 'f', 2, 64)
}
