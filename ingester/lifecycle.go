package ingester

import (
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// errHeadClosed means the head a push resolved was closed as idle since:
// the push opens the tenant again and retries (see Ingester.Push).
var errHeadClosed = fmt.Errorf("%w: tenant head closed", ErrNotReady)

// ErrTenantFailed means the tenant's storage failed (its chunks could not be
// persisted): its pushes are refused, every other tenant's are not, until a
// flush of its chunks succeeds again (retried every -ingester.flush-period).
var ErrTenantFailed = errors.New("tenant storage failed")

// ErrInstanceLimit means a push was refused by an instance limit of the
// ingester (-ingester.instance-limits.*): it is overloaded, and the sender
// retries later.
var ErrInstanceLimit = errors.New("ingester instance limit reached")

// InstanceLimits bound what one ingester takes, whatever the tenants, so that
// an overload is answered with a retryable refusal instead of growing memory
// until the process is killed. 0 disables a limit.
type InstanceLimits struct {
	MaxInflightPushRequests int `yaml:"max_inflight_push_requests"`
	MaxSeries               int `yaml:"max_series"`
}

// tenantFailure is why a tenant is failed, and since when.
type tenantFailure struct {
	err   error
	since time.Time
}

// touch records a push or a query of the tenant at the Ingester's clock, for
// closeIdleTenants.
func (h *tenantHead) touch() {
	h.lastUsed.Store(h.nowMs())
}

// failure returns the error that refuses the tenant's pushes while its
// storage is failed, or nil.
func (h *tenantHead) failure() error {
	f := h.failed.Load()
	if f == nil {
		return nil
	}
	return apierror.Errorf(apierror.IngesterTenantFailed, "tenant %s refused since %s: %w: %v",
		h.id, f.since.UTC().Format(time.RFC3339), ErrTenantFailed, f.err)
}

// setFailed marks the tenant failed by err (nil: healthy again), updating
// argus_ingester_tenant_failed and logging the transitions only.
func (h *tenantHead) setFailed(err error) {
	if err == nil {
		if h.failed.Swap(nil) != nil {
			h.metrics.tenantFailed.DeleteLabelValues(h.id)
			h.logger.Info("tenant storage recovered: pushes accepted again")
		}
		return
	}
	if h.failed.Swap(&tenantFailure{err: err, since: h.now()}) == nil {
		h.metrics.tenantFailures.Inc()
		h.metrics.tenantFailed.WithLabelValues(h.id).Set(1)
		h.logger.Error("tenant storage failed: its pushes are refused until a flush succeeds", "err", err,
			"see_metric", "argus_ingester_tenant_failed")
	}
}

// FailedTenants returns the tenants whose storage is failed, with why.
func (i *Ingester) FailedTenants() map[string]string {
	out := map[string]string{}
	for _, h := range i.tenantList() {
		if f := h.failed.Load(); f != nil {
			out[h.id] = f.err.Error()
		}
	}
	return out
}

// closeIdleTenants drops the heads of the tenants that got no push and no
// query for -ingester.tenant-idle-timeout and hold no series: their data is
// in the DB (and their removedMaxT in removedMaxTFile), so a later push or
// query opens them again as a restart would. It frees the head's maps and
// deletes its per-tenant metric series. The caller holds truncMu (aliases).
// It returns how many heads it closed.
func (i *Ingester) closeIdleTenants() int {
	if i.cfg.TenantIdleTimeout <= 0 {
		return 0
	}
	idleBefore := i.now().Add(-i.cfg.TenantIdleTimeout).UnixMilli()
	var idle []*tenantHead
	for _, h := range i.tenantList() {
		if h.lastUsed.Load() < idleBefore && h.failed.Load() == nil {
			idle = append(idle, h)
		}
	}
	if len(idle) == 0 {
		return 0
	}
	i.openMu.Lock()
	defer i.openMu.Unlock()
	n := 0
	for _, h := range idle {
		if !h.closeIfEmpty(idleBefore) {
			continue
		}
		i.tenantsMu.Lock()
		if i.tenants[h.id] == h {
			delete(i.tenants, h.id)
		}
		i.tenantsMu.Unlock()
		n++
	}
	if n > 0 {
		i.tenantsMu.Lock()
		if len(i.tenants) < i.tenantsPeak/4 {
			// Not maps.Clone, which keeps the capacity.
			m := make(map[string]*tenantHead, len(i.tenants))
			maps.Copy(m, i.tenants)
			i.tenants = m
			i.tenantsPeak = len(i.tenants)
		}
		i.metrics.tenants.Set(float64(len(i.tenants)))
		i.tenantsMu.Unlock()
		i.metrics.tenantsClosed.Add(float64(n))
		i.logger.Info("closed idle tenants", "closed", n, "idle_timeout", i.cfg.TenantIdleTimeout)
	}
	return n
}

// closeIfEmpty closes the head if it holds no series, nothing to flush and
// no replay alias, and got no push or query since idleBefore. A push that
// resolved the head before sees it closed and retries on a new head.
func (h *tenantHead) closeIfEmpty(idleBefore int64) bool {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	h.createMu.Lock()
	defer h.createMu.Unlock()
	h.pendingMu.Lock()
	pending := len(h.pending)
	h.pendingMu.Unlock()
	if h.closed.Load() || h.counts.total > 0 || pending > 0 || len(h.aliases) > 0 || h.lastUsed.Load() >= idleBefore {
		return false
	}
	h.closed.Store(true)
	return true
}

// inflightGuard counts the pushes in flight against
// -ingester.instance-limits.max-inflight-push-requests.
type inflightGuard struct {
	n   atomic.Int64
	max int64
}

// acquire admits a push, or returns an error if max pushes are in flight.
// A push admitted must release.
func (g *inflightGuard) acquire() error {
	n := g.n.Add(1)
	if g.max > 0 && n > g.max {
		g.n.Add(-1)
		return apierror.Errorf(apierror.IngesterOverloaded, "%w: %d push requests in flight (%s)",
			ErrInstanceLimit, g.max, apierror.LimitText("ingester.instance-limits.max-inflight-push-requests", g.max))
	}
	return nil
}

func (g *inflightGuard) release() { g.n.Add(-1) }

// instanceSeriesError refuses a new series over
// -ingester.instance-limits.max-series.
func instanceSeriesError(limit int) error {
	return apierror.Errorf(apierror.IngesterOverloaded, "%w: the ingester holds %d in-memory series (%s)",
		ErrInstanceLimit, limit, apierror.LimitText("ingester.instance-limits.max-series", limit))
}

// tenantCollector exports the per-tenant series of the open heads, read at
// scrape time: a tenant's series exist exactly while its head is open, and
// closing a head leaves nothing behind (a metric vector's map would keep
// the memory of every tenant it ever held).
type tenantCollector struct {
	i                      *Ingester
	memorySeries, appended *prometheus.Desc
}

func newTenantCollector(i *Ingester) *tenantCollector {
	return &tenantCollector{
		i: i,
		memorySeries: prometheus.NewDesc("argus_ingester_memory_series",
			"Series held in the in-memory heads, by tenant (tenants with an open head).", []string{"tenant"}, nil),
		appended: prometheus.NewDesc("argus_ingester_samples_appended_total",
			"Samples appended to the heads (and so to the WAL), by tenant, since its head was opened.", []string{"tenant"}, nil),
	}
}

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.memorySeries
	ch <- c.appended
}

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.i.tenantList() {
		ch <- prometheus.MustNewConstMetric(c.memorySeries, prometheus.GaugeValue, float64(h.memorySeries()), h.id)
		ch <- prometheus.MustNewConstMetric(c.appended, prometheus.CounterValue, float64(h.appended.Load()), h.id)
	}
}

// TenantStatus is the state of one open tenant head, for /ingester/tenants.
type TenantStatus struct {
	ID           string
	MemorySeries int
	// Failed is why the tenant's pushes are refused, "" if they are not.
	Failed string
}

// TenantStatuses returns the state of every open tenant head, by tenant.
func (i *Ingester) TenantStatuses() []TenantStatus {
	hs := i.tenantList()
	out := make([]TenantStatus, 0, len(hs))
	for _, h := range hs {
		st := TenantStatus{ID: h.id, MemorySeries: h.memorySeries()}
		if f := h.failed.Load(); f != nil {
			st.Failed = f.err.Error()
		}
		out = append(out, st)
	}
	return out
}
