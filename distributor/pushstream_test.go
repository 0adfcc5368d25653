package distributor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// streamAction is what streamIngester does with a request of its stream.
type streamAction int

const (
	actAnswer streamAction = iota // answer it: everything appended
	actHold                       // never answer it
	actBreak                      // end the stream with Unavailable
)

// streamIngester is a real gRPC Ingester server whose PushStream keeps the
// series refs of argus.proto strictly (a broken rule fails the test) and
// records every push, its series resolved, as the ingester would store it.
type streamIngester struct {
	arguspb.UnimplementedIngesterServer
	t *testing.T
	// refs makes PushStream announce that it takes series refs.
	refs bool
	// onRequest decides the fate of the n-th request (from 0) of the
	// stream-th stream (from 0); nil answers every one.
	onRequest func(stream, n int) streamAction
	// received gets the index in pushes of each push as it is recorded.
	received chan int

	mu      sync.Mutex
	streams int          // guarded by mu
	pushes  []streamSeen // guarded by mu
}

// streamSeen is one push as streamIngester received it.
type streamSeen struct {
	unary  bool
	stream int
	tenant string
	series []string
	// refs are the request's series_refs.
	refs []uint64
}

func (f *streamIngester) record(p streamSeen) {
	f.mu.Lock()
	f.pushes = append(f.pushes, p)
	n := len(f.pushes) - 1
	f.mu.Unlock()
	if f.received != nil {
		f.received <- n
	}
}

func (f *streamIngester) seen() []streamSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]streamSeen(nil), f.pushes...)
}

func (f *streamIngester) Push(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	defer grpccodec.ReleaseWriteRequest(req)
	tn, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	p := streamSeen{unary: true, tenant: tn}
	for _, ts := range req.Timeseries {
		p.series = append(p.series, seriesString(ts))
	}
	f.record(p)
	return &arguspb.PushResponse{}, nil
}

func (f *streamIngester) PushStream(stream arguspb.Ingester_PushStreamServer) error {
	f.mu.Lock()
	sn := f.streams
	f.streams++
	f.mu.Unlock()
	if f.refs {
		require.NoError(f.t, stream.SendHeader(metadata.Pairs(ingesterSeriesRefsHeader, "1")))
	}
	type cached struct {
		tenant string
		labels []*arguspb.Label
	}
	byRef := map[uint64]cached{}
	for n := 0; ; n++ {
		req := new(arguspb.PushStreamRequest)
		if err := stream.RecvMsg(req); err != nil {
			return nil
		}
		p := streamSeen{stream: sn, tenant: req.Tenant, refs: req.SeriesRefs}
		if len(req.SeriesRefs) > 0 {
			require.Len(f.t, req.SeriesRefs, len(req.Request.Timeseries))
		}
		for k, ts := range req.Request.Timeseries {
			if k < len(req.SeriesRefs) && req.SeriesRefs[k] != 0 {
				ref := req.SeriesRefs[k] >> 1
				if req.SeriesRefs[k]&1 == 1 {
					_, dup := byRef[ref]
					require.False(f.t, dup, "ref %d defined twice", ref)
					var ls []*arguspb.Label
					for _, l := range ts.Labels {
						ls = append(ls, &arguspb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}) // Not the leased bytes.
					}
					byRef[ref] = cached{tenant: req.Tenant, labels: ls}
				} else {
					c, ok := byRef[ref]
					require.True(f.t, ok, "ref %d used before its definition", ref)
					require.Equal(f.t, req.Tenant, c.tenant, "ref %d of another tenant", ref)
					require.Empty(f.t, ts.Labels, "a series by ref carries no labels")
					ts.Labels = c.labels
				}
			}
			p.series = append(p.series, seriesString(ts))
		}
		grpccodec.ReleaseWriteRequest(req.Request)
		f.record(p)
		act := actAnswer
		if f.onRequest != nil {
			act = f.onRequest(sn, n)
		}
		switch act {
		case actBreak:
			return status.Error(codes.Unavailable, "ingester going away")
		case actHold:
			continue
		}
		if err := stream.Send(&arguspb.PushStreamResponse{Id: req.Id, Response: &arguspb.PushResponse{}}); err != nil {
			return err
		}
	}
}

// unaryOnly serves f's unary Push only, as an ingester of a version
// without PushStream.
type unaryOnly struct {
	arguspb.UnimplementedIngesterServer
	f *streamIngester
}

func (u unaryOnly) Push(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	return u.f.Push(ctx, req)
}

// streamTestDistributor serves srv on 127.0.0.1 with Argus's codec and
// returns a distributor over one ingester there, reached through a
// ClientPool (whose max message size is maxMsg if not 0), with remote
// timeout timeout if not 0.
func streamTestDistributor(t *testing.T, srv arguspb.IngesterServer, maxMsg int, timeout time.Duration) *Distributor {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(grpccodec.ServerOption())
	arguspb.RegisterIngesterServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	pool := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption())
	if maxMsg > 0 {
		pool.SetMaxMsgSize(maxMsg)
	}
	t.Cleanup(func() { require.NoError(t, pool.Close()) })
	r, err := ring.NewStatic(ring.Instance{ID: "ing", Addr: lis.Addr().String()})
	require.NoError(t, err)
	cfg := testConfig(t)
	if timeout > 0 {
		cfg.RemoteTimeout = timeout
	}
	d, err := New(cfg, Deps{Ring: r, Clients: pool, Limits: tenantLimitsMap{def: defaultLimits(t)}})
	require.NoError(t, err)
	d.now = func() time.Time { return testNow }
	return d
}

// pushAs pushes series of tenantID, one sample each at value v, and
// returns the answer.
func pushAs(d *Distributor, tenantID string, v float64, names ...string) *http.Response {
	req := &arguspb.WriteRequest{}
	for _, n := range names {
		req.Timeseries = append(req.Timeseries, series([]string{"__name__", n, "job", "j"}, v, ms(0)))
	}
	raw, _ := req.MarshalVT()
	r := newPushRequest(snappyEncode(raw))
	r = r.WithContext(tenant.With(r.Context(), tenantID))
	return serve(d.PushHandler(), r).Result()
}

// want renders the series pushAs pushes, as the ingester stores them.
func want(v float64, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf(`{__name__=%q, job="j"} %g@%d`, n, v, int64(ms(0))))
	}
	return out
}

// TestPushStream_Broken checks that a stream that breaks mid-request fails
// the push waiting on it with the stream's status, and that the next push
// opens a new stream and succeeds.
func TestPushStream_Broken(t *testing.T) {
	f := &streamIngester{t: t, onRequest: func(stream, n int) streamAction {
		if stream == 0 && n == 1 {
			return actBreak
		}
		return actAnswer
	}}
	d := streamTestDistributor(t, f, 0, 0)
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 1, "a").StatusCode)
	resp := pushAs(d, testTenant, 2, "b")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, readBody(t, resp), "code = Unavailable desc = ingester going away")
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 3, "c").StatusCode)

	got := f.seen()
	require.Len(t, got, 3)
	require.Equal(t, []int{0, 0, 1}, []int{got[0].stream, got[1].stream, got[2].stream}, "the third push on a new stream")
	require.Equal(t, want(3, "c"), got[2].series)
}

// TestPushStream_Unimplemented checks that pushes to an ingester without
// PushStream go through the unary Push, every one.
func TestPushStream_Unimplemented(t *testing.T) {
	f := &streamIngester{t: t}
	d := streamTestDistributor(t, unaryOnly{f: f}, 0, 0)
	for i := range 3 {
		require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, float64(i), "a", "b").StatusCode)
	}
	got := f.seen()
	require.Len(t, got, 3)
	for i, p := range got {
		require.True(t, p.unary)
		require.Equal(t, testTenant, p.tenant)
		require.Equal(t, want(float64(i), "a", "b"), p.series)
	}
}

// TestPushStream_Oversize checks that a push over the stream's message
// size goes as a unary Push, and smaller ones on the stream.
func TestPushStream_Oversize(t *testing.T) {
	f := &streamIngester{t: t}
	d := streamTestDistributor(t, f, 1024, 0)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("metric_with_a_long_name_%d", i))
	}
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 1, many...).StatusCode)
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 2, "small").StatusCode)
	got := f.seen()
	require.Len(t, got, 2)
	require.True(t, got[0].unary)
	require.Equal(t, want(1, many...), got[0].series)
	require.False(t, got[1].unary)
	require.Equal(t, want(2, "small"), got[1].series)
}

// TestPushStream_DeadlineOfOne checks that a push whose answer does not
// come fails by its deadline alone: a push sent after it on the same
// stream is answered, and the stream stays.
func TestPushStream_DeadlineOfOne(t *testing.T) {
	f := &streamIngester{t: t, received: make(chan int, 8), onRequest: func(_, n int) streamAction {
		if n == 0 {
			return actHold
		}
		return actAnswer
	}}
	d := streamTestDistributor(t, f, 0, 300*time.Millisecond)
	slow := make(chan *http.Response, 1)
	go func() { slow <- pushAs(d, testTenant, 1, "held") }()
	<-f.received // The held push is on the stream.
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 2, "answered").StatusCode)
	<-f.received
	resp := <-slow
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, readBody(t, resp), "DeadlineExceeded")
	require.Equal(t, http.StatusNoContent, pushAs(d, testTenant, 3, "after").StatusCode)
	<-f.received
	for _, p := range f.seen() {
		require.Equal(t, 0, p.stream, "one stream throughout")
	}
}

// TestPushStream_SeriesRefs checks the series refs of a stream: labels
// go once per stream and tenant, then refs; the same labels of two tenants
// get different refs; a new stream starts afresh; and the ingester resolves
// every series to exactly what was pushed (streamIngester checks the
// protocol's rules).
func TestPushStream_SeriesRefs(t *testing.T) {
	f := &streamIngester{t: t, refs: true, onRequest: func(stream, n int) streamAction {
		if stream == 0 && n == 4 {
			return actBreak
		}
		return actAnswer
	}}
	d := streamTestDistributor(t, f, 0, 0)
	ok := func(tenantID string, v float64, names ...string) {
		t.Helper()
		resp := pushAs(d, tenantID, v, names...)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, readBody(t, resp))
	}
	ok(testTenant, 0, "warm") // Answered after the headers: refs are on from here.
	ok(testTenant, 1, "a", "b")
	ok(testTenant, 2, "a", "b", "c")
	ok("tenant-b", 3, "a")
	require.Equal(t, http.StatusServiceUnavailable, pushAs(d, testTenant, 4, "a").StatusCode)
	ok(testTenant, 5, "warm")
	ok(testTenant, 6, "a")
	// A series validation changed (labels sorted) is encoded again, whole.
	req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"job", "j", "__name__", "unsorted"}, 7, ms(0)), series([]string{"__name__", "a", "job", "j"}, 7, ms(0))}}
	raw, err := req.MarshalVT()
	require.NoError(t, err)
	resp := serve(d.PushHandler(), newPushRequest(snappyEncode(raw)))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())

	got := f.seen()
	require.Len(t, got, 8)
	require.Equal(t, want(7, "unsorted", "a"), got[7].series)
	require.Equal(t, []uint64{0, got[6].refs[0] &^ 1}, got[7].refs, "the same stream: a by ref")
	got = got[:7]
	wantSeries := [][]string{want(0, "warm"), want(1, "a", "b"), want(2, "a", "b", "c"), want(3, "a"), want(4, "a"), want(5, "warm"), want(6, "a")}
	for i, p := range got {
		require.Equal(t, wantSeries[i], p.series, "push %d", i)
	}
	def := func(v uint64) bool { return v&1 == 1 }
	refA, refB := got[1].refs[0]>>1, got[1].refs[1]>>1
	require.True(t, def(got[1].refs[0]) && def(got[1].refs[1]), "first sent: defined")
	require.NotEqual(t, refA, refB)
	require.Equal(t, []uint64{refA << 1, refB << 1, got[2].refs[2]}, got[2].refs, "then by ref")
	require.True(t, def(got[2].refs[2]))
	require.True(t, def(got[3].refs[0]), "another tenant's same labels: defined again")
	require.NotEqual(t, refA, got[3].refs[0]>>1, "with a ref of their own")
	require.Equal(t, []uint64{refA << 1}, got[4].refs, "the push the stream broke on")
	require.Equal(t, 1, got[6].stream)
	require.Equal(t, []uint64{refA<<1 | 1}, got[6].refs, "a new stream: defined again")
}

func snappyEncode(raw []byte) []byte { return snappy.Encode(nil, raw) }

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
