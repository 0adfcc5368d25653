package ingester

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// UserStats reports the usage of the tenant of ctx on this ingester: its
// in-memory series (replicas included), the samples per second appended for
// it over about the last minute (see rateWindow), and its local share of
// -ingester.max-global-series-per-user (0: unlimited), computed from the
// limits and the ring now. A tenant that never pushed here has no series and
// no rate, but its share is still reported (0 would mean unlimited). It
// takes the tenant's createMu briefly, never appendMu, so it does not wait
// for WAL writes.
func (i *Ingester) UserStats(ctx context.Context, _ *arguspb.UserStatsRequest) (*arguspb.UserStatsResponse, error) {
	if !i.ready.Load() {
		return nil, grpcError(ErrNotReady)
	}
	id, err := tenantOf(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	share := i.limiter.local(id).perUser.local
	resp := &arguspb.UserStatsResponse{LocalSeriesLimit: int64(share)}
	if h := i.getTenant(id); h != nil {
		resp.MemorySeries = int64(h.memorySeries())
		resp.IngestionRate = h.rate.perSecond(h.nowMs())
	}
	return resp, nil
}

// localLimitCollector exports argus_ingester_local_series_limit: each open
// tenant's share of -ingester.max-global-series-per-user (0: unlimited),
// computed at scrape time from the limits and the ring in force then, so
// that a reload or a ring change shows without a push.
type localLimitCollector struct {
	i    *Ingester
	desc *prometheus.Desc
}

func newLocalLimitCollector(i *Ingester) *localLimitCollector {
	return &localLimitCollector{i: i, desc: prometheus.NewDesc("argus_ingester_local_series_limit",
		"This ingester's share of the tenant's -ingester.max-global-series-per-user (0: unlimited), by tenant.",
		[]string{"tenant"}, nil)}
}

func (c *localLimitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *localLimitCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.i.tenantList() {
		share := c.i.limiter.local(h.id).perUser.local
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(share), h.id)
	}
}

// memorySeries returns the number of series in the head.
func (h *tenantHead) memorySeries() int {
	h.createMu.Lock()
	defer h.createMu.Unlock()
	return h.counts.total
}

const (
	// rateBucketMs is the width of one bucket of a rateWindow.
	rateBucketMs = 5_000
	// rateBuckets is how many complete buckets a rateWindow averages over:
	// 12 of 5s, one minute.
	rateBuckets = 12
)

// rateWindow counts samples in buckets of rateBucketMs of the head's clock,
// to report the samples per second of the last minute. It has no goroutine:
// add and perSecond first clear the buckets that time has left behind, so a
// tenant that stops pushing reads 0 after a minute. Safe for concurrent use;
// it blocks only on its own short lock.
type rateWindow struct {
	mu sync.Mutex
	// buckets are indexed by bucket number (time / rateBucketMs) modulo
	// their count: the rateBuckets complete ones and the current one.
	buckets [rateBuckets + 1]int64 // guarded by mu
	current int64                  // guarded by mu: the bucket number of the newest bucket
}

// add counts n samples appended at nowMs (Unix milliseconds).
func (r *rateWindow) add(nowMs, n int64) {
	r.mu.Lock()
	r.advanceLocked(nowMs)
	r.buckets[bucketSlot(r.current)] += n
	r.mu.Unlock()
}

// perSecond returns the samples per second of the rateBuckets complete
// buckets before nowMs (the current, partial bucket is left out).
func (r *rateWindow) perSecond(nowMs int64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advanceLocked(nowMs)
	var sum int64
	for k, n := range r.buckets {
		if k != bucketSlot(r.current) {
			sum += n
		}
	}
	return float64(sum) / (rateBuckets * rateBucketMs / 1000)
}

// advanceLocked makes the bucket of nowMs the current one, clearing the
// buckets in between. A clock that goes back keeps the current bucket.
func (r *rateWindow) advanceLocked(nowMs int64) {
	b := floorDiv(nowMs, rateBucketMs)
	if b <= r.current {
		return
	}
	for k := r.current + 1; k <= b && k <= r.current+int64(len(r.buckets)); k++ {
		r.buckets[bucketSlot(k)] = 0
	}
	r.current = b
}

// bucketSlot is the index in rateWindow.buckets of bucket number b.
func bucketSlot(b int64) int {
	const n = rateBuckets + 1
	return int(((b % n) + n) % n)
}

// floorDiv is a / b rounded down, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
