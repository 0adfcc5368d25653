package querier

import (
	"context"
	"errors"
	"fmt"
	"io"

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
// either beyond their time range.
type queryable struct {
	src     seriesSource
	metrics *metrics

	// With replicas set, reads fan out over the ring's read set instead of
	// src (fanout.go); sources gives each instance's series source.
	replicas readSetter
	sources  SourceFactory
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

// ChunkQuerier returns a chunk querier over [mint, maxt] (Unix ms, inclusive).
//
// With a read set (Deps.Replicas) it fans out to every ingester of the ring
// and merges their replicas (fanout.go); else it reads Deps.Source alone.
func (q *queryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	if q.replicas != nil {
		return newReplicatedQuerier(q, mint, maxt)
	}
	return &sourceQuerier{src: q.src, metrics: q.metrics, mint: mint, maxt: maxt}, nil
}

// sourceQuerier is a storage.ChunkQuerier over one series source. Each method
// makes one gRPC call with the tenant of its context and returns once the
// whole answer is received, so that several sourceQueriers run in parallel
// under a merge querier. Returned label strings and chunks are owned by the
// caller and stay valid after Close.
type sourceQuerier struct {
	src        seriesSource
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
	series, err := fetchSeries(ctx, q.src, req, limit)
	nChunks := 0
	for _, s := range series {
		nChunks += len(s.chunks)
	}
	q.metrics.seriesFetched.Add(float64(len(series)))
	q.metrics.chunksFetched.Add(float64(nChunks))
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
	resp, err := q.src.LabelNames(ctx, &arguspb.LabelNamesRequest{
		MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: toProtoMatchers(matchers), Limit: labelLimit(hints),
	})
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
	resp, err := q.src.LabelValues(ctx, &arguspb.LabelValuesRequest{
		Name: name, MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: toProtoMatchers(matchers), Limit: labelLimit(hints),
	})
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

// fetchSeries makes one Series call and receives the whole stream, or its
// first limit series when limit > 0 (then the rest of the stream is
// canceled). It checks the protocol's guarantees that merging and sample
// iteration rely on (see seriesDecoder): series strictly sorted by labels,
// and XOR chunks ordered by time and not overlapping. On error it returns the
// series received so far, for accounting only.
func fetchSeries(ctx context.Context, src seriesSource, req *arguspb.SeriesRequest, limit int) ([]fetchedSeries, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // Ends the stream early when limit is reached or on error.
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, err
	}
	stream, err := src.Series(ctx, req, grpc.ForceCodecV2(seriesCodec{}))
	if err != nil {
		return nil, fromGRPC(ctx, "series", err)
	}
	d := seriesDecoder{limit: limit}
	for !d.full() {
		err := stream.RecvMsg(&d) // seriesCodec decodes into d.
		if d.err != nil {
			return d.series, d.err
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d.series, fromGRPC(ctx, "series", err)
		}
	}
	return d.series, nil
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
	series []fetchedSeries
	cur    int // index+1 of the current series; 0 before the first Next
}

func (s *chunkSeriesSet) Next() bool {
	if s.cur >= len(s.series) {
		return false
	}
	s.cur++
	return true
}

func (s *chunkSeriesSet) At() storage.ChunkSeries { return &s.series[s.cur-1] }

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
