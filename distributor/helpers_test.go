package distributor

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// testNow is the distributor's clock in tests.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testTenant = "tenant-a"

// fakeIngester is a function-field fake of Pusher. It records every series it
// is pushed, copied through the wire format (so that nothing aliases the
// distributor's pooled buffers), and the tenant of each push. pushFunc, when
// set, gives the answer; else the answer is empty (everything appended).
type fakeIngester struct {
	pushFunc func(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error)
	// stats answers UserStats; nil fails it.
	stats func(tenant string) *arguspb.UserStatsResponse

	mu       sync.Mutex
	series   []*arguspb.TimeSeries // guarded by mu
	metadata [][]byte              // guarded by mu
	tenants  []string              // guarded by mu
}

func (f *fakeIngester) Push(ctx context.Context, req *arguspb.WriteRequest, _ ...grpc.CallOption) (*arguspb.PushResponse, error) {
	raw, err := req.MarshalVT()
	if err != nil {
		return nil, err
	}
	var copied arguspb.WriteRequest
	if err := copied.UnmarshalVT(raw); err != nil {
		return nil, err
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	f.mu.Lock()
	f.series = append(f.series, copied.Timeseries...)
	f.metadata = append(f.metadata, copied.Metadata...)
	f.tenants = append(f.tenants, md.Get(tenant.MetadataKey)...)
	f.mu.Unlock()
	if f.pushFunc != nil {
		return f.pushFunc(ctx, req)
	}
	return &arguspb.PushResponse{}, nil
}

func (f *fakeIngester) UserStats(ctx context.Context, _ *arguspb.UserStatsRequest, _ ...grpc.CallOption) (*arguspb.UserStatsResponse, error) {
	if f.stats == nil {
		return nil, status.Error(codes.Unavailable, "down")
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	return f.stats(md.Get(tenant.MetadataKey)[0]), nil
}

// pushed returns the series f was pushed, one string each (see seriesString).
func (f *fakeIngester) pushed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.series))
	for _, ts := range f.series {
		out = append(out, seriesString(ts))
	}
	return out
}

// seriesString renders a series exactly, labels in their order:
// {__name__="up", job="x"} 1@1000 2@2000.
func seriesString(ts *arguspb.TimeSeries) string {
	var b strings.Builder
	b.WriteString(formatLabels(ts.Labels))
	for _, s := range ts.Samples {
		fmt.Fprintf(&b, " %g@%d", s.Value, s.TimestampMs)
	}
	if len(ts.Exemplars) > 0 || len(ts.Histograms) > 0 {
		fmt.Fprintf(&b, " exemplars=%d histograms=%d", len(ts.Exemplars), len(ts.Histograms))
	}
	return b.String()
}

// testConfig returns the flag defaults.
func testConfig(t testing.TB) Config {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return cfg
}

// defaultLimits returns the limits the flags default to.
func defaultLimits(t testing.TB) *limits.Limits {
	t.Helper()
	var l limits.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return &l
}

// tenantLimitsMap gives each tenant its limits, and the default to others.
type tenantLimitsMap struct {
	def     *limits.Limits
	tenants map[string]*limits.Limits
}

func (m tenantLimitsMap) For(tenant string) *limits.Limits {
	if l, ok := m.tenants[tenant]; ok {
		return l
	}
	return m.def
}

// newTestDistributor returns a distributor over the given ring whose
// ingesters are fakes, keyed by address, with the clock at testNow.
func newTestDistributor(t testing.TB, cfg Config, r replicaPicker, ingesters map[string]*fakeIngester, reg prometheus.Registerer) *Distributor {
	t.Helper()
	d, err := New(cfg, Deps{
		Ring:   r,
		Limits: tenantLimitsMap{def: defaultLimits(t)},
		Clients: ClientFactoryFunc(func(addr string) (Pusher, error) {
			if ing, ok := ingesters[addr]; ok {
				return ing, nil
			}
			return nil, fmt.Errorf("no fake ingester at %s", addr)
		}),
		Registerer: reg,
	})
	require.NoError(t, err)
	d.now = func() time.Time { return testNow }
	return d
}

// newSingleIngester returns a distributor with one fake ingester at "ing-1".
func newSingleIngester(t testing.TB, cfg Config, reg prometheus.Registerer) (*Distributor, *fakeIngester) {
	t.Helper()
	r, err := ring.NewStatic(ring.Instance{ID: "ing-1", Addr: "ing-1:9095"})
	require.NoError(t, err)
	ing := &fakeIngester{}
	return newTestDistributor(t, cfg, r, map[string]*fakeIngester{"ing-1:9095": ing}, reg), ing
}

// series builds a series from name/value pairs, kept in the given order, and
// samples as value, timestamp pairs.
func series(lbls []string, samples ...float64) *arguspb.TimeSeries {
	ts := &arguspb.TimeSeries{}
	for i := 0; i+1 < len(lbls); i += 2 {
		ts.Labels = append(ts.Labels, &arguspb.Label{Name: lbls[i], Value: lbls[i+1]})
	}
	for i := 0; i+1 < len(samples); i += 2 {
		ts.Samples = append(ts.Samples, &arguspb.Sample{Value: samples[i], TimestampMs: int64(samples[i+1])})
	}
	return ts
}

// encode marshals req and snappy-compresses it, as Prometheus does.
func encode(t testing.TB, req *arguspb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.MarshalVT()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

// newPushRequest returns a remote-write 1.0 request for body with the tenant
// in its context, as the auth middleware leaves it.
func newPushRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(body))
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	return r.WithContext(tenant.With(r.Context(), testTenant))
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// ms returns testNow plus d in Unix milliseconds, as a sample timestamp.
func ms(d time.Duration) float64 { return float64(testNow.Add(d).UnixMilli()) }
