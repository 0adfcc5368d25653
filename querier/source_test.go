package querier

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// The fixture: two hours of samples every 15s from t0, for two tenants.
const (
	t0             = int64(1_700_000_000_000) // Unix ms, a multiple of every step used in tests
	scrapeInterval = int64(15_000)
	numSamples     = 480 // 2h
	samplesPerChk  = 120 // as Prometheus cuts XOR chunks
	tenantA        = "team-a"
	tenantB        = "team-b"
)

type sample struct {
	t int64
	v float64
}

type fixtureSeries struct {
	lset    labels.Labels
	samples []sample
}

// fixture returns the samples of every tenant, each tenant's series sorted
// by labels. Randomness is seeded and fixed.
func fixture(t testing.TB) map[string][]fixtureSeries {
	t.Helper()
	const seed = 42
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	gen := func(n int, f func(i int, prev float64) float64) []sample {
		out := make([]sample, 0, n)
		prev := 0.0
		for i := range n {
			prev = f(i, prev)
			out = append(out, sample{t: t0 + int64(i)*scrapeInterval, v: prev})
		}
		return out
	}
	counter := func(resetAt int) func(int, float64) float64 {
		return func(i int, prev float64) float64 {
			if i == resetAt {
				return float64(rng.IntN(5))
			}
			return prev + float64(rng.IntN(10))
		}
	}
	constant := func(v float64) func(int, float64) float64 { return func(int, float64) float64 { return v } }

	a := []fixtureSeries{
		{labels.FromStrings("__name__", "up", "job", "api", "instance", "a"), gen(numSamples, constant(1))},
		{labels.FromStrings("__name__", "up", "job", "api", "instance", "b"), gen(numSamples, func(i int, _ float64) float64 {
			if i >= numSamples/2 {
				return 0
			}
			return 1
		})},
		{labels.FromStrings("__name__", "up", "job", "db", "instance", "c"), gen(numSamples, constant(1))},
		{labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "a", "code", "200"), gen(numSamples, counter(240))},
		{labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "a", "code", "500"), gen(numSamples, counter(-1))},
		{labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "b", "code", "200"), gen(numSamples, counter(100))},
		{labels.FromStrings("__name__", "http_requests_total", "job", "db", "instance", "c", "code", "200"), gen(numSamples, counter(-1))},
		{labels.FromStrings("__name__", "temperature", "room", "x"), gen(numSamples, func(int, float64) float64 { return float64(18 + rng.IntN(4)) })},
		// Room y stops reporting after 90 minutes and is marked stale.
		{labels.FromStrings("__name__", "temperature", "room", "y"), gen(361, func(i int, _ float64) float64 {
			if i == 360 {
				return math.Float64frombits(value.StaleNaN)
			}
			return float64(20 + rng.IntN(3))
		})},
	}
	// A classic histogram: cumulative bucket counters, _sum and _count.
	bounds := []string{"0.1", "0.5", "1", "+Inf"}
	buckets := make([][]float64, len(bounds))
	sum, count := make([]float64, numSamples), make([]float64, numSamples)
	for i := range numSamples {
		var cum, s float64
		for b := range bounds {
			cum += float64(rng.IntN(20))
			prev := 0.0
			if i > 0 {
				prev = buckets[b][i-1]
			}
			buckets[b] = append(buckets[b], prev+cum)
		}
		s = rng.Float64() * 10
		if i > 0 {
			s += sum[i-1]
		}
		sum[i], count[i] = s, buckets[len(bounds)-1][i]
	}
	fromSlice := func(vs []float64) []sample {
		return gen(numSamples, func(i int, _ float64) float64 { return vs[i] })
	}
	for b, le := range bounds {
		a = append(a, fixtureSeries{labels.FromStrings("__name__", "request_duration_seconds_bucket", "job", "api", "le", le), fromSlice(buckets[b])})
	}
	a = append(a,
		fixtureSeries{labels.FromStrings("__name__", "request_duration_seconds_sum", "job", "api"), fromSlice(sum)},
		fixtureSeries{labels.FromStrings("__name__", "request_duration_seconds_count", "job", "api"), fromSlice(count)},
	)

	b := []fixtureSeries{
		{labels.FromStrings("__name__", "up", "job", "other", "instance", "z"), gen(numSamples, constant(1))},
		{labels.FromStrings("__name__", "http_requests_total", "job", "other", "instance", "z", "code", "200"), gen(numSamples, counter(-1))},
		{labels.FromStrings("__name__", "temperature", "room", "b-only"), gen(numSamples, constant(30))},
	}
	out := map[string][]fixtureSeries{tenantA: a, tenantB: b}
	for _, ss := range out {
		slices.SortFunc(ss, func(x, y fixtureSeries) int { return labels.Compare(x.lset, y.lset) })
	}
	return out
}

// fakeSource is a SeriesSource server over fixed samples per tenant, which
// it encodes as real XOR chunks of samplesPerChk samples. Tenants named in
// failures answer every call with that error.
type fakeSource struct {
	arguspb.UnimplementedSeriesSourceServer

	data     map[string][]fixtureSeries
	failures map[string]error

	mu       sync.Mutex
	requests []*arguspb.SeriesRequest // guarded by mu
}

func (f *fakeSource) lastSeriesRequest() *arguspb.SeriesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

// selectSeries returns the tenant's series that match ms and have a sample
// in [mint, maxt].
func (f *fakeSource) selectSeries(ctx context.Context, mint, maxt int64, pms []*arguspb.LabelMatcher) ([]fixtureSeries, error) {
	tn, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := f.failures[tn]; err != nil {
		return nil, err
	}
	ms := make([]*labels.Matcher, 0, len(pms))
	for _, pm := range pms {
		m, err := labels.NewMatcher(labels.MatchType(pm.GetType()), pm.GetName(), pm.GetValue())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		ms = append(ms, m)
	}
	var out []fixtureSeries
	for _, s := range f.data[tn] {
		if matchesAll(s.lset, ms) && slices.ContainsFunc(s.samples, func(x sample) bool { return x.t >= mint && x.t <= maxt }) {
			out = append(out, s)
		}
	}
	return out, nil
}

func matchesAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (f *fakeSource) Series(req *arguspb.SeriesRequest, stream grpc.ServerStreamingServer[arguspb.SeriesResponse]) error {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	series, err := f.selectSeries(stream.Context(), req.GetMinTimeMs(), req.GetMaxTimeMs(), req.GetMatchers())
	if err != nil {
		return err
	}
	const batch = 2 // Small, so that tests cross batch boundaries.
	var resp arguspb.SeriesResponse
	for i, s := range series {
		ss := &arguspb.StreamSeries{}
		s.lset.Range(func(l labels.Label) { ss.Labels = append(ss.Labels, &arguspb.Label{Name: l.Name, Value: l.Value}) })
		if !req.GetSkipChunks() {
			ss.Chunks = encodeChunks(s.samples, req.GetMinTimeMs(), req.GetMaxTimeMs())
		}
		resp.Series = append(resp.Series, ss)
		if len(resp.Series) == batch || i == len(series)-1 {
			if err := stream.Send(&resp); err != nil {
				return err
			}
			resp.Series = nil
		}
	}
	return nil
}

// encodeChunks cuts samples into XOR chunks and returns those that overlap
// [mint, maxt], whole, as an ingester does.
func encodeChunks(samples []sample, mint, maxt int64) []*arguspb.Chunk {
	var out []*arguspb.Chunk
	for start := 0; start < len(samples); start += samplesPerChk {
		part := samples[start:min(start+samplesPerChk, len(samples))]
		if part[len(part)-1].t < mint || part[0].t > maxt {
			continue
		}
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			panic(err)
		}
		for _, s := range part {
			app.Append(0, s.t, s.v)
		}
		out = append(out, &arguspb.Chunk{
			MinTimeMs: part[0].t, MaxTimeMs: part[len(part)-1].t,
			Encoding: arguspb.ChunkEncoding_CHUNK_ENCODING_XOR, Data: slices.Clone(c.Bytes()),
		})
	}
	return out
}

func (f *fakeSource) LabelNames(ctx context.Context, req *arguspb.LabelNamesRequest) (*arguspb.LabelNamesResponse, error) {
	series, err := f.selectSeries(ctx, req.GetMinTimeMs(), req.GetMaxTimeMs(), req.GetMatchers())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range series {
		s.lset.Range(func(l labels.Label) { names = append(names, l.Name) })
	}
	return &arguspb.LabelNamesResponse{Names: sortedUnique(names, req.GetLimit())}, nil
}

func (f *fakeSource) LabelValues(ctx context.Context, req *arguspb.LabelValuesRequest) (*arguspb.LabelValuesResponse, error) {
	series, err := f.selectSeries(ctx, req.GetMinTimeMs(), req.GetMaxTimeMs(), req.GetMatchers())
	if err != nil {
		return nil, err
	}
	var values []string
	for _, s := range series {
		if v := s.lset.Get(req.GetName()); v != "" {
			values = append(values, v)
		}
	}
	return &arguspb.LabelValuesResponse{Values: sortedUnique(values, req.GetLimit())}, nil
}

func sortedUnique(ss []string, limit int64) []string {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	if limit > 0 && int64(len(ss)) > limit {
		ss = ss[:limit]
	}
	return ss
}

// startSource serves src with a real gRPC server on an in-memory listener
// and returns a real client of it, both with Argus's codec, as cmd does.
func startSource(t testing.TB, src arguspb.SeriesSourceServer) arguspb.SeriesSourceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpccodec.ServerOption())
	arguspb.RegisterSeriesSourceServer(srv, src)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis) // Returns when Stop closes the listener.
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, conn.Close())
		srv.Stop()
		<-done
	})
	return arguspb.NewSeriesSourceClient(conn)
}

// newFakeSource returns a fake over the fixture and a client connected to it.
func newFakeSource(t testing.TB) (*fakeSource, arguspb.SeriesSourceClient) {
	t.Helper()
	f := &fakeSource{data: fixture(t), failures: map[string]error{
		"down":    status.Error(codes.Unavailable, "ingester is down"),
		"invalid": status.Error(codes.InvalidArgument, "regexp too expensive"),
		"broken":  status.Error(codes.Internal, "disk on fire"),
	}}
	return f, startSource(t, f)
}

// newReferenceTSDB loads the samples of one tenant into a Prometheus TSDB,
// with the options of Prometheus's own test storage.
func newReferenceTSDB(t testing.TB, series []fixtureSeries) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = int64(24 * time.Hour / time.Millisecond)
	opts.MaxBlockDuration = int64(24 * time.Hour / time.Millisecond)
	opts.RetentionDuration = 0
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for _, s := range series {
		for _, smp := range s.samples {
			_, err := app.Append(0, s.lset, smp.t, smp.v)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return db
}
