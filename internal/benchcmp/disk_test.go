package benchcmp

// BenchmarkDiskBytes runs the real servers, one after the other, not this
// process's TSDBs. One op pushes hours of data and stops the server, so run
// one op, by hand (scripts/bench.sh sets the binaries):
//
//	ARGUS_BIN=$PWD/bin/argus PROMETHEUS_BIN=... VICTORIAMETRICS_BIN=... \
//	  go test -run='^$' -bench=BenchmarkDiskBytes -benchtime=1x -count=1 -timeout=60m ./internal/benchcmp/
//
// BENCH_DISK_HOURS (default "3,24") and BENCH_DISK_SERIES (default 10000)
// change the data: BENCH_DISK_HOURS=3 BENCH_DISK_SERIES=1000 is a smoke run.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
	"github.com/argus-tsdb/argus/internal/promimport"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

const (
	// diskScrapesPerPush is how many consecutive scrapes of each series one
	// remote-write request carries (1 minute at 15 s, 4,000 samples for
	// batchSeries series): a remote-write client's batch.
	diskScrapesPerPush = 4
	// diskPushers is the number of concurrent requests.
	diskPushers = 4
)

// diskMeasure is what one server holds on disk after the pushes.
type diskMeasure struct {
	// persistedBytes are the files of the persisted format only (Argus's
	// partitions, Prometheus's blocks, VictoriaMetrics's data/: parts and indexdb),
	// holding persistedSamples samples.
	persistedBytes, persistedSamples int64
	// dirBytes is everything under the data directory after a clean stop:
	// WAL, head chunks, caches included.
	dirBytes int64
	// allPersisted: every pushed sample is in persistedBytes (a store
	// without a WAL, once flushed); persistedSamples is not counted.
	allPersisted bool
	// levelBytes are Argus's persisted bytes by partition level (L0, L1,
	// L2), to see where they go.
	levelBytes map[string]int64
	// sealedBytes and sealedSamples are those of Argus's immutable parts
	// (levels 1 and 2), the counterpart of Prometheus's blocks: its
	// level-0 files, mutable and written by every flush, are that of
	// Prometheus's head chunks (chunks_head/), which persistedBytes does
	// not count on Prometheus's side.
	sealedBytes, sealedSamples int64
}

// diskServer is one side of BenchmarkDiskBytes: start returns the push
// URL, the headers to send and a function that stops the server cleanly
// and measures its directory.
type diskServer struct {
	name  string
	start func(b *testing.B) (pushURL string, header http.Header, finish func() diskMeasure)
}

var diskServers = []diskServer{
	{name: "argus", start: startDiskArgus},
	{name: "prometheus", start: startDiskPrometheus},
	{name: "victoriametrics", start: startDiskVictoriaMetrics},
}

// BenchmarkDiskBytes measures the bytes per sample on disk of Argus,
// Prometheus and VictoriaMetrics (the real servers, one after the other),
// fed the same series (the generator of this package: 10K series, 15 s
// scrapes, hours of data ending before now, pushed in time order by
// remote write): of the persisted format alone (per persisted sample), and
// of the whole data directory after a clean stop (per pushed sample).
func BenchmarkDiskBytes(b *testing.B) {
	n := envInt(b, "BENCH_DISK_SERIES", 10_000)
	for _, hours := range envInts(b, "BENCH_DISK_HOURS", []int{3, 24}) {
		for _, srv := range diskServers {
			b.Run(fmt.Sprintf("hours=%d/impl=%s/series=%d", hours, srv.name, n), func(b *testing.B) {
				var m diskMeasure
				var pushed int64
				for b.Loop() {
					url, header, finish := srv.start(b)
					pushed = pushHistory(b, url, header, n, hours)
					m = finish()
				}
				if m.allPersisted {
					m.persistedSamples = pushed
				}
				b.ReportMetric(float64(m.dirBytes)/float64(pushed), "dir-bytes/sample")
				if m.persistedSamples > 0 {
					b.ReportMetric(float64(m.persistedBytes)/float64(m.persistedSamples), "persisted-bytes/sample")
				}
				b.ReportMetric(float64(m.persistedSamples)/float64(pushed), "persisted-fraction")
				b.ReportMetric(float64(m.dirBytes)/(1<<20), "dir-MiB")
				b.ReportMetric(float64(m.persistedBytes)/(1<<20), "persisted-MiB")
				if m.sealedSamples > 0 {
					b.ReportMetric(float64(m.sealedBytes)/float64(m.sealedSamples), "sealed-bytes/sample")
				}
				for level, n := range m.levelBytes {
					b.ReportMetric(float64(n)/(1<<20), "persisted-"+level+"-MiB")
				}
			})
		}
	}
}

// pushHistory pushes hours of 15 s scrapes of n generated series, ending
// before now and starting on a multiple of 2h, to url, and returns the
// number of samples pushed. Every request must be answered 2xx.
func pushHistory(b *testing.B, url string, header http.Header, n, hours int) int64 {
	b.Helper()
	series := generateSeries(n)
	g := newValueGen(series)
	reqs := newRequests(series, false)
	for _, req := range reqs {
		for _, ts := range req.Timeseries {
			ts.Samples = make([]*arguspb.Sample, diskScrapesPerPush)
			for i := range ts.Samples {
				ts.Samples[i] = &arguspb.Sample{}
			}
		}
	}
	twoHours := 2 * time.Hour.Milliseconds()
	start := (time.Now().UnixMilli() - int64(hours+2)*time.Hour.Milliseconds()) / twoHours * twoHours
	scrapes := hours * int(time.Hour.Milliseconds()/scrapeIntervalMs)
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	began := time.Now()
	for k := 0; k < scrapes; k += diskScrapesPerPush {
		fillScrapes(g, reqs, start+int64(k)*scrapeIntervalMs)
		bodies := make([][]byte, len(reqs))
		for i, req := range reqs {
			raw, err := req.MarshalVT()
			require.NoError(b, err)
			bodies[i] = snappy.Encode(nil, raw)
		}
		require.NoError(b, postAll(b.Context(), client, url, header, bodies), "push of scrape %d", k)
	}
	pushed := int64(n) * int64(scrapes)
	b.Logf("pushed %d samples (%d series x %dh) in %v", pushed, n, hours, time.Since(began).Round(time.Millisecond))
	return pushed
}

// fillScrapes sets the diskScrapesPerPush samples of every series of reqs
// to the next values, the first at ts.
func fillScrapes(g *valueGen, reqs []*arguspb.WriteRequest, ts int64) {
	i := 0
	for _, req := range reqs {
		for _, s := range req.Timeseries {
			for j, smp := range s.Samples {
				smp.TimestampMs = ts + int64(j)*scrapeIntervalMs
				smp.Value = g.next(i)
			}
			i++
		}
	}
}

// postAll sends every body to url, diskPushers at a time, and returns the
// first failure.
func postAll(ctx context.Context, client *http.Client, url string, header http.Header, bodies [][]byte) error {
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	sem := make(chan struct{}, diskPushers)
	for i, body := range bodies {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = clustertest.PostRemoteWrite(ctx, client, url, header, body)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// diskArgusFlags lift the limits that a push of 10K new series at once, or
// of many samples per second, would hit.
var diskArgusFlags = []string{"-log.level=warn", "-distributor.ingestion-rate-limit=0",
	"-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0"}

func startDiskArgus(b *testing.B) (string, http.Header, func() diskMeasure) {
	p := clustertest.StartArgus(b, clustertest.Options{Flags: diskArgusFlags})
	header := http.Header{clustertest.TenantHeader: {tenantID}}
	return p.PushURL(), header, func() diskMeasure {
		waitQuiet(b, filepath.Join(p.StorageDir(), "db"))
		p.Stop(b)
		var m diskMeasure
		var err error
		m.persistedBytes, m.persistedSamples, err = argusPersisted(p.StorageDir())
		require.NoError(b, err)
		m.levelBytes, m.sealedBytes, m.sealedSamples, err = argusLevels(filepath.Join(p.StorageDir(), "db"))
		require.NoError(b, err)
		m.dirBytes, err = dirSize(p.StorageDir(), nil)
		require.NoError(b, err)
		return m
	}
}

// argusPersisted returns the bytes of the store (<storage.path>/db: its
// partition files) of the stopped argus under dir and the samples it holds.
func argusPersisted(dir string) (bytes, samples int64, err error) {
	path := filepath.Join(dir, "db")
	if bytes, err = dirSize(path, nil); err != nil {
		return 0, 0, err
	}
	_, samples, err = storedChunkBytes(path)
	return bytes, samples, err
}

// waitQuiet waits (up to 5 minutes) until the partition files of the DB at
// dir have not changed for 75 s: the store's early seal of a level-0 file
// that flushes stopped writing (storage.DBOptions.SealIdle, 1 minute), a
// compaction period of the ingester (10 s by default) and a margin. The
// push replays hours of data in minutes; with data arriving in real time
// the ingester would have flushed the finished chunks and sealed the
// windows it can seal (those that ended before the oldest time a flush may
// still write: about an hour before the newest sample), and the newest
// window's level-0 file after each burst of flushes, long before.
// Prometheus's equivalent, the compaction of its head into a block, runs
// on the append path and needs no wait.
func waitQuiet(b *testing.B, dir string) {
	const quiet = 75 * time.Second
	deadline := time.Now().Add(5 * time.Minute)
	var last string
	lastChange := time.Now()
	for {
		entries, err := os.ReadDir(dir)
		require.NoError(b, err)
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "L") {
				names = append(names, e.Name())
			}
		}
		if now := strings.Join(names, ","); now != last {
			last, lastChange = now, time.Now()
		}
		if len(names) > 0 && time.Since(lastChange) >= quiet {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("the partitions were still changing after 5 minutes: %v", names)
			return
		}
		time.Sleep(time.Second)
	}
}

// argusLevels returns the bytes of the partition files of the stopped
// DB at dir by level ("L0", "L1", ...), and the bytes and samples of its
// sealed (level 1 and up) parts.
func argusLevels(dir string) (levels map[string]int64, sealedBytes, sealedSamples int64, err error) {
	db, err := storage.OpenDB(dir, storage.DBOptions{})
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	stats, err := db.TenantStats(tenantID)
	if err != nil {
		return nil, 0, 0, err
	}
	levels = map[string]int64{}
	for _, st := range stats {
		levels[fmt.Sprintf("L%d", st.Partition.Level)] += st.Partition.Bytes
		if st.Partition.Level > 0 {
			sealedBytes += st.Partition.Bytes
			sealedSamples += st.Samples
		}
	}
	return levels, sealedBytes, sealedSamples, nil
}

func startDiskPrometheus(b *testing.B) (string, http.Header, func() diskMeasure) {
	p := clustertest.StartPrometheus(b, clustertest.PrometheusOptions{
		NoSelfScrape: true,
		Flags:        []string{"--web.enable-remote-write-receiver"},
	})
	return p.URL() + "/api/v1/write", http.Header{}, func() diskMeasure {
		p.Stop(b)
		var m diskMeasure
		blocks, err := promimport.FindBlocks(p.DataDir())
		require.NoError(b, err)
		for _, bl := range blocks {
			size, err := dirSize(bl.Dir, nil)
			require.NoError(b, err)
			m.persistedBytes += size
			m.persistedSamples += int64(bl.Samples)
		}
		m.dirBytes, err = dirSize(p.DataDir(), nil)
		require.NoError(b, err)
		return m
	}
}

func startDiskVictoriaMetrics(b *testing.B) (string, http.Header, func() diskMeasure) {
	v := clustertest.StartVictoriaMetrics(b)
	return v.WriteURL(), http.Header{}, func() diskMeasure {
		v.ForceFlush(b)
		v.Stop(b)
		var m diskMeasure
		// data/ holds the parts and (since v1.115) the per-month indexdb.
		// VictoriaMetrics has no WAL: once flushed, every sample is in
		// its parts.
		var err error
		m.persistedBytes, err = dirSize(filepath.Join(v.DataDir(), "data"), nil)
		require.NoError(b, err)
		m.allPersisted = true
		m.dirBytes, err = dirSize(v.DataDir(), nil)
		require.NoError(b, err)
		return m
	}
}

// envInt returns the integer in environment variable name, or def.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, "%s", name)
	return n
}

// envInts returns the comma-separated integers in name, or def.
func envInts(b *testing.B, name string, def []int) []int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(b, err, "%s", name)
		out = append(out, n)
	}
	return out
}
