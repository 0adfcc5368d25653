package benchcmp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// promHead is the Prometheus side: a tsdb.Head with its WAL on disk (snappy,
// as Prometheus 3 writes it by default) and its head chunks memory-mapped from
// disk, as inside a Prometheus server, without the DB around it (so no
// background compaction or retention runs during a benchmark).
type promHead struct {
	dir     string
	head    *tsdb.Head
	builder labels.ScratchBuilder
	once    sync.Once
	err     error
}

func openPrometheus(tb testing.TB, o openOptions) tsdbUnderTest {
	tb.Helper()
	dir := tb.TempDir()
	wal, err := wlog.NewSize(nil, nil, filepath.Join(dir, "wal"), wlog.DefaultSegmentSize, compression.Snappy)
	if err != nil {
		tb.Fatalf("open prometheus wal: %v", err)
	}
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = dir
	var wbl *wlog.WL
	if o.oooWindow > 0 { // Out-of-order samples go to the WBL, as in a Prometheus server.
		opts.OutOfOrderTimeWindow.Store(o.oooWindow.Milliseconds())
		if wbl, err = wlog.NewSize(nil, nil, filepath.Join(dir, "wbl"), wlog.DefaultSegmentSize, compression.Snappy); err != nil {
			tb.Fatalf("open prometheus wbl: %v", err)
		}
	}
	head, err := tsdb.NewHead(nil, nil, wal, wbl, opts, nil)
	if err != nil {
		tb.Fatalf("new prometheus head: %v", err)
	}
	if err := head.Init(math.MinInt64); err != nil {
		tb.Fatalf("init prometheus head: %v", err)
	}
	p := &promHead{dir: dir, head: head, builder: labels.NewScratchBuilder(16)}
	tb.Cleanup(func() {
		if err := p.close(); err != nil {
			tb.Errorf("close prometheus head: %v", err)
		}
	})
	return p
}

// push does what Prometheus's remote-write handler does with a request once it
// is decoded (minus label validation): build each series' labels.Labels, append
// by labels (ref 0, as the handler has no series cache), commit once.
func (p *promHead) push(ctx context.Context, req *arguspb.WriteRequest) error {
	app := p.head.Appender(ctx)
	for _, ts := range req.Timeseries {
		p.builder.Reset()
		for _, l := range ts.Labels {
			p.builder.Add(l.Name, l.Value)
		}
		ls := p.builder.Labels()
		for _, s := range ts.Samples {
			if _, err := app.Append(0, ls, s.TimestampMs, s.Value); err != nil {
				return errors.Join(fmt.Errorf("append to prometheus head: %w", err), app.Rollback())
			}
		}
	}
	return app.Commit()
}

// pushCached appends the samples of req like push but from label sets built
// beforehand, lsets[i] for the i-th series of req, and with the series refs
// of refs when it is not nil (updating them), as Prometheus's scrape loop
// does with its series cache. It is the reference for what the head costs
// without the remote-write path's per-request label building.
func (p *promHead) pushCached(ctx context.Context, req *arguspb.WriteRequest, lsets []labels.Labels, refs []storage.SeriesRef) error {
	app := p.head.Appender(ctx)
	for i, ts := range req.Timeseries {
		var ref storage.SeriesRef
		if refs != nil {
			ref = refs[i]
		}
		for _, s := range ts.Samples {
			var err error
			if ref, err = app.Append(ref, lsets[i], s.TimestampMs, s.Value); err != nil {
				return errors.Join(fmt.Errorf("append to prometheus head: %w", err), app.Rollback())
			}
		}
		if refs != nil {
			refs[i] = ref
		}
	}
	return app.Commit()
}

// persist measures the encoded bytes of the head chunks up to maxt, then
// compacts them into a block, as Prometheus does every 2h, and measures the
// block directory (chunks, index, meta.json, tombstones).
func (p *promHead) persist(ctx context.Context, maxt int64) (persisted, error) {
	var out persisted
	var err error
	rh := tsdb.NewRangeHead(p.head, p.head.MinTime(), maxt)
	if out.chunkBytes, out.samples, err = headChunkBytes(ctx, rh); err != nil {
		return out, err
	}
	comp, err := tsdb.NewLeveledCompactor(ctx, nil, nil, []int64{tsdb.DefaultBlockDuration}, nil, nil)
	if err != nil {
		return out, fmt.Errorf("new compactor: %w", err)
	}
	blocks := filepath.Join(p.dir, "blocks")
	// A block's max time is exclusive.
	if _, err := comp.Write(blocks, rh, rh.MinTime(), rh.MaxTime()+1, nil); err != nil {
		return out, fmt.Errorf("compact prometheus head: %w", err)
	}
	if out.fileBytes, err = dirSize(blocks, nil); err != nil {
		return out, fmt.Errorf("measure blocks: %w", err)
	}
	return out, nil
}

// headChunkBytes sums len(chunk.Bytes()) and the samples over every chunk of
// every series of b.
func headChunkBytes(ctx context.Context, b tsdb.BlockReader) (bytes, samples int64, err error) {
	ir, err := b.Index()
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, ir.Close()) }()
	cr, err := b.Chunks()
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, cr.Close()) }()
	name, value := index.AllPostingsKey()
	postings, err := ir.Postings(ctx, name, value)
	if err != nil {
		return 0, 0, err
	}
	var (
		sb    labels.ScratchBuilder
		metas []chunks.Meta
	)
	for postings.Next() {
		if err := ir.Series(postings.At(), &sb, &metas); err != nil {
			return 0, 0, err
		}
		for _, m := range metas {
			c, _, err := cr.ChunkOrIterable(m)
			if err != nil {
				return 0, 0, err
			}
			if c == nil {
				return 0, 0, errors.New("head chunk reader returned an iterable")
			}
			bytes += int64(len(c.Bytes()))
			samples += int64(c.NumSamples())
		}
	}
	return bytes, samples, postings.Err()
}

// settle does nothing: the head does its work (cutting and memory-mapping
// chunks) in the append path. Head compaction into a block, which a
// Prometheus server would run once the head spans 3h, is not triggered.
func (*promHead) settle(context.Context, int) error { return nil }

func (p *promHead) queryable(testing.TB) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return tsdb.NewBlockQuerier(tsdb.NewRangeHead(p.head, mint, maxt), mint, maxt)
	})
}

func (p *promHead) close() error {
	p.once.Do(func() { p.err = p.head.Close() })
	return p.err
}
