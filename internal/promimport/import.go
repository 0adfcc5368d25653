package promimport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/storage"
)

// Sink receives the imported chunks. storage.DB implements it: Append
// writes the chunks of every series of batch, each into the partition of
// its time range, and returns once they are durable.
type Sink interface {
	Append(tenant string, batch []storage.Series) error
}

// Options tune an Import.
type Options struct {
	// Tenant receives the data.
	Tenant string
	// PartitionRange is the store's partition range: no chunk handed to
	// the sink crosses a multiple of it. Zero means 2h, the store's default.
	PartitionRange time.Duration
	// BatchChunks is about how many chunks go to the sink in one Append;
	// zero means defaultBatchChunks.
	BatchChunks int
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// defaultBatchChunks bounds the memory of a batch (about 200 bytes a chunk)
// while keeping the number of durable writes small.
const defaultBatchChunks = 50_000

// maxSamplesPerChunk is where a re-encoded chunk is cut, as Prometheus's
// head cuts its chunks.
const maxSamplesPerChunk = 120

// Stats counts what an Import did.
type Stats struct {
	Blocks int
	// Series are the series with at least one imported chunk.
	Series, Chunks, Samples int64
	// SplitChunks are source chunks that crossed a partition boundary and
	// were re-encoded into one chunk per partition; ReencodedChunks are
	// float chunks of another encoding than XOR, re-encoded into XOR.
	SplitChunks, ReencodedChunks int64
	// HistogramChunks and HistogramSamples were skipped: native histograms
	// are not in the data model.
	HistogramChunks, HistogramSamples int64
	// MinTime and MaxTime bound the imported samples (Unix ms, inclusive);
	// both are zero when nothing was imported.
	MinTime, MaxTime int64
}

// Import reads blocks (from FindBlocks), merged as Prometheus's compactor
// merges them, and appends their float chunks to opts.Tenant in sink, in
// batches, in series label order. It does not check what the tenant holds
// already: a series whose chunks are not newer than those stored makes the
// sink fail (storage.ErrOutOfOrderChunk), and the batches appended before
// stay. It blocks until done or ctx is cancelled; the blocks are open only
// during the call.
func Import(ctx context.Context, sink Sink, blocks []Block, opts Options) (Stats, error) {
	if opts.PartitionRange <= 0 {
		opts.PartitionRange = 2 * time.Hour
	}
	if opts.BatchChunks <= 0 {
		opts.BatchChunks = defaultBatchChunks
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	q, closeBlocks, err := openBlocks(blocks)
	if err != nil {
		return Stats{}, err
	}
	defer closeBlocks()
	defer q.Close()

	w := &writer{
		sink: sink, tenant: opts.Tenant, rangeMs: opts.PartitionRange.Milliseconds(),
		batchChunks: opts.BatchChunks, logger: logger,
		stats: Stats{Blocks: len(blocks), MinTime: math.MaxInt64, MaxTime: math.MinInt64},
	}
	all := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".*")
	ss := q.Select(ctx, true, nil, all)
	var it chunks.Iterator
	for ss.Next() {
		if err := ctx.Err(); err != nil {
			return w.result(), err
		}
		s := ss.At()
		it = s.Iterator(it)
		if err := w.addSeries(s.Labels(), it); err != nil {
			return w.result(), err
		}
	}
	if err := ss.Err(); err != nil {
		return w.result(), fmt.Errorf("read prometheus blocks: %w", err)
	}
	if err := w.flush(); err != nil {
		return w.result(), err
	}
	return w.result(), nil
}

// openBlocks opens every block and returns one chunk querier over all of
// them that merges overlapping chunks (as the compactor does) and a function
// that closes the blocks, to call after the querier's Close.
func openBlocks(blocks []Block) (promstorage.ChunkQuerier, func(), error) {
	var opened []*tsdb.Block
	closeAll := func() {
		for _, b := range opened {
			_ = b.Close() // Read only: nothing to lose.
		}
	}
	queriers := make([]promstorage.ChunkQuerier, 0, len(blocks))
	for _, b := range blocks {
		pb, err := tsdb.OpenBlock(nil, b.Dir, nil, nil)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open prometheus block %s: %w", b.Dir, err)
		}
		opened = append(opened, pb)
		q, err := tsdb.NewBlockChunkQuerier(pb, math.MinInt64, math.MaxInt64)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("query prometheus block %s: %w", b.Dir, err)
		}
		queriers = append(queriers, q)
	}
	merger := promstorage.NewCompactingChunkSeriesMerger(promstorage.ChainedSeriesMerge)
	return promstorage.NewMergeChunkQuerier(queriers, nil, merger), closeAll, nil
}

// writer shapes series for the sink and sends them in batches. It is used
// by one goroutine.
type writer struct {
	sink        Sink
	tenant      string
	rangeMs     int64
	batchChunks int
	logger      *slog.Logger

	batch       []storage.Series
	batchChunkN int
	stats       Stats
	lastLog     time.Time
}

// addSeries shapes the chunks of one series and adds it to the batch,
// sending the batch when it is full.
func (w *writer) addSeries(lset labels.Labels, it chunks.Iterator) error {
	var out []storage.Chunk
	for it.Next() {
		var err error
		if out, err = w.shape(out, it.At()); err != nil {
			return fmt.Errorf("series %s: %w", lset, err)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read chunks of series %s: %w", lset, err)
	}
	if len(out) == 0 {
		return nil
	}
	w.stats.Series++
	w.stats.Chunks += int64(len(out))
	w.stats.MinTime = min(w.stats.MinTime, out[0].MinTime)
	w.stats.MaxTime = max(w.stats.MaxTime, out[len(out)-1].MaxTime)
	w.batch = append(w.batch, storage.Series{Labels: lset.Copy(), Chunks: out})
	w.batchChunkN += len(out)
	if w.batchChunkN >= w.batchChunks {
		return w.flush()
	}
	return nil
}

// flush appends the batch to the sink.
func (w *writer) flush() error {
	if len(w.batch) == 0 {
		return nil
	}
	if err := w.sink.Append(w.tenant, w.batch); err != nil {
		return fmt.Errorf("append %d series to tenant %s: %w", len(w.batch), w.tenant, err)
	}
	clear(w.batch) // Lets the chunk bytes go.
	w.batch = w.batch[:0]
	w.batchChunkN = 0
	if time.Since(w.lastLog) >= 10*time.Second {
		w.lastLog = time.Now()
		w.logger.Info("importing", "series", w.stats.Series, "chunks", w.stats.Chunks, "samples", w.stats.Samples)
	}
	return nil
}

// result returns the stats, with zero times if nothing was imported.
func (w *writer) result() Stats {
	s := w.stats
	if s.Chunks == 0 {
		s.MinTime, s.MaxTime = 0, 0
	}
	return s
}

// errNoChunk means a chunk meta carries no chunk data.
var errNoChunk = errors.New("chunk without data")

// cloneChunk copies the bytes of an XOR chunk, which belong to the block's
// memory map.
func cloneChunk(m chunks.Meta) storage.Chunk {
	return storage.Chunk{
		MinTime: m.MinTime, MaxTime: m.MaxTime,
		Encoding: m.Chunk.Encoding(), Data: slices.Clone(m.Chunk.Bytes()),
	}
}
