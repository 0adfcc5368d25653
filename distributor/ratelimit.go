package distributor

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/limits"
)

// rateWindow is the time constant of the per-tenant ingestion rate average
// reported by argus_distributor_ingestion_rate_samples_per_second.
const rateWindow = time.Minute

// rateLimiter holds one token bucket per tenant. A tenant's limit is global:
// each distributor enforces -distributor.ingestion-rate-limit divided by the
// healthy distributors it sees in the gossip (as Mimir's "global" strategy
// does); the burst is not divided, so that one batch of the size a sender
// uses always fits. Safe for concurrent use.
type rateLimiter struct {
	buckets sync.Map // tenant (string) to *tokenBucket
}

// tokenBucket is a token bucket that may go into debt: a push larger than
// the burst passes when the bucket is full, and the debt delays the next
// ones. Without debt a push larger than the burst would be refused forever,
// and a 429 is retried forever. It also keeps the tenant's accepted rate.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64   // guarded by mu; may be negative (debt)
	last   time.Time // guarded by mu: last refill
	// rate is an exponentially weighted average of accepted samples per
	// second with time constant rateWindow, as of rateAt. Guarded by mu.
	rate   float64
	rateAt time.Time
}

func (l *rateLimiter) bucket(tenant string, burst float64, now time.Time) *tokenBucket {
	if b, ok := l.buckets.Load(tenant); ok {
		return b.(*tokenBucket)
	}
	b, _ := l.buckets.LoadOrStore(tenant, &tokenBucket{tokens: burst, last: now, rateAt: now})
	return b.(*tokenBucket)
}

// idle reports whether the tenant's bucket may be forgotten at now: it is
// absent, or full again (a bucket in debt is kept, so that forgetting it
// cannot raise the tenant's rate). Its average rate, still decaying, is
// forgotten with it: the tenant pushed nothing for the idle timeout.
func (l *rateLimiter) idle(tenant string, now time.Time, lim *limits.Limits) bool {
	v, ok := l.buckets.Load(tenant)
	if !ok {
		return true
	}
	b := v.(*tokenBucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	return lim.IngestionRate <= 0 || b.tokens+now.Sub(b.last).Seconds()*lim.IngestionRate >= float64(lim.IngestionBurstSize)
}

// take takes n samples from the tenant's bucket refilled at rate per second
// up to burst. It returns 0 if they fit, else how long until they would. A
// rate of 0 means unlimited.
func (b *tokenBucket) take(now time.Time, n, rate, burst float64) (wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rate > 0 {
		if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
			b.tokens = math.Min(burst, b.tokens+elapsed*rate)
		}
		b.last = now
		need := math.Min(n, burst)
		if b.tokens < need {
			return time.Duration((need - b.tokens) / rate * float64(time.Second))
		}
		b.tokens -= n
	}
	b.rate = b.rateAtLocked(now) + n/rateWindow.Seconds()
	b.rateAt = now
	return 0
}

// rateAtLocked is the average accepted rate decayed to now.
func (b *tokenBucket) rateAtLocked(now time.Time) float64 {
	dt := now.Sub(b.rateAt).Seconds()
	if dt <= 0 {
		return b.rate
	}
	return b.rate * math.Exp(-dt/rateWindow.Seconds())
}

// Rate returns the tenant's accepted samples per second, averaged over about
// a minute.
func (b *tokenBucket) Rate(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rateAtLocked(now)
}

// admitRate charges the valid samples of a push to the tenant's rate limit
// and returns a *rateLimitedError (429) naming the limit in force, the tenant
// and the first series of the push (formatted only then) when they do not
// fit.
func (d *Distributor) admitRate(tenantID string, lim *limits.Limits, samples int, firstSeries func() string) error {
	distributors := max(1, d.distributors.HealthyMembers(roleDistributor))
	rate := lim.IngestionRate / float64(distributors)
	burst := float64(lim.IngestionBurstSize)
	now := d.now()
	wait := d.rates.bucket(tenantID, burst, now).take(now, float64(samples), rate, burst)
	if wait == 0 {
		return nil
	}
	retry := time.Duration(math.Ceil(wait.Seconds())) * time.Second
	return &rateLimitedError{
		retryAfter: retry,
		msg: fmt.Sprintf("ingestion rate limit %s (%.6g samples/s on each of %d distributors) with burst %s exceeded by a push of %d samples, the first series %s; retry after %s",
			apierror.LimitText("distributor.ingestion-rate-limit", lim.IngestionRate), rate, distributors,
			apierror.LimitText("distributor.ingestion-burst-size", lim.IngestionBurstSize), samples, firstSeries(), retry),
	}
}

// roleDistributor is the role distributors gossip (ring.Deps.Roles).
const roleDistributor = "distributor"

// rateCollector exports each tenant's average accepted rate.
type rateCollector struct {
	l    *rateLimiter
	now  func() time.Time
	desc *prometheus.Desc
}

func newRateCollector(l *rateLimiter, now func() time.Time) *rateCollector {
	return &rateCollector{l: l, now: now, desc: prometheus.NewDesc(
		"argus_distributor_ingestion_rate_samples_per_second",
		"Samples per second this distributor accepted for the tenant, averaged over about a minute.",
		[]string{"tenant"}, nil)}
}

func (c *rateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *rateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	c.l.buckets.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v.(*tokenBucket).Rate(now), k.(string))
		return true
	})
}
