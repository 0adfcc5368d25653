package querier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// readSetter is what reads need from the ring: every instance that may hold
// a tenant's data and how many of them a read may lose and still see every
// sample a write quorum acknowledged (counted in zones when the instances
// have zones). *ring.KV and *ring.Static satisfy it.
type readSetter interface {
	ReadSet() (instances []ring.Instance, maxFailures int, err error)
}

// SourceFactory gives the series source of one ingester address. It must be
// safe for concurrent use and cache its connections.
type SourceFactory func(addr string) (arguspb.SeriesSourceClient, error)

// ErrTooManyFailures means more ingesters failed a read than the
// replication factor tolerates: the answer could miss acknowledged samples.
var ErrTooManyFailures = errors.New("too many ingesters failed")

// replicatedQuerier fans a read out to every instance of the read set, in
// parallel, and merges what they answer: the same series from several
// replicas becomes one, its chunks merged by Prometheus's compacting merger
// (identical timestamps de-duplicated, gaps in one replica filled from
// another). Up to maxFailures instances (zones, with zones) may fail; their
// errors are then dropped, as the others hold a quorum of every series.
//
// When the ring itself has too many unhealthy instances, the error is kept
// in readSetErr and returned by each read, which then knows whether it
// accepts a partial answer (partial.go) from the instances that can serve.
type replicatedQuerier struct {
	sources     []*sourceQuerier
	instances   []ring.Instance
	maxFailures int
	readSetErr  error
}

func newReplicatedQuerier(q *queryable, mint, maxt int64) (*replicatedQuerier, error) {
	instances, maxFailures, err := q.replicas.ReadSet()
	if err != nil && len(instances) == 0 {
		return nil, unavailableError(context.Background(), fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	rq := &replicatedQuerier{instances: instances, maxFailures: maxFailures, readSetErr: err}
	for _, inst := range instances {
		if q.local != nil && inst.ID == q.localID {
			rq.sources = append(rq.sources, &sourceQuerier{local: q.local, metrics: q.metrics, mint: mint, maxt: maxt})
			continue
		}
		src, err := q.sources(inst.Addr)
		if err != nil {
			return nil, unavailableError(context.Background(), fmt.Errorf("%w: ingester %s: %w", ErrUnavailable, inst.Addr, err))
		}
		rq.sources = append(rq.sources, &sourceQuerier{src: src, metrics: q.metrics, mint: mint, maxt: maxt})
	}
	return rq, nil
}

// fanOut runs f on every source in parallel and returns the indexes of the
// sources that succeeded, or an error if the failures exceed the budget;
// unless the read accepts a partial answer (partialAllowed) and some source
// succeeded: the failures are then a warning (ErrPartialResponse) that names
// every ingester the answer lacks, and the error is nil.
//
// An error that fails the query rather than one ingester is not counted as
// a failure: an error with an API ID (a query limit, the tenant's timeout)
// cancels the other calls at once, with itself as the cause, and is
// returned; so is why ctx ended, if it did while a call failed.
func (rq *replicatedQuerier) fanOut(ctx context.Context, f func(ctx context.Context, i int, s *sourceQuerier) error) ([]int, annotations.Annotations, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, len(rq.sources))
	var wg sync.WaitGroup
	for i, s := range rq.sources {
		wg.Go(func() {
			errs[i] = f(ctx, i, s)
			if _, fatal := apierror.IDOf(errs[i]); fatal {
				cancel(errs[i])
			}
		})
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return nil, nil, cause
	}
	var (
		ok     []int
		failed []error
		zones  = map[string]bool{}
	)
	for i, err := range errs {
		if err == nil {
			ok = append(ok, i)
			continue
		}
		failed = append(failed, fmt.Errorf("ingester %s: %w", rq.instances[i].Addr, err))
		zones[rq.instances[i].Zone] = true
	}
	lost := len(failed)
	if zoned(rq.instances) {
		lost = len(zones)
	}
	var err error
	switch {
	case lost > rq.maxFailures:
		err = fmt.Errorf("%w (%d, at most %d tolerated): %w", ErrTooManyFailures, lost, rq.maxFailures, errors.Join(failed...))
		if rq.readSetErr != nil {
			err = fmt.Errorf("%w; %w", rq.readSetErr, err)
		}
	case rq.readSetErr != nil:
		err = fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(append([]error{rq.readSetErr}, failed...)...))
	default:
		return ok, nil, nil
	}
	if len(ok) == 0 || !partialAllowed(ctx) {
		return nil, nil, unavailableError(ctx, err)
	}
	var ws annotations.Annotations
	ws.Add(fmt.Errorf("%w: the answer lacks the series of unavailable ingesters: %w", ErrPartialResponse, err))
	return ok, ws, nil
}

func zoned(instances []ring.Instance) bool {
	for _, inst := range instances {
		if inst.Zone != "" {
			return true
		}
	}
	return false
}

// Select merges the series of every answering instance.
func (rq *replicatedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	sets := make([]storage.ChunkSeriesSet, len(rq.sources))
	ok, ws, err := rq.fanOut(ctx, func(ctx context.Context, i int, s *sourceQuerier) error {
		set := s.Select(ctx, sortSeries, hints, matchers...)
		if _, fetched := set.(*chunkSeriesSet); !fetched {
			set.Next()
			return set.Err()
		}
		sets[i] = set
		return nil
	})
	if err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	answered := make([]storage.ChunkSeriesSet, 0, len(ok))
	for _, i := range ok {
		answered = append(answered, sets[i])
	}
	var merged storage.ChunkSeriesSet
	if len(answered) == 1 {
		merged = answered[0]
	} else {
		limit := 0
		if hints != nil {
			limit = hints.Limit
		}
		merged = storage.NewMergeChunkSeriesSet(answered, limit, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge))
	}
	if len(ws) > 0 {
		return warnedSeriesSet{ChunkSeriesSet: merged, warnings: ws}
	}
	return merged
}

// LabelNames returns the sorted union of the answering instances' names.
func (rq *replicatedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return rq.unionStrings(ctx, hints, func(ctx context.Context, s *sourceQuerier) ([]string, annotations.Annotations, error) {
		return s.LabelNames(ctx, hints, matchers...)
	})
}

// LabelValues returns the sorted union of the answering instances' values.
func (rq *replicatedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return rq.unionStrings(ctx, hints, func(ctx context.Context, s *sourceQuerier) ([]string, annotations.Annotations, error) {
		return s.LabelValues(ctx, name, hints, matchers...)
	})
}

func (rq *replicatedQuerier) unionStrings(ctx context.Context, hints *storage.LabelHints, f func(ctx context.Context, s *sourceQuerier) ([]string, annotations.Annotations, error)) ([]string, annotations.Annotations, error) {
	results := make([][]string, len(rq.sources))
	ok, ws, err := rq.fanOut(ctx, func(ctx context.Context, i int, s *sourceQuerier) error {
		var err error
		results[i], _, err = f(ctx, s)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var all []string
	if len(ok) == 1 {
		all = results[ok[0]] // Sorted and unique already: an all-in-one's answer.
	} else {
		for _, i := range ok {
			all = append(all, results[i]...)
		}
		slices.Sort(all)
		all = slices.Compact(all)
	}
	if limit := labelLimit(hints); limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	return all, ws, nil
}

// Close does nothing: the sources hold no per-query resources.
func (*replicatedQuerier) Close() error { return nil }
