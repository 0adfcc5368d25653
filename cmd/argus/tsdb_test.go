package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/benchdata"
	"github.com/argus-tsdb/argus/storage"
)

// TestStrayArgumentsRefused: a word that is neither a flag nor a command
// must not start a server (run would block serving if it did).
func TestStrayArgumentsRefused(t *testing.T) {
	for _, args := range [][]string{{"foo"}, {"-target=all", "ingester"}, {"tsdbx"}, {"-log.level=warn", "tsdb"}} {
		require.Equal(t, 2, run(args), "%q", args)
	}
}

func TestTSDBCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing")
	cases := []struct {
		name       string
		args       []string
		wantStatus int
		wantErr    string
	}{
		{name: "no command", args: nil, wantStatus: 2, wantErr: "Usage: argus tsdb <command>"},
		{name: "help", args: []string{"-help"}, wantStatus: 0},
		{name: "unknown command", args: []string{"compact"}, wantStatus: 2, wantErr: `unknown command "compact"`},
		{name: "list with an argument", args: []string{"list", "-storage.path=" + missing, "extra"}, wantStatus: 2, wantErr: `unexpected argument "extra"`},
		{name: "list of no store", args: []string{"list", "-storage.path=" + missing}, wantStatus: 1, wantErr: "no argus store at " + filepath.Join(missing, "db")},
		{name: "list bad flag", args: []string{"list", "-nope"}, wantStatus: 2, wantErr: "flag provided but not defined: -nope"},
		{name: "verify of no store", args: []string{"verify", "-storage.path=" + missing}, wantStatus: 1, wantErr: "no argus store at"},
		{name: "import without a dir", args: []string{"import", "-storage.path=" + missing, "-tenant=a"}, wantStatus: 2, wantErr: "want one PROM_DATA_DIR, got 0"},
		{name: "import two dirs", args: []string{"import", "-tenant=a", "x", "y"}, wantStatus: 2, wantErr: "want one PROM_DATA_DIR, got 2"},
		{name: "import without a tenant", args: []string{"import", "-storage.path=" + missing, "x"}, wantStatus: 2, wantErr: "-tenant is required"},
		{name: "import bad tenant", args: []string{"import", "-tenant=a/b", "x"}, wantStatus: 2, wantErr: "-tenant:"},
		{name: "import flags after the dir", args: []string{"import", missing, "-tenant=a", "-storage.path=" + missing}, wantStatus: 1, wantErr: "read prometheus data dir"},
		{name: "import of no blocks", args: []string{"import", "-tenant=a", "-storage.path=" + missing, t.TempDir()}, wantStatus: 1, wantErr: "no Prometheus blocks in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, c.wantStatus, runTSDB(c.args, &stdout, &stderr), "stderr: %s", stderr.String())
			require.Contains(t, stderr.String(), c.wantErr)
		})
	}
}

// writePromBlock writes one Prometheus block of 2h into dir: n series of
// 15 s samples over [0, 2h), and returns the number of samples.
func writePromBlock(t *testing.T, dir string, n int) int {
	t.Helper()
	var ss []promstorage.Series
	samples := 0
	for i := range n {
		var cs []chunks.Sample
		for ts := int64(0); ts < 2*time.Hour.Milliseconds(); ts += 15_000 {
			cs = append(cs, benchdata.FloatSample{Time: ts, Value: float64(i) + float64(ts)/1000})
		}
		samples += len(cs)
		ss = append(ss, promstorage.NewListSeries(labels.FromStrings("__name__", "m", "i", strconv.Itoa(i)), cs))
	}
	_, err := tsdb.CreateBlock(ss, dir, 2*time.Hour.Milliseconds(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return samples
}

// TestTSDBImportListVerify imports Prometheus blocks into a fresh data dir,
// lists and verifies it, and checks the refusals: a second import of the
// same range, and any command while the store is open elsewhere.
func TestTSDBImportListVerify(t *testing.T) {
	prom := t.TempDir()
	samples := writePromBlock(t, prom, 3)
	dataDir := t.TempDir()
	tsdbRun := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runTSDB(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := tsdbRun("import", "-storage.path="+dataDir, "-tenant=team-a", prom)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Contains(t, out, fmt.Sprintf("imported 3 series, 12 chunks, %d samples from 1 blocks", samples))

	code, out, errOut = tsdbRun("list", "-storage.path="+dataDir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Regexp(t, `(?m)^team-a +total +12 +`+strconv.Itoa(samples)+` +\d+ +\d+\.\d\d *$`, out)
	require.Regexp(t, `all partition files: \d+ bytes for `+strconv.Itoa(samples)+` samples, \d+\.\d\d bytes per sample`, out)
	code, out, errOut = tsdbRun("list", "-storage.path="+dataDir, "-tenant=nobody")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Contains(t, out, "for 0 samples, - bytes per sample")

	code, out, errOut = tsdbRun("verify", "-storage.path="+dataDir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Contains(t, out, ": ok")

	code, _, errOut = tsdbRun("import", "-storage.path="+dataDir, "-tenant=team-a", prom)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "tenant team-a already has data from 1970-01-01T00:00:00Z to 1970-01-01T01:59:45Z")
	code, _, errOut = tsdbRun("import", "-storage.path="+dataDir, "-tenant=team-b", prom)
	require.Equal(t, 0, code, "another tenant may hold the same range: %s", errOut)

	db, err := storage.OpenDB(filepath.Join(dataDir, "db"), storage.DBOptions{})
	require.NoError(t, err)
	for _, cmd := range []string{"import", "list", "verify"} {
		code, _, errOut = tsdbRun(cmd, "-storage.path="+dataDir, "-tenant=team-c", prom)
		if cmd != "import" {
			code, _, errOut = tsdbRun(cmd, "-storage.path="+dataDir)
		}
		require.Equal(t, 1, code, cmd)
		require.Contains(t, errOut, "is in use, most likely by a running argus: stop it first", cmd)
	}
	require.NoError(t, db.Close())
}

// TestTSDBVerifyFindsDamage: verify exits 1 and names the problem when a
// partition file is damaged.
func TestTSDBVerifyFindsDamage(t *testing.T) {
	prom := t.TempDir()
	writePromBlock(t, prom, 20) // Under CreateBlock's 10,000 samples per commit.
	dataDir := t.TempDir()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, runTSDB([]string{"import", "-storage.path=" + dataDir, "-tenant=team-a", prom}, &stdout, &stderr), "stderr: %s", stderr.String())

	parts, err := filepath.Glob(filepath.Join(dataDir, "db", "L0_*"))
	require.NoError(t, err)
	require.Len(t, parts, 1)
	f, err := os.OpenFile(parts[0], os.O_RDWR, 0)
	require.NoError(t, err)
	info, err := f.Stat()
	require.NoError(t, err)
	// Zeroes over every page after the first two (bbolt's meta pages):
	// the data is gone, the file still opens.
	_, err = f.WriteAt(make([]byte, info.Size()-8192), 8192)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 1, runTSDB([]string{"verify", "-storage.path=" + dataDir}, &stdout, &stderr), "stdout: %s", stdout.String())
	require.Contains(t, stderr.String(), "has problems:\n  check "+parts[0]+": chunk store corrupt: ")
	require.Regexp(t, `page \d+ \(path \[\d+\]\): header says page 0`, stderr.String())
	require.NotContains(t, stderr.String(), "panic")
}

// TestTSDBVerifyRemovedPartition: verify exits 1 and names the file when a
// partition file the store lists was deleted.
func TestTSDBVerifyRemovedPartition(t *testing.T) {
	prom := t.TempDir()
	writePromBlock(t, prom, 3)
	dataDir := t.TempDir()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, runTSDB([]string{"import", "-storage.path=" + dataDir, "-tenant=team-a", prom}, &stdout, &stderr), "stderr: %s", stderr.String())
	parts, err := filepath.Glob(filepath.Join(dataDir, "db", "L0_*"))
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.NoError(t, os.Remove(parts[0]))

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 1, runTSDB([]string{"verify", "-storage.path=" + dataDir}, &stdout, &stderr), "stdout: %s", stdout.String())
	dir := filepath.Join(dataDir, "db")
	require.Equal(t, "argus tsdb verify: "+dir+" has problems:\n  check db "+dir+": chunk store corrupt: 1 problems; partition "+
		filepath.Base(parts[0])+" is in the manifest but missing from the directory: its data is lost\n", stderr.String())
	require.Empty(t, stdout.String())
}
