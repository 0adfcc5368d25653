package querier

// How memory grows with a query over -querier.max-fetched-series-per-query:
// the same query of 200,000 series, without the limit and with a limit of
// 1,000 that stops the stream at its 1,001st series. Run and compare with
//
//	go test ./querier/ -run '^$' -bench BenchmarkQuery_OverSeriesLimit -count 6 | tee new.txt
//	benchstat old.txt new.txt
//
// peak-heap-inuse-B is the largest HeapInuse seen while the queries ran
// (sampled every millisecond) above HeapInuse before them: it includes the
// garbage of earlier queries that the GC has not collected yet, so with the
// limit it is the GC's pacing more than one query. total-alloc-B/op is
// TotalAlloc per query. Both include the fake source's own allocations,
// which run in the same process.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

func BenchmarkQuery_OverSeriesLimit(b *testing.B) {
	const series = 200_000
	client := startSource(b, newGeneratedSource(series, 500, 0))
	for _, limit := range []int{0, 1000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			lim := newFakeLimits(b).set(tenantA, func(l *limits.Limits) { l.MaxFetchedSeriesPerQuery = limit })
			q, err := New(defaultConfig(b), Deps{Source: client, Limits: lim})
			require.NoError(b, err)
			h := q.Handler()
			want := http.StatusOK
			if limit > 0 {
				want = http.StatusUnprocessableEntity
			}
			target := PathPrefix + "/api/v1/query?query=count(gen)&time=" + secs(t0)

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			peak := startHeapSampler(time.Millisecond)
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequestWithContext(tenant.With(b.Context(), tenantA), http.MethodGet, target, nil)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != want {
					b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
				}
			}
			peakInuse := peak()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(peakInuse)-float64(before.HeapInuse), "peak-heap-inuse-B")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "total-alloc-B/op")
		})
	}
}

// startHeapSampler reads HeapInuse every interval until the returned
// function is called, which returns the largest value read.
func startHeapSampler(interval time.Duration) func() uint64 {
	var (
		wg      sync.WaitGroup
		highest uint64 // written by the sampler, read after it ends
		stop    = make(chan struct{})
	)
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			highest = max(highest, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return highest
	}
}
