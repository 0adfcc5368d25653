package ingester

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// maxBytesPerSmallTenant is the goal for the fixed memory of a tenant of a
// few series.
const maxBytesPerSmallTenant = 16 << 10

// TestMemSeriesSize keeps a series in the 128-byte size class of the Go
// allocator: 112 bytes of float state and one pointer each for the
// histogram state and the out-of-order state (8 bytes to spare).
func TestMemSeriesSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(memSeries{}), uintptr(128))
}

// heapAlloc returns the bytes of live heap objects after a full GC.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// smallTenantSeries returns the 10 series of small tenant k, one sample each.
func smallTenantSeries(k int) []*arguspb.TimeSeries {
	var tss []*arguspb.TimeSeries
	for n := range 10 {
		tss = append(tss, ts([]string{"__name__", fmt.Sprintf("metric_%d", n), "instance", "host:9100", "job", "node"}, sample{int64(1000 + k), 1}))
	}
	return tss
}

// TestMemoryPerSmallTenant measures the heap of 1,000 tenant heads of 10
// series each, one sample per series, and requires at most
// maxBytesPerSmallTenant per tenant. The heads are built by newTenantHead,
// as the Ingester builds them (a tenant has no WAL or DB of its own): the
// series map, postings, series counts, metric children, rate window and
// series.
func TestMemoryPerSmallTenant(t *testing.T) {
	const tenants = 1000
	m := newMetrics(prometheus.NewRegistry())
	now := func() time.Time { return time.UnixMilli(1_000_000) }
	heads := make([]*tenantHead, tenants)
	var (
		cfg     Config
		lastRef atomic.Uint64
		sealed  atomic.Int64
	)
	sealed.Store(math.MinInt64)
	before := heapAlloc()
	for k := range heads {
		id := fmt.Sprintf("tenant-%d", k)
		h := newTenantHead(tenantOptions{id: id, cfg: &cfg, metrics: m, now: now, lastRef: &lastRef, sealed: &sealed, removedMaxT: math.MinInt64})
		h.maxT.Store(int64(1000 + k)) // With removedMaxT, keeps getOrCreate off the DB.
		for _, s := range smallTenantSeries(k) {
			var b labels.ScratchBuilder
			for _, l := range s.Labels {
				b.Add(l.Name, l.Value)
			}
			lset := b.Labels()
			ms, err := h.getOrCreate(hashLabels(lset), lset, nil, math.MaxInt64)
			require.NoError(t, err)
			ms.mu.Lock()
			ms.appendLocked(s.Samples[0].TimestampMs, s.Samples[0].Value, 1_000_000)
			ms.mu.Unlock()
		}
		h.rate.add(1_000_000, 10)
		heads[k] = h
	}
	perTenant := (heapAlloc() - before) / tenants
	runtime.KeepAlive(heads)
	t.Logf("%d bytes per tenant of 10 series", perTenant)
	require.LessOrEqual(t, perTenant, uint64(maxBytesPerSmallTenant))
}

// BenchmarkTenantMemory reports the heap per tenant of 10 series of a
// whole Ingester, WAL and chunk store included (bytes/tenant).
func BenchmarkTenantMemory(b *testing.B) {
	for b.Loop() {
		ing := startIngester(b, testConfig(b, b.TempDir()))
		const tenants = 200
		before := heapAlloc()
		for k := range tenants {
			push(b, ing, fmt.Sprintf("t%d", k), smallTenantSeries(k)...)
		}
		b.ReportMetric(float64(heapAlloc()-before)/tenants, "bytes/tenant")
		require.NoError(b, ing.Stopping(b.Context()))
	}
}
