package querier

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
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
