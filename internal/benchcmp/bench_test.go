// Benchmarks comparing Argus with Prometheus's TSDB on the same generated
// series. Each has the sub-benchmarks impl=argus and impl=prometheus, except
// BenchmarkAppendPrometheusReference (Prometheus only). `make bench`
// (scripts/bench.sh, about 6 minutes) runs them and prints the medians and
// the Argus/Prometheus ratios; by hand:
//
//	go test -run='^$' -bench=. -benchmem -cpu=1 -count=6 ./internal/benchcmp/ | tee new.txt
//	benchstat -col '/impl@(prometheus argus)' new.txt   # Argus against Prometheus
//	benchstat old.txt new.txt                           # a change against a baseline
//
// benchstat is golang.org/x/perf/cmd/benchstat (scripts/bench.sh installs a
// pinned version). Always run with -cpu=1 (GOMAXPROCS=1), so that samples/s is
// per core and both sides get the same CPU. docs/benchmarks.md says what each
// benchmark measures and what is not apples to apples.
package benchcmp

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// BenchmarkAppend measures steady-state append throughput: one op pushes one
// sample to each of the series, at the next scrape timestamp, in requests of
// batchSeries series. The series exist before the timer starts.
func BenchmarkAppend(b *testing.B) {
	for _, im := range impls {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, n), func(b *testing.B) {
				ctx := tenant.With(b.Context(), tenantID)
				series := generateSeries(n)
				g := newValueGen(series)
				reqs := newRequests(series, false)
				db := im.open(b, openOptions{})
				const warmup = 2 // Creates the series and their first chunks.
				pushAll(ctx, b, db, g, reqs, 0, warmup)
				k := warmup
				b.ReportAllocs()
				for b.Loop() {
					g.fill(reqs, scrapeTime(k))
					k++
					for _, req := range reqs {
						if err := db.push(ctx, req); err != nil {
							b.Fatalf("push: %v", err)
						}
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// BenchmarkAppendPrometheusReference measures two cheaper ways into the
// Prometheus head than the remote-write path of BenchmarkAppend, as reference
// points: label sets built once before the timer (labels=prebuilt, so no
// labels.Labels is built per request), and on top of that the series refs
// cached, as Prometheus's scrape loop does (refs=cached, so no label lookup).
// Argus's Push cannot take either shortcut: every request carries the labels.
func BenchmarkAppendPrometheusReference(b *testing.B) {
	const n = 100_000
	for _, v := range []struct {
		name      string
		cacheRefs bool
	}{
		{name: "labels=prebuilt/refs=none"},
		{name: "labels=prebuilt/refs=cached", cacheRefs: true},
	} {
		b.Run(fmt.Sprintf("series=%d/%s", n, v.name), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			series := generateSeries(n)
			g := newValueGen(series)
			reqs := newRequests(series, false)
			db := openPrometheus(b, openOptions{}).(*promHead)
			// lsets[k][i] and refs[k][i] belong to series i of request k.
			lsets := make([][]labels.Labels, len(reqs))
			refs := make([][]storage.SeriesRef, len(reqs))
			for k, req := range reqs {
				for _, ts := range req.Timeseries {
					db.builder.Reset()
					for _, l := range ts.Labels {
						db.builder.Add(l.Name, l.Value)
					}
					lsets[k] = append(lsets[k], db.builder.Labels())
				}
				if v.cacheRefs {
					refs[k] = make([]storage.SeriesRef, len(req.Timeseries))
				}
			}
			pushScrape := func(scrape int) {
				g.fill(reqs, scrapeTime(scrape))
				for k, req := range reqs {
					if err := db.pushCached(ctx, req, lsets[k], refs[k]); err != nil {
						b.Fatalf("push: %v", err)
					}
				}
			}
			const warmup = 2 // Creates the series and their first chunks.
			for scrape := range warmup {
				pushScrape(scrape)
			}
			next := warmup
			b.ReportAllocs()
			for b.Loop() {
				pushScrape(next)
				next++
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// samplesPerChunk is where both TSDBs cut a chunk (unless a 2h boundary
// comes first).
const samplesPerChunk = 120

// persistScrapes is 3h of 15s scrapes: 720 samples, 6 chunks of
// samplesPerChunk per series on both sides.
const persistScrapes = 720

// BenchmarkPersistedBytes measures how compactly each TSDB persists 3h of
// samples of 10K series: one op ingests them into a fresh TSDB, persists
// them, and measures the encoded chunks and the files. One more scrape is
// pushed after the 3h, so that the last chunk of the 3h is cut on both sides
// (Argus persists only cut chunks); it is not measured. Argus runs without
// its periodic flush, so that Stopping writes every chunk in one flush and
// the file size does not depend on how many flushes the ingest spanned. The
// metrics are deterministic (fixed seed); ns/op is the time to ingest and
// persist.
func BenchmarkPersistedBytes(b *testing.B) {
	const n = 10_000
	for _, im := range impls {
		b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, n), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			series := generateSeries(n)
			var p persisted
			b.ReportAllocs()
			for b.Loop() {
				db := im.open(b, openOptions{noBackground: true})
				pushAll(ctx, b, db, newValueGen(series), newRequests(series, false), 0, persistScrapes+1)
				var err error
				if p, err = db.persist(ctx, scrapeTime(persistScrapes-1)); err != nil {
					b.Fatalf("persist: %v", err)
				}
				if err := db.close(); err != nil {
					b.Fatalf("close: %v", err)
				}
			}
			if want := int64(n * persistScrapes); p.samples != want {
				b.Fatalf("persisted %d samples, want %d", p.samples, want)
			}
			b.ReportMetric(float64(p.chunkBytes)/float64(p.samples), "chunk-bytes/sample")
			b.ReportMetric(float64(p.fileBytes)/float64(p.samples), "file-bytes/sample")
		})
	}
}

// memScrapes is how many samples each series holds in the memory benchmark
// by default (BENCH_MEM_SCRAPES overrides it; BENCH_MEM_SERIES the 100K
// series).
const memScrapes = 4

// BenchmarkSeriesMemory measures the heap that in-memory series cost: one op
// opens a fresh TSDB, creates 100K series with memScrapes samples each, and
// measures the live heap (after GC) that it retains, per series. The request
// labels are fresh copies made after the baseline and dropped before the
// measurement, so a TSDB that keeps them is charged for them.
func BenchmarkSeriesMemory(b *testing.B) {
	n := envInt(b, "BENCH_MEM_SERIES", 100_000)
	scrapes := envInt(b, "BENCH_MEM_SCRAPES", memScrapes)
	for _, im := range impls {
		b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, n), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			series := generateSeries(n)
			var inuse, alloc float64
			b.ReportAllocs()
			for b.Loop() {
				g := newValueGen(series)
				before := liveHeap()
				db := im.open(b, openOptions{})
				pushAll(ctx, b, db, g, newRequests(series, true), 0, scrapes)
				after := liveHeap()
				writeHeapProfile(b, im.name)
				inuse = (float64(after.HeapInuse) - float64(before.HeapInuse)) / float64(n)
				alloc = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
				if err := db.close(); err != nil {
					b.Fatalf("close: %v", err)
				}
			}
			b.ReportMetric(inuse, "heap-inuse-bytes/series")
			b.ReportMetric(alloc, "heap-alloc-bytes/series")
		})
	}
}

// writeHeapProfile writes the heap profile of the live heap to
// $BENCH_MEM_PROFILE_DIR/heap-<name>.pprof when that variable is set: where
// the bytes of the series are.
func writeHeapProfile(b *testing.B, name string) {
	dir := os.Getenv("BENCH_MEM_PROFILE_DIR")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, "heap-"+name+".pprof"))
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatalf("heap profile: %v", err)
	}
}

// liveHeap returns the memory statistics after two garbage collections (the
// second one empties what sync.Pools kept from the first).
func liveHeap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// queryScrapes is the data range of the query benchmark: 3h of 15s scrapes.
const queryScrapes = 720

// benchQueries are the range queries of BenchmarkRangeQuery, over the whole
// 3h at a 60s step: an aggregation over every series of one metric (2K of
// the 10K), and a selective query of few series.
var benchQueries = []struct {
	name, expr string
	// series is the number of series in the result, checked on every query.
	series int
}{
	{name: "sum_rate", expr: `sum by (job) (rate(` + queryMetric + `[5m]))`, series: len(jobs)},
	{name: "selective", expr: `rate(` + queryMetric + `{job="payments",namespace="team-01"}[5m])`, series: 8},
}

// BenchmarkRangeQuery measures PromQL range queries through the same engine
// (newBenchEngine) over 3h of 10K series: Argus through its querier's
// Queryable over a real in-process gRPC connection to the ingester, once its
// flush has moved the finished chunks (all but the last of each series) to
// the chunk store; Prometheus over its head. One op is one query, parsed,
// executed and closed.
func BenchmarkRangeQuery(b *testing.B) {
	const n = 10_000
	for _, im := range impls {
		b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, n), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			series := generateSeries(n)
			db := im.open(b, openOptions{})
			pushAll(ctx, b, db, newValueGen(series), newRequests(series, false), 0, queryScrapes)
			// All but the last chunk of each series are finished.
			if err := db.settle(ctx, n*((queryScrapes-1)/samplesPerChunk)); err != nil {
				b.Fatalf("settle: %v", err)
			}
			queryable := db.queryable(b)
			engine := newBenchEngine()
			start, end := time.UnixMilli(scrapeTime(0)), time.UnixMilli(scrapeTime(queryScrapes-1))
			for _, q := range benchQueries {
				b.Run("query="+q.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						qry, err := engine.NewRangeQuery(ctx, queryable, nil, q.expr, start, end, time.Minute)
						if err != nil {
							b.Fatalf("new query: %v", err)
						}
						res := qry.Exec(ctx)
						if res.Err != nil {
							b.Fatalf("query %s: %v", q.expr, res.Err)
						}
						if m, ok := res.Value.(promql.Matrix); !ok || len(m) != q.series {
							b.Fatalf("query %s: got %d series of %T, want %d", q.expr, len(m), res.Value, q.series)
						}
						qry.Close()
					}
				})
			}
		})
	}
}

// newBenchEngine returns the PromQL engine both sides are queried through,
// with the options of a Prometheus 3 server (those the Argus querier uses
// too): default lookback, @ and negative offsets on, no feature flags, no
// query log, no concurrency limit.
func newBenchEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		MaxSamples:           50_000_000,
		Timeout:              2 * time.Minute,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
	})
}
