package querier

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	queryDuration   *prometheus.HistogramVec
	seriesFetched   prometheus.Counter
	chunksFetched   prometheus.Counter
	localReads      prometheus.Counter
	queriesRejected *prometheus.CounterVec // by reason (rejectReasons)
}

// newMetrics registers the querier's metrics on reg; nil reg is allowed.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		queryDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "argus_querier_query_duration_seconds",
			Help:                            "Time to answer a Prometheus API request, by endpoint (the route, e.g. /api/v1/query_range).",
			Buckets:                         prometheus.DefBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"endpoint"}),
		seriesFetched: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_querier_series_fetched_total",
			Help: "Series received from series sources.",
		}),
		chunksFetched: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_querier_chunks_fetched_total",
			Help: "Chunks received from series sources.",
		}),
		localReads: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_querier_local_reads_total",
			Help: "Reads (series, label names, label values) of the ingester of this process made in-process rather than over gRPC (-querier.local-ingester-reads).",
		}),
		queriesRejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_querier_queries_rejected_total",
			Help: "API requests refused or stopped by a per-tenant query limit, by reason: max_fetched_series, max_fetched_chunks, max_query_length, timeout.",
		}, []string{"reason"}),
	}
	for _, r := range rejectReasons {
		m.queriesRejected.WithLabelValues(r) // Every reason exists at zero.
	}
	return m
}

// instrument is a route.Router instrumentation hook: it times every request
// of the route named handlerName. Route names are the fixed paths registered
// by the Prometheus API, so the endpoint label is bounded.
func (m *metrics) instrument(handlerName string, next http.HandlerFunc) http.HandlerFunc {
	obs := m.queryDuration.WithLabelValues(apiRoutePrefix + handlerName)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next(w, r)
		obs.Observe(time.Since(start).Seconds())
	}
}
