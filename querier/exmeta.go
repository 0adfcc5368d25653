package querier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Exemplars and metric metadata: both are read from every ingester of the
// read set (the replicas of each series or metric family among them) and
// merged. Exemplars are served by Prometheus's own query_exemplars handler
// through storage.ExemplarQueryable (queryable.ExemplarQuerier); metadata
// by metadataHandler, since Prometheus's handler reads scrape targets.

// exmetaSource is what the querier needs of a series source for exemplars
// and metadata; arguspb.SeriesSourceClient satisfies it.
type exmetaSource interface {
	QueryExemplars(ctx context.Context, in *arguspb.ExemplarsRequest, opts ...grpc.CallOption) (*arguspb.ExemplarsResponse, error)
	MetricsMetadata(ctx context.Context, in *arguspb.MetricsMetadataRequest, opts ...grpc.CallOption) (*arguspb.MetricsMetadataResponse, error)
}

var _ exmetaSource = arguspb.SeriesSourceClient(nil)

// localExmeta is exmetaSource of a LocalSource; *ingester.Ingester
// satisfies it.
type localExmeta interface {
	QueryExemplars(ctx context.Context, req *arguspb.ExemplarsRequest) (*arguspb.ExemplarsResponse, error)
	MetricsMetadata(ctx context.Context, req *arguspb.MetricsMetadataRequest) (*arguspb.MetricsMetadataResponse, error)
}

// exemplars asks the source for the exemplars of req.
func (q *sourceQuerier) exemplars(ctx context.Context, req *arguspb.ExemplarsRequest) (*arguspb.ExemplarsResponse, error) {
	return askExmeta(ctx, q, "exemplars", req, localExmeta.QueryExemplars, exmetaSource.QueryExemplars)
}

// metricsMetadata asks the source for the metadata of req.
func (q *sourceQuerier) metricsMetadata(ctx context.Context, req *arguspb.MetricsMetadataRequest) (*arguspb.MetricsMetadataResponse, error) {
	return askExmeta(ctx, q, "metadata", req, localExmeta.MetricsMetadata, exmetaSource.MetricsMetadata)
}

// askExmeta asks q's source for req through local (a LocalSource) or
// remote (a gRPC source); a source that serves none (no such method, or
// Unimplemented) answers an empty response. op names the call in errors.
func askExmeta[Req, Resp any](ctx context.Context, q *sourceQuerier, op string, req Req,
	local func(localExmeta, context.Context, Req) (*Resp, error),
	remote func(exmetaSource, context.Context, Req, ...grpc.CallOption) (*Resp, error),
) (*Resp, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, err
	}
	var resp *Resp
	l, isLocal := q.local.(localExmeta)
	src, isSrc := q.src.(exmetaSource)
	switch {
	case q.local != nil && isLocal:
		q.metrics.localReads.Inc()
		resp, err = local(l, ctx, req)
	case q.local == nil && isSrc:
		resp, err = remote(src, ctx, req)
	default:
		return new(Resp), nil
	}
	if status.Code(err) == codes.Unimplemented {
		err = nil // A source of an older version, which holds none.
	}
	if err != nil {
		return nil, fromGRPC(ctx, op, err)
	}
	return resp, nil
}

// eachSource calls f on every source of the tenant's read set (or on the
// one source), in parallel, with fanOut's failure budget, and returns the
// indexes of those that answered. A federated tenant (a|b) is refused.
func (q *queryable) eachSource(ctx context.Context, f func(ctx context.Context, i int, s *sourceQuerier) error) ([]int, error) {
	if orgID, err := tenant.FromContext(ctx); err == nil && strings.Contains(orgID, tenant.Separator) {
		return nil, invalidTenantError(orgID, errors.New("exemplars and metadata are read one tenant at a time"))
	}
	if q.replicas == nil {
		s := &sourceQuerier{src: q.src, metrics: q.metrics, mint: math.MinInt64, maxt: math.MaxInt64}
		return []int{0}, f(ctx, 0, s)
	}
	rq, err := newReplicatedQuerier(q, math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	ok, _, err := rq.fanOut(ctx, f) // A partial answer's warning has no place in these answers.
	return ok, err
}

// askEach asks every source of the tenant's read set with ask (through
// eachSource) and returns the answers of those that answered, or
// eachSource's error as an API error.
func askEach[Resp any](ctx context.Context, q *queryable, ask func(ctx context.Context, s *sourceQuerier) (Resp, error)) ([]Resp, error) {
	var (
		mu    sync.Mutex
		resps = map[int]Resp{} // guarded by mu
	)
	ok, err := q.eachSource(ctx, func(ctx context.Context, i int, s *sourceQuerier) error {
		resp, err := ask(ctx, s)
		mu.Lock()
		resps[i] = resp
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, asAPIError(err)
	}
	out := make([]Resp, 0, len(ok))
	for _, i := range ok {
		out = append(out, resps[i])
	}
	return out, nil
}

// ExemplarQuerier returns the exemplar querier of the tenant of ctx.
func (q *queryable) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	return &exemplarQuerier{q: q, ctx: ctx}, nil
}

var _ storage.ExemplarQueryable = (*queryable)(nil)

// exemplarQuerier reads the exemplars of one tenant, that of ctx.
type exemplarQuerier struct {
	q   *queryable
	ctx context.Context
}

// Select returns the exemplars in [start, end] of the series matching any
// matcher set, merged over the replicas: one result per series, sorted by
// labels, its exemplars sorted by time, an exemplar stored by several
// replicas once.
func (eq *exemplarQuerier) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	req := &arguspb.ExemplarsRequest{MinTimeMs: start, MaxTimeMs: end}
	for _, ms := range matchers {
		req.MatcherSets = append(req.MatcherSets, &arguspb.LabelMatchers{Matchers: toProtoMatchers(ms)})
	}
	parts, err := askEach(eq.ctx, eq.q, func(ctx context.Context, s *sourceQuerier) (*arguspb.ExemplarsResponse, error) {
		return s.exemplars(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	return mergeExemplars(parts), nil
}

// mergeExemplars merges the answers of several sources.
func mergeExemplars(parts []*arguspb.ExemplarsResponse) []exemplar.QueryResult {
	out := []exemplar.QueryResult{}
	bySeries := map[string]int{}
	for _, p := range parts {
		for _, se := range p.GetSeries() {
			lset := labelsFromProto(se.GetLabels())
			key := lset.String()
			k, ok := bySeries[key]
			if !ok {
				k = len(out)
				bySeries[key] = k
				out = append(out, exemplar.QueryResult{SeriesLabels: lset})
			}
			for _, e := range se.GetExemplars() {
				out[k].Exemplars = append(out[k].Exemplars, exemplar.Exemplar{
					Labels: labelsFromProto(e.GetLabels()), Value: e.GetValue(), Ts: e.GetTimestampMs(), HasTs: true,
				})
			}
		}
	}
	for k := range out {
		es := out[k].Exemplars
		slices.SortStableFunc(es, compareExemplars)
		out[k].Exemplars = slices.CompactFunc(es, func(a, b exemplar.Exemplar) bool { return compareExemplars(a, b) == 0 })
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out
}

// compareExemplars orders exemplars by time, then value and labels, so
// that the copies of one exemplar from several replicas are adjacent.
func compareExemplars(a, b exemplar.Exemplar) int {
	return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(math.Float64bits(a.Value), math.Float64bits(b.Value)), labels.Compare(a.Labels, b.Labels))
}

func labelsFromProto(ls []*arguspb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.GetName(), l.GetValue())
	}
	return b.Labels()
}

// metricsMetadata returns the tenant's metadata by family, as Prometheus's
// /api/v1/metadata answers: families sorted by name up to limit (negative:
// no limit), at most perMetric entries each (0 or negative: no limit),
// entries unique.
func (q *queryable) metricsMetadata(ctx context.Context, metric string, limit, perMetric int) (map[string][]metadata.Metadata, error) {
	res := map[string][]metadata.Metadata{}
	if limit == 0 {
		return res, nil
	}
	req := &arguspb.MetricsMetadataRequest{Metric: metric, Limit: int64(max(limit, 0)), LimitPerMetric: int64(max(perMetric, 0))}
	resps, err := askEach(ctx, q, func(ctx context.Context, s *sourceQuerier) (*arguspb.MetricsMetadataResponse, error) {
		return s.metricsMetadata(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	var all []*arguspb.MetricMetadata
	for _, resp := range resps {
		all = append(all, resp.GetMetadata()...)
	}
	slices.SortFunc(all, func(a, b *arguspb.MetricMetadata) int {
		return cmp.Or(strings.Compare(a.GetMetricFamilyName(), b.GetMetricFamilyName()), strings.Compare(a.GetType(), b.GetType()),
			strings.Compare(a.GetHelp(), b.GetHelp()), strings.Compare(a.GetUnit(), b.GetUnit()))
	})
	for _, m := range all {
		fam := m.GetMetricFamilyName()
		ms, seen := res[fam]
		if !seen && limit > 0 && len(res) >= limit {
			break
		}
		e := metadata.Metadata{Type: model.MetricType(m.GetType()), Help: m.GetHelp(), Unit: m.GetUnit()}
		if (perMetric > 0 && len(ms) >= perMetric) || slices.Contains(ms, e) {
			continue
		}
		res[fam] = append(ms, e)
	}
	return res, nil
}

// metadataHandler serves /api/v1/metadata with Prometheus's parameters
// (metric, limit, limit_per_metric), errors and JSON.
func metadataHandler(q *queryable) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, perMetric := -1, -1
		for _, p := range []struct {
			name string
			v    *int
		}{{"limit", &limit}, {"limit_per_metric", &perMetric}} {
			if s := r.FormValue(p.name); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil {
					badData(w, errors.New(p.name+" must be a number"))
					return
				}
				*p.v = n
			}
		}
		res, err := q.metricsMetadata(r.Context(), r.FormValue("metric"), limit, perMetric)
		if err != nil {
			var ae *apierror.Error
			if !errors.As(err, &ae) {
				ae = apierror.Errorf(apierror.QueryUnavailable, "%w", err)
			}
			writeAdminError(w, ae)
			return
		}
		b, err := json.Marshal(&v1.Response{Status: "success", Data: res})
		if err != nil {
			writeAdminError(w, apierror.Errorf(apierror.Internal, "encode response: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b) // The client is gone if this fails.
	}
}
