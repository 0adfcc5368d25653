package querier

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// fakeReadSet is a function-field fake of the ring's read set.
type fakeReadSet struct {
	instances   []ring.Instance
	maxFailures int
}

func (f fakeReadSet) ReadSet() ([]ring.Instance, int, error) { return f.instances, f.maxFailures, nil }

// downSource fails every call, as an unreachable ingester does.
type downSource struct {
	arguspb.UnimplementedSeriesSourceServer
}

// replicas splits the fixture over three replicas the way quorum writes
// with one replica missing each write leave them: sample i is on every
// replica but replica i%3, so any two replicas together hold every sample.
func replicas(t *testing.T) []map[string][]fixtureSeries {
	full := fixture(t)
	out := make([]map[string][]fixtureSeries, 3)
	for r := range out {
		out[r] = map[string][]fixtureSeries{}
		for tn, series := range full {
			for _, s := range series {
				var kept []sample
				for i, smp := range s.samples {
					if i%3 != r {
						kept = append(kept, smp)
					}
				}
				out[r][tn] = append(out[r][tn], fixtureSeries{lset: s.lset, samples: kept})
			}
		}
	}
	return out
}

func newFanoutQueryable(t *testing.T, down map[int]bool, maxFailures int) *queryable {
	clients := map[string]arguspb.SeriesSourceClient{}
	var instances []ring.Instance
	for r, data := range replicas(t) {
		addr := string(rune('a' + r))
		instances = append(instances, ring.Instance{ID: addr, Addr: addr})
		if down[r] {
			clients[addr] = startSource(t, downSource{})
			continue
		}
		clients[addr] = startSource(t, &fakeSource{data: data})
	}
	return &queryable{
		metrics:  newMetrics(nil),
		replicas: fakeReadSet{instances: instances, maxFailures: maxFailures},
		sources:  func(addr string) (arguspb.SeriesSourceClient, error) { return clients[addr], nil },
	}
}

// TestFanout_MergesReplicas checks that queries over three partial replicas
// answer exactly what one complete copy answers, with one replica down too.
func TestFanout_MergesReplicas(t *testing.T) {
	_, full := newFakeSource(t)
	want := newTestQueryable(t, full, nil)
	engine := newTestEngine(t)
	ctx := tenant.With(context.Background(), tenantA)
	exprs := []string{`{job=~".+"}`, `rate({job="api"}[5m])`, `sum by (job) (count_over_time({job=~".+"}[10m]))`}

	for name, down := range map[string]map[int]bool{"all up": nil, "one down": {1: true}} {
		t.Run(name, func(t *testing.T) {
			got := newFanoutQueryable(t, down, 1)
			for _, expr := range exprs {
				for _, ts := range []int64{t0 + 30*60_000, t0 + 90*60_000} {
					require.Equal(t, instantQuery(t, engine, want, ctx, expr, ts), instantQuery(t, engine, got, ctx, expr, ts), "%s at %d", expr, ts)
				}
				require.Equal(t, rangeQuery(t, engine, want, ctx, expr, t0, t0+2*60*60_000, 60_000), rangeQuery(t, engine, got, ctx, expr, t0, t0+2*60*60_000, 60_000), expr)
			}
			cqWant, err := want.ChunkQuerier(t0, t0+2*60*60_000)
			require.NoError(t, err)
			cqGot, err := got.ChunkQuerier(t0, t0+2*60*60_000)
			require.NoError(t, err)
			wantNames, _, err := cqWant.LabelNames(ctx, nil)
			require.NoError(t, err)
			gotNames, _, err := cqGot.LabelNames(ctx, nil)
			require.NoError(t, err)
			require.Equal(t, wantNames, gotNames)
			wantVals, _, err := cqWant.LabelValues(ctx, "job", nil)
			require.NoError(t, err)
			gotVals, _, err := cqGot.LabelValues(ctx, "job", nil, labels.MustNewMatcher(labels.MatchRegexp, "job", ".+"))
			require.NoError(t, err)
			require.Equal(t, wantVals, gotVals)
		})
	}
}

// TestFanout_TooManyFailures checks that a read that lost more replicas than
// the budget fails instead of answering with possibly missing samples.
func TestFanout_TooManyFailures(t *testing.T) {
	got := newFanoutQueryable(t, map[int]bool{0: true, 2: true}, 1)
	ctx := tenant.With(context.Background(), tenantA)
	cq, err := got.ChunkQuerier(t0, t0+2*60*60_000)
	require.NoError(t, err)
	set := cq.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchRegexp, "job", ".+"))
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), ErrTooManyFailures)
	_, _, err = cq.LabelNames(ctx, nil)
	require.ErrorIs(t, err, ErrTooManyFailures)
	require.ErrorContains(t, err, "ingester a")
	require.ErrorContains(t, err, "ingester c")
}

// TestFanout_PartialResponse checks that a read that accepts a partial
// answer, by its request or its tenant's limit, answers what the remaining
// replica holds with a warning naming both failed ingesters, where a plain
// read fails with the unavailable error; and that with every replica down
// it fails all the same.
func TestFanout_PartialResponse(t *testing.T) {
	got := newFanoutQueryable(t, map[int]bool{0: true, 2: true}, 1)
	onlyB := &queryable{metrics: newMetrics(nil), src: startSource(t, &fakeSource{data: replicas(t)[1]})}
	matcher := labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")
	plain := tenant.With(context.Background(), tenantA)
	partial := context.WithValue(plain, partialKey{}, true)
	got.limits = newFakeLimits(t).set(tenantB, func(l *limits.Limits) { l.PartialResponse = true })
	byTenant := tenant.With(context.Background(), tenantB)
	refused := context.WithValue(byTenant, partialKey{}, false)

	want := func(ctx context.Context) []string {
		cq, err := onlyB.ChunkQuerier(t0, t0+2*60*60_000)
		require.NoError(t, err)
		s := seriesStrings(t, cq.Select(ctx, true, nil, matcher))
		require.NotEmpty(t, s)
		return s
	}
	cq, err := got.ChunkQuerier(t0, t0+2*60*60_000)
	require.NoError(t, err)
	for name, ctx := range map[string]context.Context{"request": partial, "tenant default": byTenant} {
		t.Run(name, func(t *testing.T) {
			set := cq.Select(ctx, true, nil, matcher)
			require.Equal(t, want(ctx), seriesStrings(t, set))
			require.NoError(t, set.Err())
			ws := set.Warnings().AsErrors()
			require.Len(t, ws, 1)
			require.ErrorIs(t, ws[0], ErrPartialResponse)
			require.ErrorContains(t, ws[0], "ingester a")
			require.ErrorContains(t, ws[0], "ingester c")
			names, ws2, err := cq.LabelNames(ctx, nil)
			require.NoError(t, err)
			require.NotEmpty(t, names)
			require.Len(t, ws2.AsErrors(), 1)
		})
	}
	for name, ctx := range map[string]context.Context{"plain": plain, "request refuses the tenant default": refused} {
		t.Run(name, func(t *testing.T) {
			set := cq.Select(ctx, true, nil, matcher)
			require.False(t, set.Next())
			require.ErrorIs(t, set.Err(), ErrTooManyFailures)
			id, ok := apierror.IDOf(set.Err())
			require.True(t, ok)
			require.Equal(t, apierror.QueryUnavailable, id)
		})
	}

	allDown := newFanoutQueryable(t, map[int]bool{0: true, 1: true, 2: true}, 1)
	cq, err = allDown.ChunkQuerier(t0, t0+2*60*60_000)
	require.NoError(t, err)
	set := cq.Select(partial, true, nil, matcher)
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), ErrTooManyFailures)
}

// TestFanout_PartialResponseReadSet checks the partial answer when the ring
// itself reports too many unhealthy instances: the plain read fails at once,
// the partial one reads the instances that can serve and names the others.
func TestFanout_PartialResponseReadSet(t *testing.T) {
	q := newFanoutQueryable(t, nil, 1)
	all := q.replicas.(fakeReadSet).instances
	q.replicas = unhealthyReadSet{instances: all[1:2], err: fmt.Errorf("read set: 2 unavailable (a, c), tolerate 1: %w", ring.ErrTooFewHealthy)}
	matcher := labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")
	plain := tenant.With(context.Background(), tenantA)
	cq, err := q.ChunkQuerier(t0, t0+2*60*60_000)
	require.NoError(t, err)
	set := cq.Select(plain, true, nil, matcher)
	require.False(t, set.Next())
	require.ErrorIs(t, set.Err(), ErrUnavailable)
	require.ErrorIs(t, set.Err(), ring.ErrTooFewHealthy)

	set = cq.Select(context.WithValue(plain, partialKey{}, true), true, nil, matcher)
	require.NotEmpty(t, seriesStrings(t, set))
	ws := set.Warnings().AsErrors()
	require.Len(t, ws, 1)
	require.ErrorContains(t, ws[0], "2 unavailable (a, c)")
}

type unhealthyReadSet struct {
	instances []ring.Instance
	err       error
}

func (u unhealthyReadSet) ReadSet() ([]ring.Instance, int, error) { return u.instances, 0, u.err }

// seriesStrings drains set into one string per series: labels and samples.
func seriesStrings(t *testing.T, set storage.ChunkSeriesSet) []string {
	t.Helper()
	var out []string
	for set.Next() {
		s := set.At()
		str := s.Labels().String()
		it := s.Iterator(nil)
		for it.Next() {
			m, err := it.At().Chunk.Iterator(nil), error(nil)
			require.NoError(t, err)
			for m.Next() != chunkenc.ValNone {
				ts, v := m.At()
				str += fmt.Sprintf(" %g@%d", v, ts)
			}
		}
		out = append(out, str)
	}
	require.NoError(t, set.Err())
	return out
}
