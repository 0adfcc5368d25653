package querier

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/timestamp"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// fakeAdmin is a function-field fake of an ingester's admin server that
// records the deletions it gets.
type fakeAdmin struct {
	arguspb.UnimplementedIngesterAdminServer
	fail error // returned by every call when set

	mu      sync.Mutex
	deletes []*arguspb.DeleteSeriesRequest // guarded by mu
	tenants []string                       // guarded by mu
	cleans  int                            // guarded by mu

	status *arguspb.TSDBStatusResponse
	names  []*arguspb.LabelNameValues
	values *arguspb.LabelValuesCardinalityResponse
}

func (f *fakeAdmin) DeleteSeries(ctx context.Context, req *arguspb.DeleteSeriesRequest) (*arguspb.DeleteSeriesResponse, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	id, _ := tenant.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, req)
	f.tenants = append(f.tenants, id)
	return &arguspb.DeleteSeriesResponse{}, nil
}

func (f *fakeAdmin) CleanTombstones(context.Context, *arguspb.CleanTombstonesRequest) (*arguspb.CleanTombstonesResponse, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleans++
	return &arguspb.CleanTombstonesResponse{}, nil
}

func (f *fakeAdmin) TSDBStatus(_ context.Context, req *arguspb.TSDBStatusRequest) (*arguspb.TSDBStatusResponse, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return f.status, nil
}

func (f *fakeAdmin) LabelNamesAndValues(_ *arguspb.LabelNamesAndValuesRequest, s grpc.ServerStreamingServer[arguspb.LabelNamesAndValuesResponse]) error {
	if f.fail != nil {
		return f.fail
	}
	for _, it := range f.names { // one name per message, to merge across messages
		if err := s.Send(&arguspb.LabelNamesAndValuesResponse{Items: []*arguspb.LabelNameValues{it}}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeAdmin) LabelValuesCardinality(context.Context, *arguspb.LabelValuesCardinalityRequest) (*arguspb.LabelValuesCardinalityResponse, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return f.values, nil
}

func startAdminServer(t testing.TB, srv arguspb.IngesterAdminServer) arguspb.IngesterAdminClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(grpccodec.ServerOption())
	arguspb.RegisterIngesterAdminServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis) // Returns when Stop closes the listener.
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, conn.Close())
		s.Stop()
		<-done
	})
	return arguspb.NewIngesterAdminClient(conn)
}

// fakeAdminRing is a fake ring of the admin API.
type fakeAdminRing struct {
	fakeReadSet
	rf int
}

func (f fakeAdminRing) ReplicationFactor() int { return f.rf }

// newTestAdmin serves Admin over the fakes, one ingester each, with the
// replication factor rf; down ingesters are missing from the read set.
func newTestAdmin(t testing.TB, cfg AdminConfig, rf, down int, fakes ...*fakeAdmin) *Admin {
	t.Helper()
	clients := map[string]arguspb.IngesterAdminClient{}
	var instances []ring.Instance
	for i, f := range fakes {
		addr := string(rune('a' + i))
		instances = append(instances, ring.Instance{ID: addr, Addr: addr})
		clients[addr] = startAdminServer(t, f)
	}
	a, err := NewAdmin(cfg, AdminDeps{
		Ring:    fakeAdminRing{fakeReadSet: fakeReadSet{instances: instances, maxFailures: rf/2 - down}, rf: rf},
		Clients: func(addr string) (arguspb.IngesterAdminClient, error) { return clients[addr], nil },
	})
	require.NoError(t, err)
	return a
}

// call serves one request for tenant "t" and returns the status and body.
func call(t testing.TB, h http.Handler, method, path string, params url.Values) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path+"?"+params.Encode(), nil)
	req = req.WithContext(tenant.With(req.Context(), "t"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// requireAPIError checks a JSON error envelope whose error starts with id.
func requireAPIError(t testing.TB, code int, body string, wantCode int, id string) {
	t.Helper()
	require.Equal(t, wantCode, code, body)
	var r struct{ Status, ErrorType, Error string }
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.Equal(t, "error", r.Status)
	require.True(t, strings.HasPrefix(r.Error, id+": "), "error %q must start with %s", r.Error, id)
}

func TestAdmin_DeleteSeries(t *testing.T) {
	fakes := []*fakeAdmin{{}, {}, {}}
	a := newTestAdmin(t, AdminConfig{Enabled: true}, 3, 0, fakes...)
	h := a.AdminHandler()
	code, body := call(t, h, http.MethodPost, DeleteSeriesPath, url.Values{
		"match[]": {`up{job="a"}`, `{__name__=~"x.+", i!="2", j!~"3|4"}`}, "start": {"100"}, "end": {"2000-01-01T00:00:00.5Z"}})
	require.Equal(t, http.StatusNoContent, code, body)
	want := []*arguspb.DeleteSeriesRequest{
		{MinTimeMs: 100_000, MaxTimeMs: 946684800500, Matchers: []*arguspb.LabelMatcher{
			{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "a"}, {Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "up"}}},
		{MinTimeMs: 100_000, MaxTimeMs: 946684800500, Matchers: []*arguspb.LabelMatcher{
			{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: "x.+"}, {Type: arguspb.LabelMatcher_NEQ, Name: "i", Value: "2"},
			{Type: arguspb.LabelMatcher_NRE, Name: "j", Value: "3|4"}}},
	}
	for _, f := range fakes {
		require.Len(t, f.deletes, 2, "every ingester gets every selector")
		for i := range want {
			require.Equal(t, want[i].String(), f.deletes[i].String())
		}
		require.Equal(t, []string{"t", "t"}, f.tenants)
	}

	// Defaults: all of time.
	code, body = call(t, h, http.MethodPut, DeleteSeriesPath, url.Values{"match[]": {`up`}})
	require.Equal(t, http.StatusNoContent, code, body)
	require.Equal(t, timestamp.FromTime(v1.MinTime), fakes[0].deletes[2].MinTimeMs)
	require.Equal(t, timestamp.FromTime(v1.MaxTime), fakes[0].deletes[2].MaxTimeMs)

	code, body = call(t, h, http.MethodPost, CleanTombstonesPath, nil)
	require.Equal(t, http.StatusNoContent, code, body)
	for _, f := range fakes {
		require.Equal(t, 1, f.cleans)
	}
}

// TestAdmin_DeleteSeriesRefused checks each refusal: its status, its ID
// first in the error, and that no ingester was called.
func TestAdmin_DeleteSeriesRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg    AdminConfig
		down   int
		method string
		params url.Values
		code   int
		id     string
	}{
		"disabled":        {cfg: AdminConfig{}, params: url.Values{"match[]": {"up"}}, code: 403, id: "err-argus-admin-api-disabled"},
		"get":             {method: http.MethodGet, params: url.Values{"match[]": {"up"}}, code: 405, id: "err-argus-method-not-allowed"},
		"no match":        {params: url.Values{}, code: 400, id: "err-argus-invalid-delete-request"},
		"bad selector":    {params: url.Values{"match[]": {"up{"}}, code: 400, id: "err-argus-invalid-delete-request"},
		"second bad":      {params: url.Values{"match[]": {"up", "{a=~\"(\"}"}}, code: 400, id: "err-argus-invalid-delete-request"},
		"matches empty":   {params: url.Values{"match[]": {`{job=~".*"}`}}, code: 400, id: "err-argus-invalid-delete-request"},
		"empty selector":  {params: url.Values{"match[]": {`{}`}}, code: 400, id: "err-argus-invalid-delete-request"},
		"start after end": {params: url.Values{"match[]": {"up"}, "start": {"20"}, "end": {"10"}}, code: 400, id: "err-argus-invalid-delete-request"},
		"bad start":       {params: url.Values{"match[]": {"up"}, "start": {"yesterday"}}, code: 400, id: "err-argus-invalid-delete-request"},
		"ingester down":   {down: 1, params: url.Values{"match[]": {"up"}}, code: 503, id: "err-argus-admin-partial-failure"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.method == "" {
				tc.method = http.MethodPost
			}
			if name != "disabled" {
				tc.cfg.Enabled = true
			}
			fakes := []*fakeAdmin{{}, {}, {}}
			a := newTestAdmin(t, tc.cfg, 3, tc.down, fakes...)
			code, body := call(t, a.AdminHandler(), tc.method, DeleteSeriesPath, tc.params)
			requireAPIError(t, code, body, tc.code, tc.id)
			for _, f := range fakes {
				require.Empty(t, f.deletes, "nothing is deleted")
			}
		})
	}
}

// TestAdmin_DeleteSeriesPartialFailure: one ingester failing makes the call
// a 503 naming it, while the others did record the deletion.
func TestAdmin_DeleteSeriesPartialFailure(t *testing.T) {
	fakes := []*fakeAdmin{{}, {fail: status.Error(codes.Unavailable, "gone")}, {}}
	a := newTestAdmin(t, AdminConfig{Enabled: true}, 3, 0, fakes...)
	code, body := call(t, a.AdminHandler(), http.MethodPost, DeleteSeriesPath, url.Values{"match[]": {"up"}})
	requireAPIError(t, code, body, 503, "err-argus-admin-partial-failure")
	require.Contains(t, body, "ingester b")
	require.Len(t, fakes[0].deletes, 1)
	require.Len(t, fakes[2].deletes, 1)

	fakes[1].fail = status.Error(codes.InvalidArgument, "skew")
	code, body = call(t, a.AdminHandler(), http.MethodPost, DeleteSeriesPath, url.Values{"match[]": {"up"}})
	requireAPIError(t, code, body, 400, "err-argus-invalid-delete-request")
	require.True(t, hasCode(errors.Join(errors.New("x"), status.Error(codes.InvalidArgument, "y")), codes.InvalidArgument))
}

func cstat(name string, v uint64) *arguspb.CardinalityStat {
	return &arguspb.CardinalityStat{Name: name, Value: v}
}

// TestAdmin_TSDBStatus merges two ingesters at replication factor 2, each
// holding every series (sums halved, distinct counts the largest).
func TestAdmin_TSDBStatus(t *testing.T) {
	part := func(series uint64, mint, maxt int64, pairs uint64) *fakeAdmin {
		return &fakeAdmin{status: &arguspb.TSDBStatusResponse{
			NumSeries: series, NumLabelPairs: 7, ChunkCount: int64(2 * series), MinTimeMs: mint, MaxTimeMs: maxt,
			SeriesCountByMetricName:     []*arguspb.CardinalityStat{cstat("up", 3), cstat("a", 1)},
			LabelValueCountByLabelName:  []*arguspb.CardinalityStat{cstat("instance", 3), cstat("__name__", 2)},
			MemoryInBytesByLabelName:    []*arguspb.CardinalityStat{cstat("instance", 40)},
			SeriesCountByLabelValuePair: []*arguspb.CardinalityStat{cstat("job=x", pairs), cstat("i=1", 1)},
		}}
	}
	a := newTestAdmin(t, AdminConfig{}, 2, 0, part(4, 1000, 5000, 4), part(4, 900, 5100, 4))
	code, body := call(t, a.StatsHandler(), http.MethodGet, TSDBStatusPath, url.Values{"limit": {"1"}})
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":{
		"headStats":{"numSeries":4,"numLabelPairs":7,"chunkCount":8,"minTime":900,"maxTime":5100},
		"seriesCountByMetricName":[{"name":"up","value":3}],
		"labelValueCountByLabelName":[{"name":"instance","value":3}],
		"memoryInBytesByLabelName":[{"name":"instance","value":40}],
		"seriesCountByLabelValuePair":[{"name":"job=x","value":4}]}}`, body)

	for _, limit := range []string{"0", "-1", "x", "10001"} {
		code, body := call(t, a.StatsHandler(), http.MethodGet, TSDBStatusPath, url.Values{"limit": {limit}})
		requireAPIError(t, code, body, 400, "err-argus-invalid-stats-request")
	}
	down := newTestAdmin(t, AdminConfig{}, 2, 0, part(4, 1, 2, 4), &fakeAdmin{fail: status.Error(codes.Unavailable, "gone")})
	code, body = call(t, down.StatsHandler(), http.MethodGet, TSDBStatusPath, nil)
	requireAPIError(t, code, body, 503, "err-argus-stats-unavailable")
}

// TestAdmin_Cardinality merges two ingesters of one shard each (replication
// factor 1): label values are unioned, series counts summed.
func TestAdmin_Cardinality(t *testing.T) {
	a := newTestAdmin(t, AdminConfig{}, 1, 0,
		&fakeAdmin{
			names: []*arguspb.LabelNameValues{{Name: "__name__", Values: []string{"up"}}, {Name: "instance", Values: []string{"a", "b"}}, {Name: "job", Values: []string{"x"}}},
			values: &arguspb.LabelValuesCardinalityResponse{NumSeries: 2, Items: []*arguspb.LabelValueCounts{
				{Name: "instance", Values: []*arguspb.CardinalityStat{cstat("a", 1), cstat("b", 1)}},
			}},
		},
		&fakeAdmin{
			names: []*arguspb.LabelNameValues{{Name: "__name__", Values: []string{"up"}}, {Name: "instance", Values: []string{"c", "b"}}, {Name: "zone", Values: []string{"1"}}},
			values: &arguspb.LabelValuesCardinalityResponse{NumSeries: 3, Items: []*arguspb.LabelValueCounts{
				{Name: "instance", Values: []*arguspb.CardinalityStat{cstat("b", 2), cstat("c", 1)}},
				{Name: "job", Values: []*arguspb.CardinalityStat{cstat("x", 3)}},
			}},
		})
	code, body := call(t, a.StatsHandler(), http.MethodGet, CardinalityNamesPath, url.Values{"limit": {"3"}, "selector": {`{job="x"}`}})
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"label_values_count_total":6,"label_names_count":4,"cardinality":[
		{"label_name":"instance","label_values_count":3},
		{"label_name":"__name__","label_values_count":1},
		{"label_name":"job","label_values_count":1}]}`, body)

	code, body = call(t, a.StatsHandler(), http.MethodGet, CardinalityValuesPath, url.Values{"label_names[]": {"instance", "job"}, "limit": {"2"}})
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"series_count_total":5,"labels":[
		{"label_name":"instance","label_values_count":3,"series_count":5,"cardinality":[
			{"label_value":"b","series_count":3},{"label_value":"a","series_count":1}]},
		{"label_name":"job","label_values_count":1,"series_count":3,"cardinality":[{"label_value":"x","series_count":3}]}]}`, body)

	for name, q := range map[string]struct {
		path   string
		params url.Values
	}{
		"no label_names":  {CardinalityValuesPath, url.Values{}},
		"limit too large": {CardinalityNamesPath, url.Values{"limit": {"501"}}},
		"bad selector":    {CardinalityNamesPath, url.Values{"selector": {"up{"}}},
	} {
		code, body := call(t, a.StatsHandler(), http.MethodGet, q.path, q.params)
		require.Equal(t, http.StatusBadRequest, code, name)
		requireAPIError(t, code, body, 400, "err-argus-invalid-stats-request")
	}
}
