package ingester

import (
	"log/slog"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeleteTenantFromWAL deletes one of two tenants from the WAL of a
// crashed ingester (everything still in the WAL, nothing persisted): a
// restart replays the other tenant whole and nothing of the deleted one,
// and a second deletion finds nothing to drop.
func TestDeleteTenantFromWAL(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	want := map[string][]sample{}
	for s := range 3 {
		smps := seq(1_000, scrapeMs, 200)
		push(t, ing, "t1", ts(metricName(s), smps...))
		want[lstr(metricName(s)...)] = smps
		push(t, ing, "t2", ts(metricName(s), smps...))
	}
	cfg.Dir = crash(t, ing)
	logger := slog.New(slog.DiscardHandler)
	n, err := DeleteTenantFromWAL(logger, cfg.Dir, "t2")
	require.NoError(t, err)
	require.Equal(t, 3, n, "series records of t2")
	n, err = DeleteTenantFromWAL(logger, cfg.Dir, "t2")
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to delete")

	ing = startIngester(t, cfg)
	requireSamples(t, want, queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))
	require.Empty(t, queryAll(t, ing, "t2", math.MinInt64, math.MaxInt64))
}
