package benchcmp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/storage"
)

// grpcMaxMsgSize is the -server.grpc-max-msg-size default of cmd/argus.
const grpcMaxMsgSize = 100 << 20

// argusIngester is the Argus side: an ingester with its default config (WAL
// on, snappy, fsync every 1s; flush of finished chunks every 10s) in a temp
// dir, run as the service manager runs it: Starting, then Running in a
// goroutine (unless openOptions.noBackground), then Stopping. Push is called
// in-process (no gRPC); reads go through the querier over a real gRPC
// connection (see queryable).
type argusIngester struct {
	dir string
	reg *prometheus.Registry
	ing *ingester.Ingester

	cancelRun context.CancelFunc
	runDone   chan error

	srv  *grpc.Server // nil until queryable
	conn *grpc.ClientConn

	once sync.Once
	err  error
}

func openArgus(tb testing.TB, o openOptions) tsdbUnderTest {
	tb.Helper()
	var cfg ingester.Config
	cfg.RegisterFlags(flag.NewFlagSet("bench", flag.ContinueOnError)) // The defaults.
	cfg.Dir = tb.TempDir()
	reg := prometheus.NewRegistry()
	deps := ingester.Deps{Registerer: reg}
	if o.oooWindow > 0 {
		deps.Limits = fixedLimits{OutOfOrderTimeWindow: o.oooWindow}
	}
	ing, err := ingester.New(cfg, deps)
	if err != nil {
		tb.Fatalf("new ingester: %v", err)
	}
	if err := ing.Starting(tb.Context()); err != nil {
		tb.Fatalf("start ingester: %v", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &argusIngester{dir: cfg.Dir, reg: reg, ing: ing, cancelRun: cancel, runDone: make(chan error, 1)}
	if o.noBackground {
		a.runDone <- nil
	} else {
		go func() { a.runDone <- ing.Running(runCtx) }()
	}
	tb.Cleanup(func() {
		if err := a.close(); err != nil {
			tb.Errorf("close argus ingester: %v", err)
		}
	})
	return a
}

func (a *argusIngester) push(ctx context.Context, req *arguspb.WriteRequest) error {
	resp, err := a.ing.Push(ctx, req)
	if err != nil {
		return fmt.Errorf("push to argus: %w", err)
	}
	if resp.GetRejectedSamples() > 0 {
		return fmt.Errorf("argus rejected %d samples, first: %v", resp.GetRejectedSamples(), resp.GetRejected()[0])
	}
	return nil
}

// persist stops the ingester, which writes every finished chunk to its DB
// (open chunks stay in the WAL, so the caller pushes one scrape past maxt to
// finish the chunks up to maxt), then has the DB seal and compact them, as
// the Prometheus side compacts its head up to maxt into a block (a running
// ingester seals each 2h window once it has ended, and merges each day),
// then reads the DB back to count what it holds. The file size is that of
// the DB directory (<storage.path>/db).
func (a *argusIngester) persist(ctx context.Context, _ int64) (persisted, error) {
	var out persisted
	if err := a.stop(ctx); err != nil {
		return out, err
	}
	path := filepath.Join(a.dir, "db")
	db, err := storage.OpenDB(path, storage.DBOptions{})
	if err != nil {
		return out, err
	}
	err = db.Compact(ctx, math.MaxInt64)
	if err = errors.Join(err, db.Close()); err != nil {
		return out, fmt.Errorf("compact the DB: %w", err)
	}
	if out.fileBytes, err = dirSize(path, func(string) bool { return false }); err != nil {
		return out, fmt.Errorf("measure chunk store: %w", err)
	}
	v, err := metricValue(a.reg, "argus_ingester_persisted_chunk_bytes_total")
	if err != nil {
		return out, err
	}
	out.chunkBytes = int64(v)
	stored, samples, err := storedChunkBytes(path)
	if err != nil {
		return out, err
	}
	if stored != out.chunkBytes {
		return out, fmt.Errorf("argus_ingester_persisted_chunk_bytes_total is %d, the chunk store holds %d", out.chunkBytes, stored)
	}
	out.samples = samples
	return out, nil
}

// storedChunkBytes sums the chunk bytes and samples in the chunk store at path.
func storedChunkBytes(path string) (bytes, samples int64, err error) {
	db, err := storage.OpenDB(path, storage.DBOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	all, err := db.Select(tenantID, math.MinInt64, math.MaxInt64, storage.SelectOptions{}, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	if err != nil {
		return 0, 0, fmt.Errorf("select from chunk store: %w", err)
	}
	for _, s := range all {
		for _, c := range s.Chunks {
			xc, err := chunkenc.FromData(c.Encoding, c.Data)
			if err != nil {
				return 0, 0, fmt.Errorf("decode chunk of %s: %w", s.Labels, err)
			}
			bytes += int64(len(c.Data))
			samples += int64(xc.NumSamples())
		}
	}
	return bytes, samples, nil
}

// settle waits for the ingester's periodic flush (every FlushPeriod, 10s by
// default) to write the finishedChunks chunks cut so far to the chunk store
// and drop them from memory, as they would be in a running ingester. (The
// flush queue gauge drops to 0 when a flush starts, not when it ends, so it
// cannot tell.)
func (a *argusIngester) settle(ctx context.Context, finishedChunks int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		persisted, err := metricValue(a.reg, "argus_ingester_chunks_persisted_total")
		if err != nil {
			return err
		}
		if int(persisted) >= finishedChunks {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the flush of %d chunks, %v persisted: %w", finishedChunks, persisted, ctx.Err())
		case <-tick.C:
		}
	}
}

// metricValue returns the value of the counter or gauge name in g (summed
// over its label sets).
func metricValue(g prometheus.Gatherer, name string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return v, nil
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// queryable serves the ingester's SeriesSource on 127.0.0.1:0 and returns
// the Argus querier's Queryable over a gRPC client of it, as the all-in-one
// process wires them (cmd/argus, with the same codec and message size
// limits): what is measured includes the Series stream's marshalling and the
// querier's chunk decoding.
func (a *argusIngester) queryable(tb testing.TB) promstorage.Queryable {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	a.srv = grpc.NewServer(grpccodec.ServerOption(), grpc.MaxRecvMsgSize(grpcMaxMsgSize), grpc.MaxSendMsgSize(grpcMaxMsgSize))
	arguspb.RegisterSeriesSourceServer(a.srv, a.ing)
	go func() { _ = a.srv.Serve(lis) }() // Returns when Stop is called in close.
	a.conn, err = grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcMaxMsgSize)))
	if err != nil {
		tb.Fatalf("dial ingester: %v", err)
	}
	var cfg querier.Config
	cfg.RegisterFlags(flag.NewFlagSet("bench", flag.ContinueOnError))
	q, err := querier.New(cfg, querier.Deps{Source: arguspb.NewSeriesSourceClient(a.conn)})
	if err != nil {
		tb.Fatalf("new querier: %v", err)
	}
	return q.Queryable()
}

// stop stops Running and then the ingester (Stopping flushes).
func (a *argusIngester) stop(ctx context.Context) error {
	a.once.Do(func() {
		if a.conn != nil {
			a.err = a.conn.Close()
			a.srv.Stop()
		}
		a.cancelRun()
		if err := <-a.runDone; err != nil {
			a.err = errors.Join(a.err, fmt.Errorf("ingester running: %w", err))
		}
		a.err = errors.Join(a.err, a.ing.Stopping(ctx))
	})
	return a.err
}

func (a *argusIngester) close() error {
	return a.stop(context.Background())
}
