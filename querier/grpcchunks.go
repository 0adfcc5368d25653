package querier

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// Chunks streams the raw chunks of the series that the request's selectors
// match in [start, end], sorted by labels, as the querier's chunk view gives
// them (replicas merged, several selectors merged), in frames of about
// frameBytes. It is one query for the tenant's limits: its fetched series
// and chunks count against -querier.max-fetched-series-per-query and
// -querier.max-fetched-chunks-per-query, its range against
// -querier.max-query-length, and it runs until the tenant's
// -querier.timeout.
func (s *QueryServer) Chunks(req *argusquerypb.ChunksRequest, stream grpc.ServerStreamingServer[argusquerypb.ChunksResponse]) error {
	if len(req.GetMatchers()) == 0 {
		return status.Error(codes.InvalidArgument, "no match[] parameter provided")
	}
	if req.GetEndMs() < req.GetStartMs() {
		return status.Error(codes.InvalidArgument, "end timestamp must not be before start time")
	}
	if _, err := tenant.FromContext(stream.Context()); err != nil {
		return chunksError(stream.Context(), err)
	}
	ctx, done := limitQuery(stream.Context(), s.q.queryable.limits, s.q.queryable.metrics)
	defer done()
	cq, err := s.q.queryable.ChunkQuerier(req.GetStartMs(), req.GetEndMs())
	if err != nil {
		return chunksError(ctx, err)
	}
	defer cq.Close()
	sets := make([]storage.ChunkSeriesSet, 0, len(req.GetMatchers()))
	for _, m := range req.GetMatchers() {
		ms, err := selectorParser.ParseMetricSelector(m)
		if err != nil {
			return status.Error(codes.InvalidArgument, fmt.Sprintf("invalid parameter \"match[]\": %v", err))
		}
		// No hints: the range is the querier's, checked as a lookup
		// against -querier.max-query-length, and chunks are fetched.
		sets = append(sets, cq.Select(ctx, true, nil, ms...))
	}
	set := sets[0]
	if len(sets) > 1 {
		set = storage.NewMergeChunkSeriesSet(sets, 0, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge))
	}
	if err := sendChunks(set, stream.Send); err != nil {
		return chunksError(ctx, err)
	}
	return nil
}

// sendChunks sends the series of set with their chunks in frames; a series
// is never split.
func sendChunks(set storage.ChunkSeriesSet, send func(*argusquerypb.ChunksResponse) error) error {
	frame, size := &argusquerypb.ChunksResponse{}, 0
	for set.Next() {
		cs := set.At()
		out := &argusquerypb.ChunkedSeries{Labels: protoLabels(cs.Labels(), nil)}
		size += seriesBytes + int(cs.Labels().ByteSize())
		chunks := cs.Iterator(nil)
		for chunks.Next() {
			meta := chunks.At()
			data := meta.Chunk.Bytes()
			out.Chunks = append(out.Chunks, &argusquerypb.Chunk{
				MinTimeMs: meta.MinTime, MaxTimeMs: meta.MaxTime,
				Encoding: argusquerypb.Chunk_Encoding(meta.Chunk.Encoding()),
				Data:     append([]byte(nil), data...), // The chunk's memory is the querier's.
			})
			size += len(data) + 24
		}
		if err := chunks.Err(); err != nil {
			return err
		}
		frame.Series = append(frame.Series, out)
		if size >= frameBytes {
			if err := send(frame); err != nil {
				return err
			}
			frame, size = &argusquerypb.ChunksResponse{}, 0
		}
	}
	if err := set.Err(); err != nil {
		return err
	}
	for _, w := range set.Warnings() {
		frame.Warnings = append(frame.Warnings, w.Error())
	}
	return send(frame)
}

// chunksError is the gRPC status of a failed Chunks call: an API error
// (a query limit, the tenant's timeout, too few ingesters), also as the
// cause of the call's ended context, with its ID's code and text, as the
// HTTP API would answer it; a source error by kind; a stream error (the
// client went away) as it is.
func chunksError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if _, ok := apierror.IDOf(context.Cause(ctx)); ok {
			err = context.Cause(ctx)
		}
	}
	if e, ok := errors.AsType[*apierror.Error](err); ok {
		return status.Error(e.ID.GRPCCode(), e.Error())
	}
	switch {
	case errors.Is(err, tenant.ErrNoTenant):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}
