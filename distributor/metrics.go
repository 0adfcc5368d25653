package distributor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// metrics are the distributor's metrics. The ingester label (a gRPC address)
// is bounded by the ingesters of the ring: an ingester's series are deleted
// once it left the ring. The tenant label is on the reviewed list of
// per-tenant metrics: received samples and requests, and discarded samples;
// a tenant's series are deleted once it has been idle for
// -distributor.idle-tenant-timeout (see sweep).
type metrics struct {
	receivedSamples      *prometheus.CounterVec
	receivedRequests     *prometheus.CounterVec
	discardedSamples     *prometheus.CounterVec
	receivedExemplars    prometheus.Counter
	receivedMetadata     prometheus.Counter
	discardedExemplars   [numExemplarReasons]prometheus.Counter
	pushDuration         *prometheus.HistogramVec
	ingesterPushFailures *prometheus.CounterVec
	ingesterPushDuration *prometheus.HistogramVec
	quorumFailures       prometheus.Counter
	stragglers           *prometheus.CounterVec

	// tenants caches, per tenant (string), its *tenantMetrics.
	tenants sync.Map
	// ingesterSet holds the ingester addresses (string) that have series.
	ingesterSet sync.Map
}

// tenantMetrics are the counters of one tenant, resolved once so that the hot
// path does no label lookup.
type tenantMetrics struct {
	receivedSamples  prometheus.Counter
	receivedRequests prometheus.Counter
	discarded        [numReasons]prometheus.Counter
	// lastSeen is the time of the tenant's last push, Unix nanoseconds of
	// the distributor's clock.
	lastSeen atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		receivedSamples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_distributor_received_samples_total",
			Help: "Samples (float and native histogram) decoded from pushes, before validation.",
		}, []string{"tenant"}),
		receivedRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_distributor_received_requests_total",
			Help: "Push requests received, whatever their outcome.",
		}, []string{"tenant"}),
		discardedSamples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_discarded_samples_total",
			Help: "Samples not stored, by reason: the distributor's validation and the ingesters' rejections.",
		}, []string{"reason", "tenant"}),
		receivedExemplars: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_distributor_received_exemplars_total",
			Help: "Exemplars decoded from pushes, before validation.",
		}),
		receivedMetadata: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_distributor_received_metadata_total",
			Help: "Metric metadata entries decoded from pushes, before validation.",
		}),
		discardedExemplars: newDiscardedExemplars(f),
		pushDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "argus_distributor_push_duration_seconds",
			Help:                        "Time to handle a push request, from admission to the answer, by HTTP status.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"status_code"}),
		ingesterPushFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_distributor_ingester_push_failures_total",
			Help: "Pushes to an ingester that failed with an error (its samples were not stored), by ingester address.",
		}, []string{"ingester"}),
		ingesterPushDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "argus_distributor_ingester_push_duration_seconds",
			Help:                        "Time of one push to one ingester, failed or not, by ingester address.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"ingester"}),
		quorumFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_distributor_replication_quorum_failures_total",
			Help: "Series of a push that could not reach a write quorum of replicas, because the ring had too few healthy ones or pushes to them failed; the push was answered 5xx.",
		}),
		stragglers: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_distributor_straggler_pushes_total",
			Help: "Ingester pushes that returned after their request was answered (its series had their outcome without them), by outcome: ok, rejected (the ingester refused some samples), or the failure reason: deadline_exceeded, unavailable, canceled, error.",
		}, []string{"outcome"}),
	}
}

// forIngester notes that addr has series, for deleteIngester.
// It is on every push: a lock-free load once the address is known.
func (m *metrics) forIngester(addr string) {
	if _, ok := m.ingesterSet.Load(addr); !ok {
		m.ingesterSet.Store(addr, struct{}{})
	}
}

// ingesters returns the addresses that have series.
func (m *metrics) ingesters() []string {
	var out []string
	m.ingesterSet.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}

// deleteIngester deletes the series of an ingester that left the ring.
func (m *metrics) deleteIngester(addr string) {
	m.ingesterSet.Delete(addr)
	m.ingesterPushDuration.DeleteLabelValues(addr)
	m.ingesterPushFailures.DeleteLabelValues(addr)
}

// deleteTenant deletes the series of a tenant. A push of the tenant racing
// with it may count into a deleted series and lose that count; the tenant
// was idle for the whole timeout before.
func (m *metrics) deleteTenant(tenant string) {
	m.receivedSamples.DeleteLabelValues(tenant)
	m.receivedRequests.DeleteLabelValues(tenant)
	for r := range numReasons { // Not DeletePartialMatch: it scans every series.
		m.discardedSamples.DeleteLabelValues(r.label(), tenant)
	}
}

// countStraggler counts the answer of a push that returned after its request
// was answered.
func (m *metrics) countStraggler(b *batch) {
	m.stragglers.WithLabelValues(stragglerOutcome(b)).Inc()
}

// stragglerOutcome is the outcome label of a straggler's answer.
func stragglerOutcome(b *batch) string {
	switch {
	case b.err == nil && (b.resp.GetRejectedSamples() != 0 || len(b.resp.GetRejected()) != 0):
		return "rejected"
	case b.err == nil:
		return "ok"
	case errors.Is(b.err, context.DeadlineExceeded) || status.Code(b.err.err) == codes.DeadlineExceeded:
		return "deadline_exceeded"
	case errors.Is(b.err, context.Canceled) || status.Code(b.err.err) == codes.Canceled:
		return "canceled"
	case transient(b.err.err):
		return "unavailable"
	default:
		return "error"
	}
}

// forTenant returns the counters of tenant. The first time a tenant is seen,
// every discard reason is created at zero for it, so that its series exist
// before the first discard (reason values cannot be created at startup,
// because the tenants are not known then).
func (m *metrics) forTenant(tenant string, now time.Time) *tenantMetrics {
	if v, ok := m.tenants.Load(tenant); ok {
		tm := v.(*tenantMetrics)
		tm.lastSeen.Store(now.UnixNano())
		return tm
	}
	tm := &tenantMetrics{
		receivedSamples:  m.receivedSamples.WithLabelValues(tenant),
		receivedRequests: m.receivedRequests.WithLabelValues(tenant),
	}
	for r := range numReasons {
		tm.discarded[r] = m.discardedSamples.WithLabelValues(r.label(), tenant)
	}
	tm.lastSeen.Store(now.UnixNano())
	actual, _ := m.tenants.LoadOrStore(tenant, tm)
	return actual.(*tenantMetrics)
}
