package querier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"

	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Limits of the statistics endpoints: Prometheus's for status/tsdb,
// Mimir's for the cardinality API.
const (
	defaultStatusLimit      = 10
	maxStatusLimit          = 10000
	defaultCardinalityLimit = 20
	maxCardinalityLimit     = 500
)

// StatsHandler serves TSDBStatusPath, CardinalityNamesPath and
// CardinalityValuesPath (GET or POST) for the tenant that the auth
// middleware put in the context, from the in-memory heads of every
// ingester of the ring.
//
// # Merging
//
// Every ingester holds replication-factor copies' worth of the tenant's
// series, so series counts (numSeries, chunkCount, the series counts per
// metric, per label pair and per label value, the memory per label name,
// series_count_total) are summed over the ingesters and divided by the
// replication factor, as Mimir does; they are exact when every series has
// all its replicas, approximate while some are missing. Counts of distinct
// values are exact in the cardinality API (the ingesters send the values,
// which are merged) but, in status/tsdb, the largest count of any one
// ingester (numLabelPairs, labelValueCountByLabelName), exact with one
// ingester or when every ingester holds every series. Each ingester sends
// its own top lists of status/tsdb, so an entry that is in no ingester's
// top list is missing from the merged one.
func (a *Admin) StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			writeAdminError(w, apierror.Errorf(apierror.MethodNotAllowed, "%s is not allowed on %s: use GET", r.Method, r.URL.Path))
			return
		}
		id, err := tenant.FromContext(r.Context())
		if err != nil {
			writeAdminError(w, apierror.Errorf(apierror.MissingTenant, "%v", err))
			return
		}
		if err := r.ParseForm(); err != nil {
			writeAdminError(w, apierror.Errorf(apierror.InvalidStatsRequest, "tenant %q: error parsing form values: %w", id, err))
			return
		}
		var (
			data any
			aerr *apierror.Error
		)
		switch r.URL.Path {
		case TSDBStatusPath:
			data, aerr = a.tsdbStatus(r, id)
			if aerr == nil {
				data = &v1.Response{Status: "success", Data: data}
			}
		case CardinalityNamesPath:
			data, aerr = a.cardinalityNames(r, id)
		case CardinalityValuesPath:
			data, aerr = a.cardinalityValues(r, id)
		default:
			http.NotFound(w, r)
			return
		}
		if aerr != nil {
			writeAdminError(w, aerr)
			return
		}
		writeJSON(w, data)
	})
}

// intParam parses an integer parameter in [lo, hi], def if absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer in [%d, %d], got %q", name, lo, hi, s)
	}
	return n, nil
}

// eachIngester calls f on every ingester of the read set in parallel, with
// the tenant in the metadata. Any
// failure fails the whole read: the merged numbers would be wrong.
func (a *Admin) eachIngester(ctx context.Context, id string, f func(ctx context.Context, c arguspb.IngesterAdminClient) error) *apierror.Error {
	instances, _, err := a.ring.ReadSet()
	if err != nil {
		return apierror.Errorf(apierror.StatsUnavailable, "tenant %q: %w", id, err)
	}
	if err := a.callAll(ctx, id, instances, f); err != nil {
		return apierror.Errorf(apierror.StatsUnavailable, "tenant %q: %w", id, err)
	}
	return nil
}

// rf is the replication factor that merged counts are divided by.
func (a *Admin) rf() uint64 { return uint64(max(1, a.ring.ReplicationFactor())) }

// tsdbStatus answers status/tsdb in Prometheus's shape (v1.TSDBStatus).
func (a *Admin) tsdbStatus(r *http.Request, id string) (*v1.TSDBStatus, *apierror.Error) {
	limit, err := intParam(r, "limit", defaultStatusLimit, 1, maxStatusLimit)
	if err != nil {
		return nil, apierror.Errorf(apierror.InvalidStatsRequest, "tenant %q: %w", id, err)
	}
	var (
		mu    sync.Mutex
		parts []*arguspb.TSDBStatusResponse
	)
	aerr := a.eachIngester(r.Context(), id, func(ctx context.Context, c arguspb.IngesterAdminClient) error {
		resp, err := c.TSDBStatus(ctx, &arguspb.TSDBStatusRequest{Limit: int32(limit)})
		if err != nil {
			return err
		}
		mu.Lock()
		parts = append(parts, resp)
		mu.Unlock()
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return mergeTSDBStatus(parts, limit, a.rf()), nil
}

func mergeTSDBStatus(parts []*arguspb.TSDBStatusResponse, limit int, rf uint64) *v1.TSDBStatus {
	out := &v1.TSDBStatus{HeadStats: v1.HeadStats{MinTime: math.MaxInt64, MaxTime: math.MinInt64}}
	var series, chunks uint64
	byMetric, byLabel, memory, byPair := statMerger{}, statMerger{}, statMerger{}, statMerger{}
	for _, p := range parts {
		series += p.GetNumSeries()
		chunks += uint64(max(0, p.GetChunkCount()))
		out.HeadStats.NumLabelPairs = max(out.HeadStats.NumLabelPairs, int(p.GetNumLabelPairs()))
		out.HeadStats.MinTime = min(out.HeadStats.MinTime, p.GetMinTimeMs())
		out.HeadStats.MaxTime = max(out.HeadStats.MaxTime, p.GetMaxTimeMs())
		byMetric.sum(p.GetSeriesCountByMetricName())
		byLabel.max(p.GetLabelValueCountByLabelName())
		memory.sum(p.GetMemoryInBytesByLabelName())
		byPair.sum(p.GetSeriesCountByLabelValuePair())
	}
	out.HeadStats.NumSeries = series / rf
	out.HeadStats.ChunkCount = int64(chunks / rf)
	out.SeriesCountByMetricName = byMetric.top(limit, rf)
	out.LabelValueCountByLabelName = byLabel.top(limit, 1)
	out.MemoryInBytesByLabelName = memory.top(limit, rf)
	out.SeriesCountByLabelValuePair = byPair.top(limit, rf)
	return out
}

// statMerger merges the top lists of several ingesters by name.
type statMerger map[string]uint64

func (m statMerger) sum(stats []*arguspb.CardinalityStat) {
	for _, s := range stats {
		m[s.GetName()] += s.GetValue()
	}
}

func (m statMerger) max(stats []*arguspb.CardinalityStat) {
	for _, s := range stats {
		m[s.GetName()] = max(m[s.GetName()], s.GetValue())
	}
}

// top returns the limit largest entries, each divided by div, highest
// first and, among equal values, by name.
func (m statMerger) top(limit int, div uint64) []v1.TSDBStat {
	out := make([]v1.TSDBStat, 0, len(m))
	for name, v := range m {
		out = append(out, v1.TSDBStat{Name: name, Value: v / div})
	}
	slices.SortFunc(out, func(a, b v1.TSDBStat) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Name, b.Name))
	})
	return out[:min(limit, len(out))]
}

// selectorMatchers parses the optional selector parameter of the
// cardinality API.
func selectorMatchers(r *http.Request) ([]*arguspb.LabelMatcher, error) {
	s := r.Form.Get("selector")
	if s == "" {
		return nil, nil
	}
	ms, err := selectorParser.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("invalid parameter \"selector\" %q: %w", s, err)
	}
	return toProtoMatchers(ms), nil
}

// LabelNamesCardinality is Mimir's answer of
// GET /api/v1/cardinality/label_names.
type LabelNamesCardinality struct {
	LabelValuesCountTotal int                    `json:"label_values_count_total"`
	LabelNamesCount       int                    `json:"label_names_count"`
	Cardinality           []LabelNameCardinality `json:"cardinality"`
}

// LabelNameCardinality is one label name and its number of values.
type LabelNameCardinality struct {
	LabelName        string `json:"label_name"`
	LabelValuesCount int    `json:"label_values_count"`
}

// cardinalityNames answers cardinality/label_names: every label name of
// the tenant's in-memory series matching the selector, with its number of
// distinct values, the limit with most values first.
func (a *Admin) cardinalityNames(r *http.Request, id string) (*LabelNamesCardinality, *apierror.Error) {
	limit, err := intParam(r, "limit", defaultCardinalityLimit, 0, maxCardinalityLimit)
	if err == nil {
		var ms []*arguspb.LabelMatcher
		if ms, err = selectorMatchers(r); err == nil {
			return a.namesCardinality(r.Context(), id, ms, limit)
		}
	}
	return nil, apierror.Errorf(apierror.InvalidStatsRequest, "tenant %q: %w", id, err)
}

func (a *Admin) namesCardinality(ctx context.Context, id string, ms []*arguspb.LabelMatcher, limit int) (*LabelNamesCardinality, *apierror.Error) {
	var (
		mu     sync.Mutex
		values = map[string]map[string]struct{}{}
	)
	aerr := a.eachIngester(ctx, id, func(ctx context.Context, c arguspb.IngesterAdminClient) error {
		stream, err := c.LabelNamesAndValues(ctx, &arguspb.LabelNamesAndValuesRequest{Matchers: ms})
		if err != nil {
			return err
		}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			for _, it := range resp.GetItems() {
				set := values[it.GetName()]
				if set == nil {
					set = map[string]struct{}{}
					values[it.GetName()] = set
				}
				for _, v := range it.GetValues() {
					set[v] = struct{}{}
				}
			}
			mu.Unlock()
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	out := &LabelNamesCardinality{LabelNamesCount: len(values), Cardinality: []LabelNameCardinality{}}
	for name, set := range values {
		out.LabelValuesCountTotal += len(set)
		out.Cardinality = append(out.Cardinality, LabelNameCardinality{LabelName: name, LabelValuesCount: len(set)})
	}
	slices.SortFunc(out.Cardinality, func(a, b LabelNameCardinality) int {
		return cmp.Or(cmp.Compare(b.LabelValuesCount, a.LabelValuesCount), cmp.Compare(a.LabelName, b.LabelName))
	})
	out.Cardinality = out.Cardinality[:min(limit, len(out.Cardinality))]
	return out, nil
}

// LabelValuesCardinality is Mimir's answer of
// GET /api/v1/cardinality/label_values.
type LabelValuesCardinality struct {
	SeriesCountTotal uint64                  `json:"series_count_total"`
	Labels           []LabelValuesOfOneLabel `json:"labels"`
}

// LabelValuesOfOneLabel is the cardinality of one requested label name.
type LabelValuesOfOneLabel struct {
	LabelName        string                  `json:"label_name"`
	LabelValuesCount int                     `json:"label_values_count"`
	SeriesCount      uint64                  `json:"series_count"`
	Cardinality      []LabelValueSeriesCount `json:"cardinality"`
}

// LabelValueSeriesCount is the number of series of one label value.
type LabelValueSeriesCount struct {
	LabelValue  string `json:"label_value"`
	SeriesCount uint64 `json:"series_count"`
}

// cardinalityValues answers cardinality/label_values: for each of
// label_names[], the series count of each of its values among the tenant's
// in-memory series matching the selector, the limit with most series first.
func (a *Admin) cardinalityValues(r *http.Request, id string) (*LabelValuesCardinality, *apierror.Error) {
	names := r.Form["label_names[]"]
	limit, err := intParam(r, "limit", defaultCardinalityLimit, 0, maxCardinalityLimit)
	var ms []*arguspb.LabelMatcher
	if err == nil {
		ms, err = selectorMatchers(r)
	}
	if err == nil && len(names) == 0 {
		err = errors.New("label_names[] is required: name at least one label")
	}
	if err != nil {
		return nil, apierror.Errorf(apierror.InvalidStatsRequest, "tenant %q: %w", id, err)
	}
	var (
		mu     sync.Mutex
		total  uint64
		counts = map[string]statMerger{}
	)
	aerr := a.eachIngester(r.Context(), id, func(ctx context.Context, c arguspb.IngesterAdminClient) error {
		resp, err := c.LabelValuesCardinality(ctx, &arguspb.LabelValuesCardinalityRequest{LabelNames: names, Matchers: ms})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		total += resp.GetNumSeries()
		for _, it := range resp.GetItems() {
			if counts[it.GetName()] == nil {
				counts[it.GetName()] = statMerger{}
			}
			counts[it.GetName()].sum(it.GetValues())
		}
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return labelValuesAnswer(total, counts, limit, a.rf()), nil
}

func labelValuesAnswer(total uint64, counts map[string]statMerger, limit int, rf uint64) *LabelValuesCardinality {
	out := &LabelValuesCardinality{SeriesCountTotal: total / rf, Labels: []LabelValuesOfOneLabel{}}
	for name, m := range counts {
		l := LabelValuesOfOneLabel{LabelName: name, LabelValuesCount: len(m), Cardinality: []LabelValueSeriesCount{}}
		for _, s := range m.top(len(m), rf) {
			l.SeriesCount += s.Value
			l.Cardinality = append(l.Cardinality, LabelValueSeriesCount{LabelValue: s.Name, SeriesCount: s.Value})
		}
		l.Cardinality = l.Cardinality[:min(limit, len(l.Cardinality))]
		out.Labels = append(out.Labels, l)
	}
	slices.SortFunc(out.Labels, func(a, b LabelValuesOfOneLabel) int {
		return cmp.Or(cmp.Compare(b.SeriesCount, a.SeriesCount), cmp.Compare(a.LabelName, b.LabelName))
	})
	return out
}
