package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SoakFlags compress the lifecycle of a tenant to seconds: its chunks are
// cut and persisted a second after its last sample, its series leave the
// head at the next truncation, its head closes a second later, and the
// distributor forgets it a second after its last push.
var SoakFlags = []string{
	"-distributor.ingestion-rate-limit=0",
	"-ingester.max-chunk-idle=1s",
	"-ingester.flush-period=200ms",
	"-ingester.wal-truncate-period=1s",
	"-ingester.tenant-idle-timeout=1s",
	"-distributor.idle-tenant-timeout=1s",
	"-server.register-instrumentation", // MeasureSoak forces collections.
}

// SoakGOGC is the GOGC a soak test gives its processes: low, so that the
// heap a process settles at between the collections MeasureSoak forces
// holds little garbage.
const SoakGOGC = "20"

// soakReadings is how many times MeasureSoak reads a process. Work that
// ends on its own (a compaction, a head closing, a flush) can hold memory
// or files for a moment; a leak holds them in every reading, so the
// minimum of a few readings half a second apart tells the two apart.
const soakReadings = 3

// blobCacheBytes is the heap held by an ingester's cache of decompressed
// chunk blobs. The cache is bounded (-ingester.persisted-blob-cache-size)
// and fills with whatever sealed parts were read last, whether it is warm
// at a reading depends on timing (a flush that overlaps a sealed part reads
// it), so MeasureSoak leaves it out of the heap: a soak looks for what
// grows without a bound.
const blobCacheBytes = "argus_ingester_persisted_blob_cache_bytes"

// SoakState is what a soak test requires back at its baseline in one
// process once its tenants are idle. HeapBytes leaves out the blob cache.
type SoakState struct {
	HeapBytes, Goroutines, OpenFiles, Sockets, MetricLines int
	BlobCacheBytes                                         int // logged, not required back
}

func (s SoakState) String() string {
	return fmt.Sprintf("heap %d KB (and %d KB of blob cache), %d goroutines, %d open files (%d sockets), /metrics %d lines",
		s.HeapBytes/1024, s.BlobCacheBytes/1024, s.Goroutines, s.OpenFiles, s.Sockets, s.MetricLines)
}

// MeasureSoak reads the state of p from /metrics and /proc (Linux only)
// soakReadings times, each just after a garbage collection it forces
// through /debug/pprof/heap?gc=1 (SoakFlags serve it), and returns the
// smallest value of each figure.
func MeasureSoak(t testing.TB, p *Process) SoakState {
	t.Helper()
	out := readSoak(t, p)
	for range soakReadings - 1 {
		time.Sleep(500 * time.Millisecond)
		s := readSoak(t, p)
		out = SoakState{
			HeapBytes: min(out.HeapBytes, s.HeapBytes), Goroutines: min(out.Goroutines, s.Goroutines),
			OpenFiles: min(out.OpenFiles, s.OpenFiles), Sockets: min(out.Sockets, s.Sockets),
			MetricLines: min(out.MetricLines, s.MetricLines), BlobCacheBytes: min(out.BlobCacheBytes, s.BlobCacheBytes),
		}
	}
	return out
}

// readSoak is one reading of MeasureSoak.
func readSoak(t testing.TB, p *Process) SoakState {
	t.Helper()
	code, body := p.Query(t, "", "/debug/pprof/heap", url.Values{"gc": {"1"}})
	require.Equal(t, http.StatusOK, code, "forcing a collection: %s", Truncate(string(body), 500))
	fams := p.MetricFamilies(t)
	code, metrics := p.Query(t, "", "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	files, sockets := openFilesAndSockets(t, p.PID())
	cache := int(SumMetric(fams, blobCacheBytes, nil))
	return SoakState{
		HeapBytes:      int(fams["go_memstats_heap_alloc_bytes"].GetMetric()[0].GetGauge().GetValue()) - cache,
		BlobCacheBytes: cache,
		Goroutines:     int(fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue()),
		OpenFiles:      files,
		Sockets:        sockets,
		MetricLines:    strings.Count(string(metrics), "\n"),
	}
}

// openFilesAndSockets counts the file descriptors of process pid, and those
// that are sockets.
func openFilesAndSockets(t testing.TB, pid int) (files, sockets int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return len(entries), sockets
}

// PushTenants pushes through p, from 4 goroutines, 3 pushes of 5 series
// each for tenants prefix-00000.., with samples at at-2s, at-1s and at, and
// requires every one acknowledged. It returns at.
func PushTenants(t testing.TB, p *Process, prefix string, tenants int, metric string) (at int64) {
	t.Helper()
	at = time.Now().Truncate(time.Second).UnixMilli() - 1000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < tenants; k += 4 {
				if err := pushTenant(p, fmt.Sprintf("%s-%05d", prefix, k), metric, at); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	return at
}

// pushTenant makes PushTenants' 3 pushes for tenant id.
func pushTenant(p *Process, id, metric string, at int64) error {
	for r := range 3 {
		series := make([]TimeSeries, 5)
		for n := range series {
			series[n] = TimeSeries{
				Labels:  Labels("__name__", metric, "n", fmt.Sprint(n)),
				Samples: []Sample{{T: at - int64(2-r)*1000, V: float64(r)}},
			}
		}
		code, body, err := p.TryPush(context.Background(), id, series)
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("push of %s answered %d: %s", id, code, body)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
