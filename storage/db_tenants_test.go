package storage

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestDBManyTenants writes 10,000 tenants of 10 series each: the files, and
// the file descriptors the DB holds, do not grow with the tenants, each
// tenant reads back exactly its own data, and deleting one tenant leaves
// the others intact.
func TestDBManyTenants(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	fdsBefore := openFDs(t)
	db, dir := newTestDB(t, DBOptions{})
	m := model{}
	for i := range n {
		tenant := fmt.Sprintf("tenant-%05d", i)
		batch := genBatch(t, tenant, 10, 0, 20*60_000, 60_000, 20*60_000)
		require.NoError(t, db.Append(tenant, batch))
		if i%997 == 0 {
			m.add(t, tenant, batch)
		}
	}
	require.Len(t, partitionFiles(t, dir), 1, "one level-0 file for all the tenants")
	require.LessOrEqual(t, openFDs(t)-fdsBefore, 4, "meta.db and one partition")
	tenants, err := db.Tenants()
	require.NoError(t, err)
	require.Len(t, tenants, n)
	check := func() {
		for tenant := range m {
			requireSelect(t, db, m, tenant, all[0], all[1])
			requireSelect(t, db, m, tenant, 0, 5*60_000, labels.MustNewMatcher(labels.MatchEqual, "instance", "host-3"))
			values, err := db.LabelValues(tenant, "job", all[0], all[1])
			require.NoError(t, err)
			require.Equal(t, []string{tenant}, values)
		}
	}
	check()

	require.NoError(t, db.Compact(context.Background(), 3*hourMs))
	require.Len(t, partitionFiles(t, dir), 1, "one sealed file for all the tenants")
	require.LessOrEqual(t, openFDs(t)-fdsBefore, 4)
	check()

	// Reopened, the DB holds little memory per tenant: the tenants are
	// buckets in the files, read through the memory map.
	require.NoError(t, db.Close())
	before := heapInUse()
	db = openTestDB(t, dir, DBOptions{})
	perTenant := (heapInUse() - before) / int64(n)
	t.Logf("heap per tenant after opening: %d bytes", perTenant)
	require.Less(t, perTenant, int64(1024))
	check()

	require.NoError(t, db.DeleteTenant("tenant-00000"))
	delete(m, "tenant-00000")
	check()
	got, err := db.Select("tenant-00000", all[0], all[1], SelectOptions{})
	require.NoError(t, err)
	require.Empty(t, got)
	tenants, err = db.Tenants()
	require.NoError(t, err)
	require.Len(t, tenants, n-1)
}

// openFDs counts the file descriptors of the process.
func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
