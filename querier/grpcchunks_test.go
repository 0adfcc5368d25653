package querier

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/client"
	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// TestQueryServer_Chunks streams the raw chunks of the selected series: the
// samples they decode to are the querier's own view of the same range, and
// the tenant's query limits refuse as over HTTP.
func TestQueryServer_Chunks(t *testing.T) {
	_, src := newFakeSource(t)
	lim := newFakeLimits(t)
	q, err := New(defaultConfig(t), Deps{Source: src, Limits: lim})
	require.NoError(t, err)
	c := dialTest(t, serveBoth(t, q, headerAuth(t)).grpc, tenantA)
	start, end := t0, t0+2*60*60_000
	for _, ms := range [][]string{{"up"}, {"up", `{__name__=~"temp.*"}`}, {"up", "up"}} {
		var got []string
		_, err := c.Chunks(t.Context(), ms, time.UnixMilli(start), time.UnixMilli(end), func(cs client.ChunkSeries) error {
			for _, ch := range cs.Chunks {
				it := ch.Chunk.Iterator(nil)
				for it.Next() == chunkenc.ValFloat {
					ts, v := it.At()
					got = append(got, sampleString(cs.Labels, ts, v))
				}
				require.NoError(t, it.Err())
			}
			return nil
		})
		require.NoError(t, err)
		require.NotEmpty(t, got)
		require.Equal(t, wantRaw(t, q, ms, start, end), got, ms)
	}

	lim.set(tenantA, func(l *limits.Limits) { l.MaxFetchedChunksPerQuery = 2 })
	_, err = c.Chunks(t.Context(), []string{"up"}, time.UnixMilli(start), time.UnixMilli(end), func(client.ChunkSeries) error { return nil })
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), string(apierror.MaxFetchedChunksPerQuery)+": ")
	lim.set(tenantA, func(l *limits.Limits) { l.MaxQueryLength = time.Hour })
	_, err = c.Chunks(t.Context(), []string{"up"}, time.UnixMilli(start), time.UnixMilli(end), func(client.ChunkSeries) error { return nil })
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), string(apierror.MaxQueryLength)+": ")
	_, err = c.Chunks(t.Context(), []string{"up{"}, time.UnixMilli(start), time.UnixMilli(end), func(client.ChunkSeries) error { return nil })
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

func sampleString(ls labels.Labels, ts int64, v float64) string {
	return ls.String() + " " + strconv.FormatInt(ts, 10) + " " + strconv.FormatFloat(v, 'g', -1, 64)
}

// wantRaw is every sample of the series ms select in [start, end], read
// through the querier's storage view.
func wantRaw(t *testing.T, q *Querier, ms []string, start, end int64) []string {
	t.Helper()
	ctx := tenant.With(context.Background(), tenantA)
	sq, err := q.Queryable().Querier(start, end)
	require.NoError(t, err)
	defer sq.Close()
	var sets []storage.SeriesSet
	for _, m := range ms {
		matchers, err := selectorParser.ParseMetricSelector(m)
		require.NoError(t, err)
		sets = append(sets, sq.Select(ctx, true, nil, matchers...))
	}
	set := storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	var out []string
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out = append(out, sampleString(set.At().Labels(), ts, v))
		}
	}
	require.NoError(t, set.Err())
	return out
}
