package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
