package benchcmp

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// TestSidesAgree checks, on a small data set, what the benchmarks take for
// granted: both sides accept every generated sample, and the benchmark
// queries return the same result from both, so that neither side is timed
// on a wrong answer. It also keeps the benchmark harness compiling and
// working under `make test`.
func TestSidesAgree(t *testing.T) {
	const (
		n = 2 * batchSeries
		// Fewer than 120 scrapes: no chunk is finished, so nothing waits for
		// Argus's periodic flush.
		scrapes = 100
	)
	series := generateSeries(n)
	start, end := time.UnixMilli(scrapeTime(0)), time.UnixMilli(scrapeTime(scrapes-1))
	engine := newBenchEngine()
	results := make(map[string][]promql.Matrix)
	for _, im := range impls {
		ctx := tenant.With(t.Context(), tenantID)
		db := im.open(t, openOptions{})
		pushAll(ctx, t, db, newValueGen(series), newRequests(series, false), 0, scrapes)
		require.NoError(t, db.settle(ctx, 0))
		q := db.queryable(t)
		for _, bq := range benchQueries {
			qry, err := engine.NewRangeQuery(ctx, q, nil, bq.expr, start, end, time.Minute)
			require.NoError(t, err)
			res := qry.Exec(ctx)
			require.NoError(t, res.Err, "%s: %s", im.name, bq.expr)
			m, err := res.Matrix()
			require.NoError(t, err)
			require.NotEmpty(t, m, "%s: %s", im.name, bq.expr)
			results[im.name] = append(results[im.name], cloneMatrix(m))
			qry.Close() // Returns the points to the engine's pools.
		}
		require.NoError(t, db.close())
	}
	for k, bq := range benchQueries {
		require.Equal(t, results["prometheus"][k], results["argus"][k], bq.expr)
	}
}

// cloneMatrix deep-copies m, whose points the engine reuses after Close.
func cloneMatrix(m promql.Matrix) promql.Matrix {
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric.Copy(), Floats: slices.Clone(s.Floats)}
	}
	return out
}
