package ingester

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// atomicClock is a clock the test advances while other goroutines read it.
type atomicClock struct{ ms atomic.Int64 }

func (c *atomicClock) now() time.Time { return time.UnixMilli(c.ms.Load()) }

// TestConcurrentPushQueryFlush pushes from several goroutines to the same
// tenant (each to its own series, and all to one shared series, where some
// samples lose the race and are rejected as out of order) while others
// query, flush, cut idle chunks, garbage-collect series and truncate the WAL
// with a clock that jumps past -ingester.max-chunk-idle. Then the head, and
// a restart from a crash, hold exactly the acknowledged samples.
func TestConcurrentPushQueryFlush(t *testing.T) {
	const (
		rounds    = 200
		ownSeries = 10
	)
	clock := &atomicClock{}
	clock.ms.Store(1_000_000)
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = 2 * walPageSize
	ing := startIngester(t, cfg, withClock)

	var (
		mu    sync.Mutex
		acked = map[string][]sample{}
	)
	ack := func(k string, s sample) {
		mu.Lock()
		acked[k] = append(acked[k], s)
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	background, bctx := errgroup.WithContext(ctx)
	for range 2 {
		background.Go(func() error { return queryLoop(bctx, ing) })
	}
	background.Go(func() error {
		for bctx.Err() == nil {
			clock.ms.Add(cfg.MaxChunkIdle.Milliseconds() / 2)
			if err := ing.truncateWAL(bctx); err != nil && bctx.Err() == nil {
				return err
			}
		}
		return nil
	})

	var writersGroup errgroup.Group
	for w := range concurrentWriters {
		writersGroup.Go(func() error { return pushRounds(ing, w, rounds, ownSeries, ack) })
	}
	require.NoError(t, writersGroup.Wait())
	cancel()
	require.NoError(t, background.Wait())

	for _, s := range acked {
		slices.SortFunc(s, func(a, b sample) int { return int(a.t - b.t) })
	}
	require.NotEmpty(t, acked[lstr(sharedSeries...)])
	requireSamples(t, acked, queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))
	ing2 := restart(t, ing, withClock)
	requireSamples(t, acked, queryAll(t, ing2, "t1", math.MinInt64, math.MaxInt64))
	t.Logf("series removed by gc: %v, chunks persisted: %v, wal truncations: %v",
		testutil.ToFloat64(ing.metrics.seriesGCed), testutil.ToFloat64(ing.metrics.chunksPersisted),
		testutil.ToFloat64(ing.metrics.walTruncations.WithLabelValues(truncateOutcomeOK)))
}

// concurrentWriters is the number of pushing goroutines of
// TestConcurrentPushQueryFlush.
const concurrentWriters = 4

// sharedSeries is pushed to by every writer of TestConcurrentPushQueryFlush.
var sharedSeries = []string{"__name__", "shared"}

// pushRounds pushes rounds requests as writer w: one sample to each of its
// own series, and one to the shared series at a timestamp that interleaves
// with the other writers'. It calls ack for every acknowledged sample.
func pushRounds(ing *Ingester, w, rounds, ownSeries int, ack func(string, sample)) error {
	for r := range rounds {
		var tss []*arguspb.TimeSeries
		for n := range ownSeries {
			tss = append(tss, ts(ownLabels(w, n), sample{int64(r) * 1000, float64(r)}))
		}
		sh := sample{int64(r*concurrentWriters + w), float64(w)}
		tss = append(tss, ts(sharedSeries, sh))
		resp, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: tss})
		if err != nil {
			return err
		}
		for _, rej := range resp.Rejected {
			if labelsString(rej.Labels) != lstr(sharedSeries...) || rej.Reason != arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER {
				return fmt.Errorf("unexpected rejection: %v", rej)
			}
		}
		for n := range ownSeries {
			ack(lstr(ownLabels(w, n)...), sample{int64(r) * 1000, float64(r)})
		}
		if resp.RejectedSamples == 0 {
			ack(lstr(sharedSeries...), sh)
		}
	}
	return nil
}

func ownLabels(w, n int) []string {
	return []string{"__name__", "own", "n", fmt.Sprint(n), "w", fmt.Sprint(w)}
}

// queryLoop runs Series and LabelValues until ctx is done, checking that
// series come sorted with ordered, non-overlapping chunks.
func queryLoop(ctx context.Context, ing *Ingester) error {
	for ctx.Err() == nil {
		st := &seriesStream{ctx: tenantCtx("t1")}
		err := ing.Series(&arguspb.SeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64,
			Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: ".+"}}}, st)
		if err != nil {
			return err
		}
		if err := checkStream(st.msgs); err != nil {
			return err
		}
		if _, err := ing.LabelValues(tenantCtx("t1"), &arguspb.LabelValuesRequest{Name: "n", MaxTimeMs: math.MaxInt64}); err != nil {
			return err
		}
	}
	return nil
}

func checkStream(msgs []*arguspb.SeriesResponse) error {
	var prev labels.Labels
	first := true
	for _, m := range msgs {
		for _, s := range m.Series {
			b := labels.NewScratchBuilder(len(s.Labels))
			for _, l := range s.Labels {
				b.Add(l.Name, l.Value)
			}
			lset := b.Labels()
			if !first && labels.Compare(prev, lset) >= 0 {
				return fmt.Errorf("series %s after %s", lset, prev)
			}
			first, prev = false, lset
			if len(s.Chunks) == 0 {
				return errors.New("series without chunks")
			}
			for k := 1; k < len(s.Chunks); k++ {
				if s.Chunks[k].MinTimeMs <= s.Chunks[k-1].MaxTimeMs {
					return fmt.Errorf("overlapping chunks in %s", lset)
				}
			}
		}
	}
	return nil
}
