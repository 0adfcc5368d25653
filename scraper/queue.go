package scraper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Queue is a Pusher backed by a write-ahead log on disk, as the queue of
// Prometheus's agent: Push writes the request to the log and returns; the
// queue's sender sends the log's requests in order to the next Pusher (a
// RemoteWriter), retrying while the receiver is unreachable or answers
// 5xx or 429, so that a scraper far from its storage loses nothing to an
// outage shorter than the log's bound, nor to its own kill -9: the next
// start sends what the last one had not (see segmentLog).
//
// The requests of a tenant among the next queueBatchBytes of the log are
// sent as one: the protobuf encoding of a WriteRequest is its repeated
// timeseries, so the concatenation of two encoded requests is the request
// holding both. Samples keep their order, per series as in the log.
//
// A request refused by a 4xx answer other than 429 is dropped and counted
// (a retry would be refused again); so are the oldest segments when the log
// grows beyond its bound.
//
// Queue is a service (Starting opens the log, Running sends, Stopping
// sends what it can within queueDrainTimeout and closes). Push is safe for
// concurrent use and returns an error before Starting and after Stopping.
type Queue struct {
	cfg     QueueConfig
	next    Pusher
	logger  *slog.Logger
	metrics *queueMetrics
	wake    chan struct{} // one slot: records were appended

	mu  sync.Mutex
	log *segmentLog // nil before Starting and after Stopping; guarded by mu
}

// QueueConfig configures a Queue.
type QueueConfig struct {
	Dir      string // the log's directory, owned by the queue
	MaxBytes int64  // bound of the log's unsent bytes; the oldest segments go beyond it
}

const (
	// queueBatchBytes bounds the compressed requests sent as one.
	queueBatchBytes = 2 << 20
	// queueDrainTimeout bounds how long Stopping sends; what is left is
	// sent at the next start.
	queueDrainTimeout = 5 * time.Second
	queueMinBackoff   = 100 * time.Millisecond
	queueMaxBackoff   = 5 * time.Second
)

// NewQueue returns a Queue to next. It does no I/O.
func NewQueue(cfg QueueConfig, next Pusher, logger *slog.Logger, reg prometheus.Registerer) *Queue {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Queue{cfg: cfg, next: next, logger: logger, metrics: newQueueMetrics(reg), wake: make(chan struct{}, 1)}
}

// Starting opens the log; requests a previous process left unsent are sent
// first.
func (q *Queue) Starting(context.Context) error {
	// Segments of a quarter of the bound, at most 16 MiB: the bound drops
	// whole segments, so a few of them make it a fine one.
	seg := min(q.cfg.MaxBytes/4, 16<<20)
	l, err := openLog(q.cfg.Dir, max(seg, 64<<10))
	if err != nil {
		return fmt.Errorf("scraper queue %s: %w", q.cfg.Dir, err)
	}
	q.mu.Lock()
	q.log = l
	q.metrics.bytes.Set(float64(l.total))
	q.mu.Unlock()
	if l.total > 0 {
		q.logger.Info("scraper queue: sending what the last run left", "dir", q.cfg.Dir, "bytes", l.total)
	}
	q.signal()
	return nil
}

// Push writes one request to the log. The caller's body is copied.
func (q *Queue) Push(_ context.Context, tenantID string, body []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.log == nil {
		return errors.New("scraper queue is not running")
	}
	if _, err := q.log.append(tenantID, body); err != nil {
		return fmt.Errorf("scraper queue: %w", err)
	}
	for q.log.total > q.cfg.MaxBytes {
		dropped, err := q.log.dropOldest()
		if err != nil {
			return fmt.Errorf("scraper queue: %w", err)
		}
		if dropped == 0 {
			break
		}
		q.metrics.droppedBytes.WithLabelValues("full").Add(float64(dropped))
		q.logger.Warn("scraper queue full: dropped its oldest segment", "dir", q.cfg.Dir, "bytes", dropped)
	}
	q.metrics.bytes.Set(float64(q.log.total))
	q.signal()
	return nil
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Running sends the log's requests until ctx ends.
func (q *Queue) Running(ctx context.Context) error {
	for {
		sent, err := q.sendBatch(ctx)
		if err != nil {
			return err
		}
		if sent {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		}
	}
}

// Stopping sends what is left for up to queueDrainTimeout (or ctx's
// deadline), then closes the log.
func (q *Queue) Stopping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queueDrainTimeout)
	defer cancel()
	for {
		sent, err := q.sendBatch(ctx)
		if err != nil || !sent || ctx.Err() != nil {
			break
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.log == nil {
		return nil
	}
	err := q.log.close()
	q.log = nil
	return err
}

// sendBatch sends the next batch, retrying until it is stored, refused or
// ctx ends, and acknowledges it. It returns whether it sent (or dropped) a
// batch, and an error only for a log that cannot be read or written.
func (q *Queue) sendBatch(ctx context.Context) (bool, error) {
	q.mu.Lock()
	if q.log == nil {
		q.mu.Unlock()
		return false, nil
	}
	b, err := q.log.read(queueBatchBytes)
	q.mu.Unlock()
	if errors.Is(err, errCorrupt) {
		q.metrics.droppedBytes.WithLabelValues("corrupt").Add(float64(b.dropped))
		q.logger.Warn("scraper queue: skipped the rest of a damaged segment", "err", err)
	} else if err != nil {
		return false, fmt.Errorf("scraper queue: %w", err)
	}
	if len(b.records) == 0 {
		return err != nil, nil
	}
	for _, g := range byTenant(b.records) {
		body, err := joinRequests(g)
		if err != nil {
			q.metrics.droppedRequests.WithLabelValues("corrupt").Add(float64(len(g)))
			q.logger.Warn("scraper queue: dropped requests that do not decode", "err", err)
		} else if !q.send(ctx, g[0].tenant, body, len(g)) {
			// ctx ended: the batch stays for the next run, which sends
			// again the tenants sent so far (duplicates of equal value).
			return false, nil
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.log == nil {
		return false, nil
	}
	if err := q.log.ack(b.num, b.end); err != nil {
		return false, fmt.Errorf("scraper queue: %w", err)
	}
	q.metrics.bytes.Set(float64(q.log.total))
	return true, nil
}

// send pushes body until it is stored or refused (true), or ctx ends
// (false), backing off between attempts.
func (q *Queue) send(ctx context.Context, tenantID string, body []byte, requests int) bool {
	backoff := queueMinBackoff
	for {
		err := q.next.Push(ctx, tenantID, body)
		switch {
		case err == nil:
			q.metrics.sentRequests.Add(float64(requests))
			return true
		case ctx.Err() != nil:
			return false
		case !retriable(err):
			q.metrics.droppedRequests.WithLabelValues("refused").Add(float64(requests))
			q.logger.Warn("scraper queue: the receiver refused scraped samples, dropped", "tenant", tenantID, "requests", requests, "err", err)
			return true
		}
		q.metrics.retries.Inc()
		q.logger.Debug("scraper queue: push failed, retrying", "tenant", tenantID, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, queueMaxBackoff)
	}
}

// byTenant splits records by tenant, each tenant's in their order (a
// series has one tenant, so its samples keep their order), the tenants in
// the order of their first record.
func byTenant(recs []record) [][]record {
	var groups [][]record
	index := map[string]int{}
	for _, r := range recs {
		i, ok := index[r.tenant]
		if !ok {
			i = len(groups)
			index[r.tenant] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

// joinRequests returns the snappy-compressed request holding the
// timeseries of every record's request, in order.
func joinRequests(recs []record) ([]byte, error) {
	if len(recs) == 1 {
		return recs[0].body, nil
	}
	var raw []byte
	for _, r := range recs {
		n, err := snappy.DecodedLen(r.body)
		if err != nil {
			return nil, err
		}
		raw = append(raw, make([]byte, n)...)
		if _, err := snappy.Decode(raw[len(raw)-n:], r.body); err != nil {
			return nil, err
		}
	}
	return snappy.Encode(nil, raw), nil
}

type queueMetrics struct {
	bytes           prometheus.Gauge
	sentRequests    prometheus.Counter
	retries         prometheus.Counter
	droppedRequests *prometheus.CounterVec
	droppedBytes    *prometheus.CounterVec
}

func newQueueMetrics(reg prometheus.Registerer) *queueMetrics {
	f := promauto.With(reg)
	return &queueMetrics{
		bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "argus_scraper_queue_bytes", Help: "Bytes of scraped requests in -scraper.wal-dir not yet sent.",
		}),
		sentRequests: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_scraper_queue_sent_requests_total", Help: "Scraped requests of the queue stored by -scraper.remote-write-url.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "argus_scraper_queue_retries_total", Help: "Sends of the queue that failed (unreachable, 5xx, 429) and were tried again.",
		}),
		droppedRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_scraper_queue_dropped_requests_total", Help: "Scraped requests the queue dropped, by reason: refused (a 4xx answer other than 429), corrupt (a request that does not decode).",
		}, []string{"reason"}),
		droppedBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "argus_scraper_queue_dropped_bytes_total", Help: "Bytes of the queue's log dropped unsent, by reason: full (beyond -scraper.wal-max-bytes), corrupt (a damaged segment's rest).",
		}, []string{"reason"}),
	}
}
