package ingester

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// AdminServer serves arguspb.IngesterAdminServer for an Ingester: the
// deletion of a tenant's series (tombstones) and the cardinality of its
// in-memory head (status.go). All methods are safe for concurrent use.
type AdminServer struct {
	arguspb.UnimplementedIngesterAdminServer
	i *Ingester
}

var _ arguspb.IngesterAdminServer = (*AdminServer)(nil)

// AdminServer returns the admin gRPC server of i, to register next to i.
func (i *Ingester) AdminServer() *AdminServer { return &AdminServer{i: i} }

// adminHead returns the head of the tenant of ctx, or nil if the tenant
// has never pushed here.
func (a *AdminServer) adminHead(ctx context.Context) (*tenantHead, error) {
	if !a.i.ready.Load() {
		return nil, ErrNotReady
	}
	id, err := tenantOf(ctx)
	if err != nil {
		return nil, err
	}
	return a.i.getTenant(id), nil
}

// DeleteSeries records a tombstone for the tenant of ctx: from the moment
// it returns, no read of this ingester returns the samples in the range of
// the series that match. The range is clamped to the newest sample here of
// the matching series, as Prometheus clamps a deletion to each series' own
// samples, so that what is pushed afterwards is not deleted (with an open
// end, the default, every later sample would be, for ever). A tenant
// without matching data here records nothing. It returns once the
// tombstone is durable.
func (a *AdminServer) DeleteSeries(ctx context.Context, req *arguspb.DeleteSeriesRequest) (*arguspb.DeleteSeriesResponse, error) {
	t, err := tombstoneOf(req)
	if err != nil {
		return nil, grpcError(err)
	}
	if !a.i.ready.Load() {
		return nil, grpcError(ErrNotReady)
	}
	id, err := tenantOf(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	newest, err := a.newestMatching(ctx, id, t.Matchers)
	if err != nil {
		return nil, grpcError(err)
	}
	if newest == math.MinInt64 || t.MinTime > newest {
		return &arguspb.DeleteSeriesResponse{}, nil // Nothing here to delete.
	}
	t.MaxTime = min(t.MaxTime, newest)
	if err := a.i.db.DeleteSeries(id, t); err != nil {
		return nil, grpcError(fmt.Errorf("record tombstone: %w", err))
	}
	return &arguspb.DeleteSeriesResponse{}, nil
}

// tombstoneOf validates a deletion request as Prometheus's selector parser
// would: at least one matcher, not all matching the empty value (that
// would select every series, even the ones without the labels), and a
// range whose start is not after its end.
func tombstoneOf(req *arguspb.DeleteSeriesRequest) (storage.Tombstone, error) {
	ms, err := toMatchers(req.GetMatchers())
	if err != nil {
		return storage.Tombstone{}, err
	}
	if len(ms) == 0 {
		return storage.Tombstone{}, fmt.Errorf("%w: a deletion needs a matcher", ErrInvalidAdminRequest)
	}
	if allMatchEmpty(ms) {
		return storage.Tombstone{}, fmt.Errorf("%w: the matchers all match the empty value, which selects every series", ErrInvalidAdminRequest)
	}
	if req.GetMinTimeMs() > req.GetMaxTimeMs() {
		return storage.Tombstone{}, fmt.Errorf("%w: start %d is after end %d", ErrInvalidAdminRequest, req.GetMinTimeMs(), req.GetMaxTimeMs())
	}
	return storage.Tombstone{MinTime: req.GetMinTimeMs(), MaxTime: req.GetMaxTimeMs(), Matchers: ms}, nil
}

func allMatchEmpty(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches("") {
			return false
		}
	}
	return true
}

// newestMatching returns the time of the newest sample here of tenant's
// series that match ms, in memory or persisted (a head series' lastT starts
// at its persisted max time; removedMaxT bounds the persisted series that
// are in no head), or math.MinInt64. Persisted series outside the head are
// not matched one by one: their bound is the tenant's. It holds the head's
// appendMu while it reads the matching series, so the tenant's pushes wait
// for it.
func (a *AdminServer) newestMatching(ctx context.Context, tenant string, ms []*labels.Matcher) (int64, error) {
	newest := a.i.removedMaxTOf(tenant)
	h := a.i.getTenant(tenant)
	if h == nil {
		return newest, nil
	}
	newest = max(newest, h.removedMaxT.Load())
	refs, err := h.matching(ctx, ms)
	if err != nil {
		return 0, err
	}
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	for _, ref := range refs {
		if s := h.series.getByRef(chunks.HeadSeriesRef(ref)); s != nil {
			newest = max(newest, s.lastT)
		}
	}
	return newest, nil
}

// CleanTombstones purges the persisted data under the tombstones, for
// every tenant (the partitions are shared), and drops the tombstones that
// no data can be under any more.
//
// A tombstone must outlive every sample it covers that a restart could
// bring back: those in memory and those in the WAL. A WAL checkpoint keeps
// every sample from the oldest in-memory time of all heads at the
// truncation on, so floor, the oldest in-memory time of any head, is taken
// first, then the WAL is truncated (the flush in between only raises the
// oldest in-memory time; a sample pushed meanwhile came after the
// deletions), and only the tombstones that end before floor are dropped,
// for every tenant. The
// truncation flushes every head and writes a checkpoint, which is this
// call's main cost besides the rewrite.
func (a *AdminServer) CleanTombstones(ctx context.Context, _ *arguspb.CleanTombstonesRequest) (*arguspb.CleanTombstonesResponse, error) {
	if _, err := a.adminHead(ctx); err != nil {
		return nil, grpcError(err)
	}
	floor := noTime
	for _, h := range a.i.tenantList() {
		floor = min(floor, h.minMemoryTime())
	}
	if err := a.i.truncateWAL(ctx); err != nil {
		return nil, grpcError(fmt.Errorf("clean tombstones: truncate wal: %w", err))
	}
	if err := a.i.db.CleanTombstones(ctx, func(string) int64 { return floor }); err != nil {
		return nil, grpcError(fmt.Errorf("clean tombstones: %w", err))
	}
	return &arguspb.CleanTombstonesResponse{}, nil
}

// walFailpoint returns the WAL truncation's test hook that
// storage.FailpointEnv asks for (its steps named "wal:<step>", such as
// "wal:checkpointed"), for the crash tests of the real binary; nil when
// the variable is unset.
func walFailpoint() func(truncStep) {
	hook := storage.Failpoint()
	if hook == nil {
		return nil
	}
	return func(s truncStep) { _ = hook("wal:" + string(s)) }
}
