package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/storage"
)

// TestTSDBDeleteTenant imports the same block into two tenants, deletes
// one (no WAL in this data dir: only the store), and checks that the
// other is whole, the store clean, and the refusals.
func TestTSDBDeleteTenant(t *testing.T) {
	prom := t.TempDir()
	writePromBlock(t, prom, 3)
	dataDir := t.TempDir()
	tsdbRun := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runTSDB(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, tenant := range []string{"team-a", "team-b"} {
		code, _, errOut := tsdbRun("import", "-storage.path="+dataDir, "-tenant="+tenant, prom)
		require.Equal(t, 0, code, "stderr: %s", errOut)
	}
	code, _, errOut := tsdbRun("delete-tenant", "-storage.path="+dataDir)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "-tenant is required")

	db, err := storage.OpenDB(filepath.Join(dataDir, "db"), storage.DBOptions{})
	require.NoError(t, err)
	code, _, errOut = tsdbRun("delete-tenant", "-storage.path="+dataDir, "-tenant=team-b")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "is in use, most likely by a running argus: stop it first")
	require.NoError(t, db.Close())

	code, out, errOut := tsdbRun("delete-tenant", "-storage.path="+dataDir, "-tenant=team-b")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Contains(t, out, `tenant "team-b" deleted: 0 series records dropped from the WAL`)
	db, err = storage.OpenDB(filepath.Join(dataDir, "db"), storage.DBOptions{})
	require.NoError(t, err)
	tenants, err := db.Tenants()
	require.NoError(t, err)
	require.Equal(t, []string{"team-a"}, tenants)
	stats, err := db.TenantStats("team-a")
	require.NoError(t, err)
	var samples int64
	for _, st := range stats {
		samples += st.Samples
	}
	require.Equal(t, int64(3*480), samples)
	require.NoError(t, db.Close())
	require.NoError(t, storage.CheckDB(filepath.Join(dataDir, "db")))
}
