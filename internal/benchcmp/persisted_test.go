package benchcmp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/storage"
)

// BenchmarkPersistedRangeQuery measures a range query's read of persisted
// data: Argus's storage.DB against Prometheus's block querier, in this
// process, over the same chunks (24h of the generated series, XOR chunks of
// 120 samples cut on 2h boundaries, built once and handed to both). One op
// selects the series of a query over the whole 24h and decodes every sample
// of them, as a PromQL range query does before it evaluates anything:
// Argus's DB.Select returns the chunks as the ingester hands them to the
// querier of its own process (impl=argus: the float chunks of compressed
// parts as they are stored, read through storage.NewChunk, as
// Ingester.SelectSeries does) or sends them to a querier over gRPC
// (impl=argus-wire: XOR bytes, rebuilt from the stored form), iterated as
// the querier does; Prometheus's querier is iterated sample by sample.
// Besides ns/op it reports the process's CPU time per sample
// (cpu-ns/sample), steadier than wall time on a loaded machine.
//
// Two layouts: layout=2h is what a day looks like while it is the current
// one (Argus: 12 sealed level-1 parts; Prometheus: 12 2h blocks under a
// merge querier, as its DB queries them), layout=day once it is compacted
// (Argus: one level-2 part; Prometheus: one 24h block). Queries: metric (one
// metric, a fifth of the series) and series (one series, a point lookup).
// BENCH_PERSISTED_SERIES (default 10000) sets the number of series.
// Argus's DB has the ingester's default blob cache (64 MiB), so after an
// op's first read the repeated point lookup finds its blobs decompressed,
// as a dashboard's refresh does; BENCH_PERSISTED_BLOB_CACHE sets its bytes
// (0: none, every read decompresses).
func BenchmarkPersistedRangeQuery(b *testing.B) {
	n := envInt(b, "BENCH_PERSISTED_SERIES", 10_000)
	data := persistedData(n)
	m := labels.MustNewMatcher
	queries := []struct {
		name   string
		ms     []*labels.Matcher
		series int
	}{
		{"metric", []*labels.Matcher{m(labels.MatchEqual, "__name__", queryMetric)}, n / metricsPerPod},
		{"series", []*labels.Matcher{m(labels.MatchEqual, "__name__", "node_load1"), m(labels.MatchEqual, "instance", "10.0.0.7:8080")}, 1},
	}
	for _, side := range []struct {
		name string
		open func(b *testing.B, d *persistedSet, layout string) persistedReader
	}{{"argus", openPersistedArgus}, {"argus-wire", openPersistedArgusWire}, {"prometheus", openPersistedPrometheus}} {
		for _, layout := range []string{"2h", "day"} {
			b.Run(fmt.Sprintf("impl=%s/series=%d/layout=%s", side.name, n, layout), func(b *testing.B) {
				r := side.open(b, data, layout)
				for _, q := range queries {
					want := int64(q.series) * int64(data.scrapes)
					b.Run("query="+q.name, func(b *testing.B) {
						b.ReportAllocs()
						cpu0 := processCPU()
						for b.Loop() {
							series, samples := r.read(b, data.minT, data.maxT, q.ms)
							if series != q.series || samples != want {
								b.Fatalf("read %d series, %d samples; want %d, %d", series, samples, q.series, want)
							}
						}
						b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*want), "ns/sample")
						b.ReportMetric(float64(processCPU()-cpu0)/float64(int64(b.N)*want), "cpu-ns/sample")
					})
				}
			})
		}
	}
}

// processCPU returns the CPU time (user and system) the process has used,
// in ns: on a shared machine it moves far less with the load than the wall
// time does.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// persistedReader reads every sample of the series matching ms in [mint,
// maxt] and returns how many series and samples it read.
type persistedReader interface {
	read(b *testing.B, mint, maxt int64, ms []*labels.Matcher) (series int, samples int64)
}

// persistedSet is the data of BenchmarkPersistedRangeQuery: series sorted
// by labels, with their XOR chunks.
type persistedSet struct {
	series     []storage.Series
	minT, maxT int64 // inclusive
	scrapes    int   // samples per series
}

const (
	persistedWindow = 2 * time.Hour
	persistedDay    = 24 * time.Hour
)

var (
	persistedOnce  sync.Once
	persistedCache *persistedSet
)

// persistedData generates 24h of n series from baseTimeMs (a day start),
// once per process.
func persistedData(n int) *persistedSet {
	persistedOnce.Do(func() {
		scrapes := int(persistedDay.Milliseconds() / scrapeIntervalMs)
		gen := generateSeries(n)
		g := newValueGen(gen)
		d := &persistedSet{minT: baseTimeMs, maxT: baseTimeMs + persistedDay.Milliseconds() - 1, scrapes: scrapes}
		for i, s := range gen {
			lb := labels.NewScratchBuilder(len(s.labels))
			for _, l := range s.labels {
				lb.Add(l.Name, l.Value)
			}
			var cs []storage.Chunk
			var c *chunkenc.XORChunk
			var app chunkenc.Appender
			for k := range scrapes {
				if k%samplesPerChunk == 0 {
					c = chunkenc.NewXORChunk()
					app, _ = c.Appender()
					cs = append(cs, storage.Chunk{MinTime: scrapeTime(k), Encoding: chunkenc.EncXOR})
				}
				app.Append(0, scrapeTime(k), g.next(i))
				cs[len(cs)-1].MaxTime = scrapeTime(k)
				cs[len(cs)-1].Data = c.Bytes()
			}
			d.series = append(d.series, storage.Series{Labels: lb.Labels(), Chunks: cs})
		}
		sortSeries(d.series)
		persistedCache = d
	})
	return persistedCache
}

func sortSeries(ss []storage.Series) {
	slices.SortFunc(ss, func(a, b storage.Series) int { return labels.Compare(a.Labels, b.Labels) })
}

// windowChunks returns the series with their chunks in [lo, hi).
func (d *persistedSet) windowChunks(lo, hi int64) []storage.Series {
	var out []storage.Series
	for _, s := range d.series {
		var cs []storage.Chunk
		for _, c := range s.Chunks {
			if c.MinTime >= lo && c.MinTime < hi {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			out = append(out, storage.Series{Labels: s.Labels, Chunks: cs})
		}
	}
	return out
}

// argusDBReader reads a DB as the ingester does for a querier: in its own
// process (chunks kept as stored), or for the wire if wire.
type argusDBReader struct {
	db   *storage.DB
	wire bool
}

func openPersistedArgusWire(b *testing.B, d *persistedSet, layout string) persistedReader {
	r := openPersistedArgus(b, d, layout).(argusDBReader)
	r.wire = true
	return r
}

// openPersistedArgus appends the data window by window to a DB and
// compacts it: layout=day into one level-2 part, layout=2h into level-1
// parts only (a CompactedRange of 48h whose window has not ended).
func openPersistedArgus(b *testing.B, d *persistedSet, layout string) persistedReader {
	opts := storage.DBOptions{NoSync: true, Logger: slog.New(slog.DiscardHandler),
		BlobCache: storage.NewBlobCache(int64(envInt(b, "BENCH_PERSISTED_BLOB_CACHE", storage.DefaultBlobCacheSize)))}
	if layout == "2h" {
		opts.CompactedRange = 2 * persistedDay
	}
	db, err := storage.OpenDB(b.TempDir(), opts)
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	win := persistedWindow.Milliseconds()
	for lo := d.minT; lo <= d.maxT; lo += win {
		series := d.windowChunks(lo, lo+win)
		for i := 0; i < len(series); i += batchSeries {
			require.NoError(b, db.Append(tenantID, series[i:min(i+batchSeries, len(series))]))
		}
	}
	require.NoError(b, db.Compact(b.Context(), d.maxT+1))
	return argusDBReader{db: db}
}

func (a argusDBReader) read(b *testing.B, mint, maxt int64, ms []*labels.Matcher) (int, int64) {
	series, err := a.db.Select(tenantID, mint, maxt, storage.SelectOptions{KeepTranscoded: !a.wire}, ms...)
	require.NoError(b, err)
	var (
		samples int64
		sum     float64
		it      chunkenc.Iterator
		other   chunkenc.Iterator // reused, as the querier does
		xor     storage.XORIterator
	)
	for _, s := range series {
		for _, c := range s.Chunks {
			if c.Encoding == chunkenc.EncXOR {
				// The querier's decoding of XOR from the wire
				// (querier/iterator.go).
				xor.Reset(c.Data)
				it = &xor
			} else {
				ch, err := storage.NewChunk(c)
				if err != nil {
					b.Fatal(err)
				}
				other = ch.Iterator(other)
				it = other
			}
			for it.Next() == chunkenc.ValFloat {
				_, v := it.At()
				sum += v
				samples++
			}
			if it.Err() != nil { // Not require: its t.Helper costs more than a chunk's decoding.
				b.Fatal(it.Err())
			}
		}
	}
	return len(series), samples
}

type promBlockReader struct{ blocks []*tsdb.Block }

// openPersistedPrometheus writes the data as Prometheus blocks (index,
// chunks and meta.json, as its compactor writes them, with the same
// chunks): one per 2h window for layout=2h, one for layout=day.
func openPersistedPrometheus(b *testing.B, d *persistedSet, layout string) persistedReader {
	span := persistedDay.Milliseconds()
	if layout == "2h" {
		span = persistedWindow.Milliseconds()
	}
	dir := b.TempDir()
	var p promBlockReader
	for lo := d.minT; lo <= d.maxT; lo += span {
		path := filepath.Join(dir, fmt.Sprintf("block-%d", lo))
		writePromBlock(b, path, d.windowChunks(lo, lo+span), lo, lo+span)
		block, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), path, nil, nil)
		require.NoError(b, err)
		b.Cleanup(func() { _ = block.Close() })
		p.blocks = append(p.blocks, block)
	}
	return p
}

// writePromBlock writes series (sorted, with chunks in [mint, maxt)) as a
// block in dir.
func writePromBlock(b *testing.B, dir string, series []storage.Series, mint, maxt int64) {
	ctx := context.Background()
	cw, err := chunks.NewWriter(filepath.Join(dir, "chunks"))
	require.NoError(b, err)
	iw, err := index.NewWriter(ctx, filepath.Join(dir, "index"))
	require.NoError(b, err)
	symbols := map[string]struct{}{}
	for _, s := range series {
		s.Labels.Range(func(l labels.Label) { symbols[l.Name], symbols[l.Value] = struct{}{}, struct{}{} })
	}
	for _, sym := range sortedKeys(symbols) {
		require.NoError(b, iw.AddSymbol(sym))
	}
	stats := tsdb.BlockStats{NumSeries: uint64(len(series))}
	for i, s := range series {
		metas := make([]chunks.Meta, len(s.Chunks))
		for j, c := range s.Chunks {
			ch, err := chunkenc.FromData(c.Encoding, c.Data)
			require.NoError(b, err)
			metas[j] = chunks.Meta{Chunk: ch, MinTime: c.MinTime, MaxTime: c.MaxTime}
			stats.NumChunks++
			stats.NumSamples += uint64(ch.NumSamples())
		}
		require.NoError(b, cw.WriteChunks(metas...))
		require.NoError(b, iw.AddSeries(promstorage.SeriesRef(i+1), s.Labels, metas...))
	}
	require.NoError(b, cw.Close())
	require.NoError(b, iw.Close())
	stats.NumFloatSamples = stats.NumSamples
	meta, err := json.Marshal(tsdb.BlockMeta{MinTime: mint, MaxTime: maxt, Stats: stats,
		Compaction: tsdb.BlockMetaCompaction{Level: 1}, Version: 1})
	require.NoError(b, err)
	require.NoError(b, os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644))
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (p promBlockReader) read(b *testing.B, mint, maxt int64, ms []*labels.Matcher) (int, int64) {
	qs := make([]promstorage.Querier, len(p.blocks))
	for i, bl := range p.blocks {
		q, err := tsdb.NewBlockQuerier(bl, mint, maxt)
		require.NoError(b, err)
		qs[i] = q
	}
	q := qs[0]
	if len(qs) > 1 {
		q = promstorage.NewMergeQuerier(qs, nil, promstorage.ChainedSeriesMerge)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, ms...)
	var (
		series  int
		samples int64
		sum     float64
		it      chunkenc.Iterator
	)
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			sum += v
			samples++
		}
		if it.Err() != nil {
			b.Fatal(it.Err())
		}
		series++
	}
	require.NoError(b, ss.Err())
	return series, samples
}
