package querier

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// LocalSource is an ingester in the querier's own process (-target=all),
// read through Go calls rather than gRPC: its series reach the querier
// without being encoded, sent through HTTP/2 and decoded, and their labels
// and finished chunks are the ingester's own, shared rather than copied.
// The answers are the same as over gRPC, errors included (gRPC statuses).
// *ingester.Ingester satisfies it.
type LocalSource interface {
	// SelectSeries calls visit with each series that the Series call of
	// req would stream, in the same order and with the same chunks. lset
	// and chks are the caller's to keep; the data they point to never
	// changes. An error of visit ends the call and is returned as is.
	SelectSeries(ctx context.Context, req *arguspb.SeriesRequest, visit func(lset labels.Labels, chks []chunks.Meta) error) error
	LabelNames(ctx context.Context, req *arguspb.LabelNamesRequest) (*arguspb.LabelNamesResponse, error)
	LabelValues(ctx context.Context, req *arguspb.LabelValuesRequest) (*arguspb.LabelValuesResponse, error)
}

// errEnoughSeries ends a local read that has its limit of series.
var errEnoughSeries = errors.New("enough series")

// localCheckCtxEvery is how many series a local read takes between checks
// of its context: a gRPC stream ends as soon as its context does.
const localCheckCtxEvery = 1024

// fetchLocal is fetchSeries over a LocalSource: the same checks of the
// protocol and the same accounting against the query limits, series by
// series as they come.
func fetchLocal(ctx context.Context, src LocalSource, req *arguspb.SeriesRequest, limit int) (*seriesList, error) {
	if _, err := outgoing(ctx); err != nil { // No tenant.
		return &seriesList{}, err
	}
	if ctx.Err() != nil { // As a gRPC call would not start.
		return &seriesList{}, contextError(ctx, "series")
	}
	d := seriesDecoder{limit: limit, budget: budgetFrom(ctx)}
	err := src.SelectSeries(ctx, req, func(lset labels.Labels, chks []chunks.Meta) error {
		if err := d.addLocal(lset, chks); err != nil {
			d.err = err
			return err
		}
		if d.full() {
			return errEnoughSeries
		}
		if d.series.len()%localCheckCtxEvery == 0 {
			return ctx.Err()
		}
		return nil
	})
	switch {
	case d.err != nil:
		return &d.series, d.err
	case errors.Is(err, errEnoughSeries):
		return &d.series, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &d.series, contextError(ctx, "series")
	case err != nil:
		return &d.series, fromGRPC(ctx, "series", err)
	}
	return &d.series, nil
}

// addLocal checks and keeps one series of a local read, as decodeSeries
// keeps one received.
func (d *seriesDecoder) addLocal(lset labels.Labels, chks []chunks.Meta) error {
	if err := d.checkOrder(lset); err != nil {
		return err
	}
	for i, m := range chks {
		enc := wireEncoding(m.Chunk.Encoding())
		prevMaxT := int64(0)
		if i > 0 {
			prevMaxT = chks[i-1].MaxTime
		}
		if err := checkChunk(lset, enc, localChunkLen(m.Chunk), m.MinTime, m.MaxTime, i > 0, prevMaxT); err != nil {
			return err
		}
	}
	if err := d.count(lset, len(chks)); err != nil {
		return err
	}
	d.series.add(fetchedSeries{labels: lset, chunks: chks})
	return nil
}

// localChunkLen is the length of a local chunk's data for checkChunk:
// a chunk kept in its stored form (storage.TranscodedChunk) would rebuild
// its XOR bytes on each Bytes call.
func localChunkLen(c chunkenc.Chunk) int {
	if s, ok := c.(interface{ StoredLen() int }); ok {
		return s.StoredLen()
	}
	return len(c.Bytes())
}
