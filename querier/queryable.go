package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/slab"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// seriesSource is what the querier needs of a SeriesSource: the three client
// methods. arguspb.SeriesSourceClient satisfies it.
type seriesSource interface {
	Series(ctx context.Context, in *arguspb.SeriesRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[arguspb.SeriesResponse], error)
	LabelNames(ctx context.Context, in *arguspb.LabelNamesRequest, opts ...grpc.CallOption) (*arguspb.LabelNamesResponse, error)
	LabelValues(ctx context.Context, in *arguspb.LabelValuesRequest, opts ...grpc.CallOption) (*arguspb.LabelValuesResponse, error)
}

var _ seriesSource = arguspb.SeriesSourceClient(nil)

// queryable reads from one series source. It is safe for concurrent use and
// holds no per-query state; the queriers it returns are cheap and hold none
// either beyond their time range and, for reads whose context carries no
// request accounting (querylimits.go), their own.
type queryable struct {
	src     seriesSource
	metrics *metrics

	// With replicas set, reads fan out over the ring's read set instead of
	// src (fanout.go); sources gives each instance's series source, except
	// for the instance localID, which is local.
	replicas readSetter
	sources  SourceFactory
	local    LocalSource
	localID  string

	// limits gives each tenant's query limits; nil: unlimited.
	limits tenantLimits
	// lookback is the engine's lookback delta, which a selector may span
	// beyond -querier.max-query-length.
	lookback time.Duration
	// federation lets a context name several tenants (federation.go).
	federation bool
	// release returns to the OS the heap that a large query needed
	// (release.go).
	release heapReleaser
}

var _ storage.SampleAndChunkQueryable = (*queryable)(nil)

// Querier returns a sample querier over [mint, maxt] (Unix ms, inclusive). It
// decodes the chunks of ChunkQuerier, so both views always agree.
func (q *queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	cq, err := q.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return sampleQuerier{cq}, nil
}

// ChunkQuerier returns a chunk querier over [mint, maxt] (Unix ms, inclusive),
// a tenantQuerier.
func (q *queryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	b, err := q.backend(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &tenantQuerier{
		q: q, backend: b, mint: mint, maxt: maxt,
		own:       &requestLimits{limits: q.limits, metrics: q.metrics},
		allocated: q.release.queryStarted(),
	}, nil
}

// backend returns the reader of one tenant (the tenant of each call's
// context) over [mint, maxt]. With a read set (Deps.Replicas) it fans out to
// every ingester of the ring and merges their replicas (fanout.go); else it
// reads Deps.Source alone.
func (q *queryable) backend(mint, maxt int64) (storage.ChunkQuerier, error) {
	if q.replicas != nil {
		return newReplicatedQuerier(q, mint, maxt)
	}
	return &sourceQuerier{src: q.src, metrics: q.metrics, mint: mint, maxt: maxt}, nil
}

// tenantQuerier is the storage.ChunkQuerier that queryable hands out. Each
// call reads the tenant of its context and applies that tenant's query
// limits (querylimits.go) before reading through backend, or federates the
// read when the context names several tenants (federation.go). The limits
// count against the request's accounting in the context (withQueryLimits);
// a caller that brings none, such as an engine run outside Handler, gets
// the querier's own, so that the limits hold per querier, which the engine
// makes one of per query. It is safe for concurrent use.
type tenantQuerier struct {
	q          *queryable
	backend    storage.ChunkQuerier // over [mint, maxt]
	mint, maxt int64
	own        *requestLimits // used when the context carries none
	allocated  uint64         // the bytes the process had allocated when the querier was created
}

// tenantIDs returns the tenants that ctx names: one, or with federation
// enabled several, each valid. For one tenant named in a list (a|a) it
// also returns ctx with that tenant alone.
func (tq *tenantQuerier) tenantIDs(ctx context.Context) ([]string, context.Context, error) {
	orgID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("query series source: %w", err)
	}
	if !strings.Contains(orgID, tenant.Separator) {
		return []string{orgID}, ctx, nil
	}
	ids := tenant.IDs(orgID)
	if !tq.q.federation && len(ids) > 1 {
		return nil, nil, invalidTenantError(orgID, nil)
	}
	for _, id := range ids {
		if err := tenant.Validate(id); err != nil {
			return nil, nil, invalidTenantError(orgID, err)
		}
	}
	if len(ids) == 1 {
		ctx = tenant.With(ctx, ids[0])
	}
	return ids, ctx, nil
}

// budget returns the budget of tenant id in the accounting of ctx's request.
func (tq *tenantQuerier) budget(ctx context.Context, id string) *tenantBudget {
	r := requestLimitsFrom(ctx)
	if r == nil {
		r = tq.own
	}
	return r.budget(id)
}

// Select reads the series of the context's tenant (or tenants) that match
// matchers, within the tenant's query limits.
func (tq *tenantQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	ids, ctx, err := tq.tenantIDs(ctx)
	if err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	if len(ids) > 1 {
		fq, forwarded := tq.federated(ids, matchers)
		return fq.Select(ctx, true, hints, forwarded...)
	}
	return tq.selectTenant(ctx, ids[0], sortSeries, hints, matchers...)
}

// selectTenant is Select for tenant id, the tenant of ctx. A Select of the
// series API (hints.Func "series") or without hints is checked as a lookup
// (tenantBudget.lookupRange), any other as a selector of a PromQL query.
func (tq *tenantQuerier) selectTenant(ctx context.Context, id string, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	b := tq.budget(ctx, id)
	if err := b.failed(); err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	if hints == nil || hints.Func == "series" {
		start, end := tq.mint, tq.maxt
		if hints != nil {
			start, end = hints.Start, hints.End
		}
		mint, maxt, err := b.lookupRange(start, end, time.Now())
		if err != nil {
			return storage.ErrChunkSeriesSet(err)
		}
		if mint != start || maxt != end {
			clamped := storage.SelectHints{Start: mint, End: maxt}
			if hints != nil {
				clamped = *hints
				clamped.Start, clamped.End = mint, maxt
			}
			hints = &clamped
		}
	} else if err := b.checkSelector(hints.Start, hints.End, tq.q.lookback); err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	return tq.backend.Select(withBudget(ctx, b), sortSeries, hints, matchers...)
}

// LabelNames returns the sorted label names of the series of the context's
// tenant (or tenants) that match matchers.
func (tq *tenantQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ids, ctx, err := tq.tenantIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) > 1 {
		fq, forwarded := tq.federated(ids, matchers)
		names, ws, err := fq.LabelNames(ctx, hints, forwarded...)
		return names, ws, asAPIError(err)
	}
	return tq.labelNamesTenant(ctx, ids[0], hints, matchers...)
}

func (tq *tenantQuerier) labelNamesTenant(ctx context.Context, id string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	b, err := tq.lookupBackend(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return b.LabelNames(withBudget(ctx, tq.budget(ctx, id)), hints, matchers...)
}

// LabelValues returns the sorted values of label name over the series of
// the context's tenant (or tenants) that match matchers.
func (tq *tenantQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ids, ctx, err := tq.tenantIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) > 1 {
		fq, forwarded := tq.federated(ids, matchers)
		values, ws, err := fq.LabelValues(ctx, name, hints, forwarded...)
		return values, ws, asAPIError(err)
	}
	return tq.labelValuesTenant(ctx, ids[0], name, hints, matchers...)
}

func (tq *tenantQuerier) labelValuesTenant(ctx context.Context, id, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	b, err := tq.lookupBackend(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return b.LabelValues(withBudget(ctx, tq.budget(ctx, id)), name, hints, matchers...)
}

// lookupBackend checks the querier's range as a lookup of tenant id and
// returns the backend over the range to read: the querier's own, or a new
// one when an omitted start is clamped to the tenant's query length.
func (tq *tenantQuerier) lookupBackend(ctx context.Context, id string) (storage.ChunkQuerier, error) {
	b := tq.budget(ctx, id)
	if err := b.failed(); err != nil {
		return nil, err
	}
	mint, maxt, err := b.lookupRange(tq.mint, tq.maxt, time.Now())
	if err != nil {
		return nil, err
	}
	if mint == tq.mint && maxt == tq.maxt {
		return tq.backend, nil
	}
	return tq.q.backend(mint, maxt)
}

// Close closes the backend, and has the heap that a large query needed
// returned to the OS (release.go).
func (tq *tenantQuerier) Close() error {
	err := tq.backend.Close()
	tq.q.release.queryEnded(tq.allocated)
	return err
}

// sourceQuerier is a storage.ChunkQuerier over one series source. Each method
// makes one gRPC call with the tenant of its context and returns once the
// whole answer is received, so that several sourceQueriers run in parallel
// under a merge querier. Returned label strings and chunks are owned by the
// caller and stay valid after Close.
type sourceQuerier struct {
	src        seriesSource
	local      LocalSource // when set, read instead of src (local.go)
	metrics    *metrics
	mint, maxt int64
}

// Select fetches the series matching matchers. The time range is the hints'
// when given, else the querier's. A hints.Func of "series" (the series API)
// asks for no chunks. A hints.Limit stops the stream after that many series.
// Series come sorted by labels whatever sortSeries says: the protocol sends
// them sorted.
func (q *sourceQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	req := &arguspb.SeriesRequest{MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: toProtoMatchers(matchers)}
	limit := 0
	if hints != nil {
		req.MinTimeMs, req.MaxTimeMs = hints.Start, hints.End
		req.SkipChunks = hints.Func == "series"
		limit = hints.Limit
	}
	var (
		series *seriesList
		err    error
	)
	if q.local != nil {
		q.metrics.localReads.Inc()
		series, err = fetchLocal(ctx, q.local, req, limit)
	} else {
		series, err = fetchSeries(ctx, q.src, req, limit)
	}
	q.metrics.seriesFetched.Add(float64(series.len()))
	q.metrics.chunksFetched.Add(float64(series.chunks))
	if err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	return &chunkSeriesSet{series: series}
}

// LabelNames returns the sorted label names of the series matching matchers
// in the querier's time range, at most hints.Limit of them when set.
func (q *sourceQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, nil, err
	}
	req := &arguspb.LabelNamesRequest{
		MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: toProtoMatchers(matchers), Limit: labelLimit(hints),
	}
	var resp *arguspb.LabelNamesResponse
	if q.local != nil {
		q.metrics.localReads.Inc()
		resp, err = q.local.LabelNames(ctx, req)
	} else {
		resp, err = q.src.LabelNames(ctx, req)
	}
	if err != nil {
		return nil, nil, fromGRPC(ctx, "label names", err)
	}
	return resp.GetNames(), nil, nil
}

// LabelValues returns the sorted values of label name over the series
// matching matchers in the querier's time range, at most hints.Limit of them
// when set.
func (q *sourceQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, nil, err
	}
	req := &arguspb.LabelValuesRequest{
		Name: name, MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: toProtoMatchers(matchers), Limit: labelLimit(hints),
	}
	var resp *arguspb.LabelValuesResponse
	if q.local != nil {
		q.metrics.localReads.Inc()
		resp, err = q.local.LabelValues(ctx, req)
	} else {
		resp, err = q.src.LabelValues(ctx, req)
	}
	if err != nil {
		return nil, nil, fromGRPC(ctx, "label values", err)
	}
	return resp.GetValues(), nil, nil
}

// Close does nothing: a sourceQuerier holds no resources between calls.
func (*sourceQuerier) Close() error { return nil }

// outgoing returns ctx with its tenant attached as gRPC metadata.
func outgoing(ctx context.Context) (context.Context, error) {
	t, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("query series source: %w", err)
	}
	return tenant.OutgoingContext(ctx, t), nil
}

func labelLimit(hints *storage.LabelHints) int64 {
	if hints == nil {
		return 0
	}
	return int64(hints.Limit)
}

// fetchedSeries is one series as received, its chunks decoded into
// chunkenc.Chunks that share the received bytes. A *fetchedSeries is a
// storage.ChunkSeries (iterator.go).
type fetchedSeries struct {
	labels labels.Labels
	chunks []chunks.Meta // ordered by time, not overlapping
}

// seriesList is the fetched series of one call, in order, held in blocks
// that never move: a fetch of a million series allocates their size once,
// where an appended slice would allocate and copy about four times as much.
type seriesList struct {
	blocks [][]fetchedSeries
	n      int
	chunks int // of all the series
}

// seriesListMaxBlock caps a block, in series.
const seriesListMaxBlock = 1 << 16

func (l *seriesList) add(fs fetchedSeries) {
	k := len(l.blocks) - 1
	if k < 0 || len(l.blocks[k]) == cap(l.blocks[k]) {
		size := carveBlock
		if k >= 0 {
			size = min(2*cap(l.blocks[k]), seriesListMaxBlock)
		}
		l.blocks = append(l.blocks, make([]fetchedSeries, 0, size))
		k++
	}
	l.blocks[k] = append(l.blocks[k], fs)
	l.n++
	l.chunks += len(fs.chunks)
}

// len is the number of series in l.
func (l *seriesList) len() int { return l.n }

// last is the last series added; l must not be empty.
func (l *seriesList) last() *fetchedSeries {
	b := l.blocks[len(l.blocks)-1]
	return &b[len(b)-1]
}

// slice returns the series in one slice, for tests.
func (l *seriesList) slice() []fetchedSeries {
	var out []fetchedSeries
	for _, b := range l.blocks {
		out = append(out, b...)
	}
	return out
}

// fetchSeries makes one Series call and receives the whole stream, or its
// first limit series when limit > 0 (then the rest of the stream is
// canceled). It checks the protocol's guarantees that merging and sample
// iteration rely on (see seriesDecoder): series strictly sorted by labels,
// and XOR chunks ordered by time and not overlapping. It counts every series
// against the query limits of the budget in ctx, if any, and cancels the
// stream at the first limit exceeded. On error it returns the series
// received so far, for accounting only.
func fetchSeries(ctx context.Context, src seriesSource, req *arguspb.SeriesRequest, limit int) (*seriesList, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // Ends the stream early when limit is reached or on error.
	ctx, err := outgoing(ctx)
	if err != nil {
		return &seriesList{}, err
	}
	stream, err := src.Series(ctx, req, grpc.ForceCodecV2(seriesCodec{}))
	if err != nil {
		return &seriesList{}, fromGRPC(ctx, "series", err)
	}
	d := seriesDecoder{limit: limit, budget: budgetFrom(ctx)}
	for !d.full() {
		err := stream.RecvMsg(&d) // seriesCodec decodes into d.
		if d.err != nil {
			return &d.series, d.err
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &d.series, fromGRPC(ctx, "series", err)
		}
	}
	return &d.series, nil
}

func toProtoMatchers(ms []*labels.Matcher) []*arguspb.LabelMatcher {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*arguspb.LabelMatcher, 0, len(ms))
	for _, m := range ms {
		pm := &arguspb.LabelMatcher{Name: m.Name, Value: m.Value}
		switch m.Type {
		case labels.MatchEqual:
			pm.Type = arguspb.LabelMatcher_EQ
		case labels.MatchNotEqual:
			pm.Type = arguspb.LabelMatcher_NEQ
		case labels.MatchRegexp:
			pm.Type = arguspb.LabelMatcher_RE
		case labels.MatchNotRegexp:
			pm.Type = arguspb.LabelMatcher_NRE
		}
		out = append(out, pm)
	}
	return out
}

// chunkSeriesSet iterates fetched series in order.
type chunkSeriesSet struct {
	series *seriesList
	block  int // index of the current series' block
	cur    int // index+1 of the current series in its block; 0 before the first Next
}

func (s *chunkSeriesSet) Next() bool {
	for s.block < len(s.series.blocks) {
		if s.cur < len(s.series.blocks[s.block]) {
			s.cur++
			return true
		}
		s.block, s.cur = s.block+1, 0
	}
	return false
}

func (s *chunkSeriesSet) At() storage.ChunkSeries { return &s.series.blocks[s.block][s.cur-1] }

func (*chunkSeriesSet) Err() error                        { return nil }
func (*chunkSeriesSet) Warnings() annotations.Annotations { return nil }

// sampleQuerier is the sample view of a chunk querier: Select decodes the
// chunks of each series; labels come straight from the chunk querier.
type sampleQuerier struct {
	storage.ChunkQuerier
}

func (q sampleQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	return &seriesSet{chunked: q.ChunkQuerier.Select(ctx, sortSeries, hints, matchers...)}
}

// seriesSet is the sample view of a ChunkSeriesSet: each series iterates the
// samples of its chunks one chunk after the other (sampleIterator). Unlike
// storage.NewSeriesSetFromChunkSeriesSet it keeps series that have no chunks
// (the series API asks for none), and it allocates its series in blocks.
type seriesSet struct {
	chunked storage.ChunkSeriesSet
	block   []sampleSeries // the series handed out are never reused
	cur     *sampleSeries
}

func (s *seriesSet) Next() bool {
	if !s.chunked.Next() {
		return false
	}
	s.cur = &slab.Take(&s.block, 1, carveBlock)[0]
	s.cur.ChunkSeries = s.chunked.At()
	return true
}

func (s *seriesSet) At() storage.Series                { return s.cur }
func (s *seriesSet) Err() error                        { return s.chunked.Err() }
func (s *seriesSet) Warnings() annotations.Annotations { return s.chunked.Warnings() }
