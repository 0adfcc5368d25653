package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/argus-tsdb/argus/storage"
)

// `argus tsdb` inspects and fills the persisted store of a stopped argus
// (the DB under -storage.path), like promtool's tsdb commands. Each
// subcommand opens the store itself, which takes its file lock: an argus
// running on the same directory holds it, and the subcommand refuses.

const tsdbUsage = `Usage: argus tsdb <command> [flags] [args]

Inspect or fill the persisted store of an argus data directory. The argus
process that owns the directory must be stopped: the store admits one
opener at a time.

Commands:
  list    -storage.path=DIR [-tenant=T]
          Tenants and their partitions with series, chunks, samples, bytes
          and bytes per sample.
  verify  -storage.path=DIR
          Check every partition, and that none is missing; exit status 1
          on any problem.
  import  -storage.path=DIR -tenant=T PROM_DATA_DIR
          Import the blocks of a Prometheus data directory into tenant T.
  delete-tenant  -storage.path=DIR -tenant=T
          Delete every sample of tenant T (WAL and store) and give its
          disk space back.

Run argus tsdb <command> -help for the flags of a command.
`

// tsdbCommand is one `argus tsdb` subcommand: it parses its own args and
// returns the exit status.
type tsdbCommand func(args []string, stdout, stderr io.Writer) int

// runTSDB dispatches `argus tsdb <command>`.
func runTSDB(args []string, stdout, stderr io.Writer) int {
	commands := map[string]tsdbCommand{
		"list":          runTSDBList,
		"verify":        runTSDBVerify,
		"import":        runTSDBImport,
		"delete-tenant": runTSDBDeleteTenant,
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, tsdbUsage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tsdbUsage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "argus tsdb: unknown command %q\n\n%s", args[0], tsdbUsage)
		return 2
	}
	return cmd(args[1:], stdout, stderr)
}

// tsdbFlags are the flags the subcommands share.
type tsdbFlags struct {
	storagePath string
	tenant      string
}

// newTSDBFlagSet returns the flag set of subcommand name with -storage.path
// (and -tenant if tenantUsage is not empty) registered into tf; about is
// the help text printed before the flags.
func newTSDBFlagSet(name, about, tenantUsage string, tf *tsdbFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("argus tsdb "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&tf.storagePath, "storage.path", "./data", "The data directory of the argus whose store to read (its -storage.path).")
	if tenantUsage != "" {
		fs.StringVar(&tf.tenant, "tenant", "", tenantUsage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", about)
		fs.PrintDefaults()
	}
	return fs
}

// parseTSDBArgs parses args with fs, flags before and after the positional
// arguments (Go's flag package stops at the first one), and returns the
// positional arguments. ok is false when the caller must exit with status.
func parseTSDBArgs(fs *flag.FlagSet, args []string) (positional []string, status int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return positional, 0, true
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usageError prints msg and the usage of fs, and returns exit status 2.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return 2
}

// dbDir is where the store of the argus with storagePath lives.
func dbDir(storagePath string) string {
	return filepath.Join(storagePath, "db")
}

// storeMode says whether openTSDB may create a missing store.
type storeMode int

const (
	existingStore storeMode = iota // list: a missing store is a wrong path
	createStore                    // import: into a fresh data directory
)

// openTSDB opens the store under storagePath for a subcommand, with an
// error that says what to do when an argus holds it.
func openTSDB(storagePath string, mode storeMode) (*storage.DB, error) {
	dir := dbDir(storagePath)
	if err := requireStore(dir); err != nil && mode == existingStore {
		return nil, err
	}
	db, err := storage.OpenDB(dir, storage.DBOptions{})
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("the store %s is in use, most likely by a running argus: stop it first (%w)", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open the store %s: %w", dir, err)
	}
	return db, nil
}

// requireStore fails unless dir exists.
func requireStore(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no argus store at %s (is -storage.path the data directory of an argus?): %w", dir, err)
	}
	return nil
}

// runTSDBVerify checks every partition of the store (storage.CheckDB) and
// prints the problems; the exit status is 1 if there is any.
func runTSDBVerify(args []string, stdout, stderr io.Writer) int {
	var tf tsdbFlags
	fs := newTSDBFlagSet("verify", "Usage: argus tsdb verify -storage.path=DIR\n\n"+
		"Checks every partition of the store of a stopped argus: pages, headers,\n"+
		"index, chunks and their checksums, and that the partition files are those\n"+
		"the store lists (a deleted file is a problem). Exit status 0: no problem;\n"+
		"1: problems found, each printed on a line.", "", &tf, stderr)
	pos, status, ok := parseTSDBArgs(fs, args)
	if !ok {
		return status
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	dir := dbDir(tf.storagePath)
	if err := requireStore(dir); err != nil {
		fmt.Fprintf(stderr, "argus tsdb verify: %v\n", err)
		return 1
	}
	if err := storage.CheckDB(dir); err != nil {
		if errors.Is(err, storage.ErrLocked) {
			fmt.Fprintf(stderr, "argus tsdb verify: the store %s is in use, most likely by a running argus: stop it first (%v)\n", dir, err)
			return 1
		}
		fmt.Fprintf(stderr, "argus tsdb verify: %s has problems:\n", dir)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", dir)
	return 0
}
