package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// Chunk is one chunk of raw samples in a Prometheus encoding, covering
// [MinT, MaxT] (Unix ms).
type Chunk struct {
	MinT, MaxT int64
	Chunk      chunkenc.Chunk
}

// ChunkSeries is a series with its raw chunks, in time order.
type ChunkSeries struct {
	Labels labels.Labels
	Chunks []Chunk
}

// Chunks streams the raw chunks of the series that the selectors match in
// [start, end], sorted by labels, to each as they arrive; the series are
// each's to keep. It returns the warnings. The tenant's query limits apply
// (its fetched series and chunks, its query length and timeout).
func (c *Client) Chunks(ctx context.Context, matchers []string, start, end time.Time, each func(ChunkSeries) error) ([]string, error) {
	ctx, cancel := context.WithCancel(c.Context(ctx))
	defer cancel()
	stream, err := c.api.Chunks(ctx, &argusquerypb.ChunksRequest{Matchers: matchers, StartMs: millis(start), EndMs: millis(end)})
	if err != nil {
		return nil, asError(err)
	}
	var warnings []string
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return warnings, nil
		}
		if err != nil {
			return nil, asError(err)
		}
		for _, s := range f.GetSeries() {
			cs, err := fromProtoChunkSeries(s)
			if err != nil {
				return nil, err
			}
			if err := each(cs); err != nil {
				return nil, err
			}
		}
		warnings = append(warnings, f.GetWarnings()...)
	}
}

func fromProtoChunkSeries(s *argusquerypb.ChunkedSeries) (ChunkSeries, error) {
	out := ChunkSeries{Labels: fromProtoLabels(s.GetLabels()), Chunks: make([]Chunk, 0, len(s.GetChunks()))}
	for _, ch := range s.GetChunks() {
		chk, err := chunkenc.FromData(chunkenc.Encoding(ch.GetEncoding()), ch.GetData())
		if err != nil {
			return ChunkSeries{}, fmt.Errorf("chunk of %s: %w", out.Labels, err)
		}
		out.Chunks = append(out.Chunks, Chunk{MinT: ch.GetMinTimeMs(), MaxT: ch.GetMaxTimeMs(), Chunk: chk})
	}
	return out, nil
}
