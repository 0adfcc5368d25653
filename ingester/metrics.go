package ingester

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values created at startup, so that their series exist at zero.
const (
	queryTypeSeries    = "series"
	queryTypeNames     = "label_names"
	queryTypeValues    = "label_values"
	queryTypeExemplars = "exemplars"
	queryTypeMetadata  = "metadata"
	truncateOutcomeOK  = "success"
	truncateOutcomeErr = "failure"
)

// metrics are the ingester's metrics. A nil registerer is allowed.
type metrics struct {
	samplesRejected   *prometheus.CounterVec
	rejected          [numRejectKinds]prometheus.Counter // children of samplesRejected
	chunksPersisted   prometheus.Counter
	bytesPersisted    prometheus.Counter
	flushDuration     prometheus.Histogram
	flushFailures     prometheus.Counter
	replayDuration    prometheus.Gauge
	replaySamples     prometheus.Counter
	replaySkipped     *prometheus.CounterVec
	walCorruptions    prometheus.Counter
	walTruncations    *prometheus.CounterVec
	walFailures       prometheus.Counter
	seriesGCed        prometheus.Counter
	queries           *prometheus.CounterVec
	tenants           prometheus.Gauge
	pendingFlushQueue prometheus.Gauge
	dbFailures        *prometheus.CounterVec
	chunksExpired     prometheus.Counter
	walFsyncs         prometheus.Counter
	// persistedDuplicates counts retried samples found persisted (retry.go).
	persistedDuplicates prometheus.Counter
	// headWalks counts the walks over every series of a head, by walk
	// (walks.go): they run only when their answer can have changed.
	headWalks *prometheus.CounterVec

	tenantFailed          *prometheus.GaugeVec
	tenantFailures        prometheus.Counter
	tenantRefusals        prometheus.Counter
	tenantsClosed         prometheus.Counter
	instanceLimitRefusals *prometheus.CounterVec

	exemplarsAppended prometheus.Counter
	exemplarsRejected [numExemplarRejects]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		samplesRejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_ingester_samples_rejected_total",
			Help: "Samples rejected by Push, by reason.",
		}, []string{"reason"}),
		queries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_ingester_queries_total",
			Help: "Read requests served, by type.",
		}, []string{"type"}),
		tenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ingester_tenants",
			Help: "Tenants with an open head.",
		}),
		pendingFlushQueue: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_ingester_flush_queue_length",
			Help: "Series with finished chunks waiting for the next flush.",
		}),
	}
	m.addStorageMetrics(f)
	m.addLifecycleMetrics(f)
	m.addExemplarMetrics(f)
	for k := range numRejectKinds {
		m.rejected[k] = m.samplesRejected.WithLabelValues(k.label())
	}
	for _, r := range []string{"persisted", "unknown_series", "retention"} {
		m.replaySkipped.WithLabelValues(r)
	}
	for _, o := range []string{truncateOutcomeOK, truncateOutcomeErr} {
		m.walTruncations.WithLabelValues(o)
	}
	for _, q := range []string{queryTypeSeries, queryTypeNames, queryTypeValues, queryTypeExemplars, queryTypeMetadata} {
		m.queries.WithLabelValues(q)
	}
	return m
}

// addStorageMetrics creates the metrics of persistence and of the WAL.
func (m *metrics) addStorageMetrics(f promauto.Factory) {
	m.chunksPersisted = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_chunks_persisted_total",
		Help: "Chunks written to the DB.",
	})
	m.bytesPersisted = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_persisted_chunk_bytes_total",
		Help: "Encoded chunk bytes written to the DB.",
	})
	m.flushDuration = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "argus_ingester_flush_duration_seconds",
		Help:    "Duration of one flush of finished chunks of one tenant to the DB.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	m.flushFailures = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_flush_failures_total",
		Help: "Flushes of a tenant that failed to write the DB; the chunks stay in memory and in the WAL and are retried.",
	})
	m.replayDuration = f.NewGauge(prometheus.GaugeOpts{
		Name: "argus_ingester_wal_replay_duration_seconds",
		Help: "Duration of the WAL replay at the last start.",
	})
	m.replaySamples = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_wal_replay_samples_total",
		Help: "Samples replayed from the WAL into the heads.",
	})
	m.replaySkipped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_wal_replay_skipped_samples_total",
		Help: "WAL samples skipped by replay: already persisted or duplicate, of a series the WAL no longer holds, or past the tenant's retention.",
	}, []string{"reason"})
	m.walCorruptions = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_wal_corruptions_total",
		Help: "WAL corruptions found and repaired at replay; records after the corruption are lost.",
	})
	m.walTruncations = f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_wal_truncations_total",
		Help: "WAL checkpoints and truncations, by outcome.",
	}, []string{"outcome"})
	m.walFailures = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_wal_write_failures_total",
		Help: "WAL writes or fsyncs that failed; the ingester refuses pushes until a restart.",
	})
	m.dbFailures = f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_db_failures_total",
		Help: "Background DB operations that failed, by operation (compact, retention); the next period retries.",
	}, []string{"operation"})
	for _, op := range []string{"compact", "retention"} {
		m.dbFailures.WithLabelValues(op)
	}
	m.persistedDuplicates = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_persisted_duplicate_samples_total",
		Help: "Samples of retried pushes that were exact duplicates of persisted samples: accepted, not stored again.",
	})
	m.walFsyncs = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_wal_fsyncs_total",
		Help: "Fsyncs of the WAL; with -ingester.wal-sync-period=0 one covers every push that wrote while the previous one ran.",
	})
	m.chunksExpired = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_expired_chunks_total",
		Help: "In-memory chunks dropped because they ended before their tenant's retention period.",
	})
	m.headWalks = f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_head_walks_total",
		Help: "Walks over every series of a tenant head, by walk: min_memory_time (the seal watermark, WAL checkpoints) and idle_chunks (the cut of idle open chunks). Each runs only when its answer can have changed since the last.",
	}, []string{"walk"})
	m.seriesGCed = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_series_removed_total",
		Help: "Idle series removed from the heads (their data stays in the DB).",
	})
}

// addLifecycleMetrics creates the metrics of tenant failures, idle tenants
// and instance limits.
func (m *metrics) addLifecycleMetrics(f promauto.Factory) {
	m.tenantFailed = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "argus_ingester_tenant_failed",
		Help: "1 while the tenant's storage fails (a flush of its chunks failed) and its pushes are refused; absent otherwise. Alert on it.",
	}, []string{"tenant"})
	m.tenantFailures = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_tenant_failures_total",
		Help: "Times a tenant was marked failed because its storage failed.",
	})
	m.tenantRefusals = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_tenant_failed_refusals_total",
		Help: "Pushes refused because their tenant was failed.",
	})
	m.tenantsClosed = f.NewCounter(prometheus.CounterOpts{
		Name: "argus_ingester_idle_tenants_closed_total",
		Help: "Tenant heads closed after -ingester.tenant-idle-timeout without a push or a query and without series.",
	})
	m.instanceLimitRefusals = f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_ingester_instance_limit_refusals_total",
		Help: "Pushes refused by an -ingester.instance-limits.* limit, by limit.",
	}, []string{"limit"})
	for _, l := range []string{"max_inflight_push_requests", "max_series"} {
		m.instanceLimitRefusals.WithLabelValues(l)
	}
}
