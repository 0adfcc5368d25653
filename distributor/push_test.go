package distributor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// TestPush_IngesterRejections checks that the series an ingester rejects in
// its PushResponse make a 400 that lists them, and are counted by reason.
func TestPush_IngesterRejections(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, ing := newSingleIngester(t, testConfig(t), reg)
	ing.pushFunc = func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		return &arguspb.PushResponse{
			RejectedSamples: 4, // One more than listed: the ingester capped its list.
			Rejected: []*arguspb.RejectedSeries{
				{
					Labels:          []*arguspb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
					Reason:          arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER,
					Message:         "sample at 1000 older than 2000",
					RejectedSamples: 2,
				},
				{
					Labels:          []*arguspb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "b"}},
					Reason:          arguspb.RejectReason_REJECT_REASON_TOO_OLD,
					RejectedSamples: 1,
				},
			},
		}, nil
	}
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up", "job", "a"}, 1, ms(-2*time.Second), 2, ms(-time.Second)),
		series([]string{"__name__", "up", "job", "b"}, 1, ms(0)),
		series([]string{"__name__", "up", "job", "c"}, 1, ms(0), 2, ms(time.Second)),
	}})
	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, `err-argus-sample-out-of-order: tenant "tenant-a": 2 series (4 samples) rejected, 1 samples accepted`+"\n"+
		`err-argus-sample-out-of-order: {__name__="up", job="a"}: out of order sample: sample at 1000 older than 2000`+"\n"+
		`err-argus-sample-too-old: {__name__="up", job="b"}: sample too old: 1 samples rejected`+"\n", w.Body.String())

	discarded := func(reason string) float64 {
		return testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues(reason, testTenant))
	}
	require.InDelta(t, 2.0, discarded("out_of_order"), 0)
	require.InDelta(t, 1.0, discarded("too_old"), 0)
	require.InDelta(t, 1.0, discarded("unknown"), 0)
	require.Len(t, ing.pushed(), 3)
}

// TestPush_IngesterErrors checks that a failed ingester push is a 5xx that
// names the ingester, whatever else happened to the request.
func TestPush_IngesterErrors(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		block      bool // the fake waits for its context to end
		badSeries  bool // the request also has an invalid series
		wantStatus int
	}{
		{name: "unavailable", err: status.Error(codes.Unavailable, "connection refused"), wantStatus: http.StatusServiceUnavailable},
		{name: "resource exhausted", err: status.Error(codes.ResourceExhausted, "too many in-flight pushes"), wantStatus: http.StatusServiceUnavailable},
		{name: "deadline exceeded", err: status.Error(codes.DeadlineExceeded, "slow"), wantStatus: http.StatusServiceUnavailable},
		{name: "internal", err: status.Error(codes.Internal, "wal write failed"), wantStatus: http.StatusInternalServerError},
		{name: "unknown", err: status.Error(codes.Unknown, "boom"), wantStatus: http.StatusInternalServerError},
		{name: "plain error", err: errors.New("boom"), wantStatus: http.StatusInternalServerError},
		{name: "remote timeout", block: true, wantStatus: http.StatusServiceUnavailable},
		{name: "5xx wins over rejected series", err: status.Error(codes.Unavailable, "down"), badSeries: true, wantStatus: http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RemoteTimeout = 20 * time.Millisecond
			d, ing := newSingleIngester(t, cfg, nil)
			ing.pushFunc = func(ctx context.Context, _ *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
				if c.block {
					<-ctx.Done()
					return nil, status.FromContextError(ctx.Err()).Err()
				}
				return nil, c.err
			}
			ts := []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(0))}
			if c.badSeries {
				ts = append(ts, series([]string{"job", "x"}, 1, ms(0)))
			}
			w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: ts})))
			require.Equal(t, c.wantStatus, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), "push to ingester ing-1:9095: ")
			require.InDelta(t, 1.0, testutil.ToFloat64(d.metrics.ingesterPushFailures.WithLabelValues("ing-1:9095")), 0)
		})
	}
}

func TestPush_ClientFactoryError(t *testing.T) {
	r, err := ring.NewStatic(ring.Instance{ID: "gone", Addr: "gone:9095"})
	require.NoError(t, err)
	d := newTestDistributor(t, testConfig(t), r, nil, nil)
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(0))}})
	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.Contains(t, w.Body.String(), "push to ingester gone:9095: no fake ingester at gone:9095")
}

// fakeRing is a function-field fake of the ring. rf is its replication
// factor; zero means 1.
type fakeRing struct {
	getFunc func(token uint32, buf []ring.Instance) ([]ring.Instance, error)
	rf      int
}

func (f fakeRing) Get(token uint32, buf []ring.Instance) ([]ring.Instance, error) {
	return f.getFunc(token, buf)
}

func (f fakeRing) ReplicationFactor() int { return max(1, f.rf) }

func TestPush_RingErrors(t *testing.T) {
	cases := map[string]fakeRing{
		"error": {getFunc: func(uint32, []ring.Instance) ([]ring.Instance, error) {
			return nil, ring.ErrEmptyRing
		}},
		"no instance": {getFunc: func(_ uint32, buf []ring.Instance) ([]ring.Instance, error) {
			return buf, nil
		}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			d := newTestDistributor(t, testConfig(t), r, nil, nil)
			body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(0))}})
			w := serve(d.PushHandler(), newPushRequest(body))
			require.Equal(t, http.StatusServiceUnavailable, w.Code)
			require.Contains(t, w.Body.String(), "no ingester for series")
		})
	}
}

// TestPush_TwoIngesters checks sharding over a static ring of two: each
// ingester gets a non-empty share, the shares are disjoint, their union is
// the request, each series is where ring.ShardTokenProto places it, and each
// push carries the tenant.
//
//	request (200 series) ──▶ distributor ──┬──▶ ing-0 (token % 2 == 0)
//	                                       └──▶ ing-1 (token % 2 == 1)
func TestPush_TwoIngesters(t *testing.T) {
	r, err := ring.NewStatic(ring.Instance{ID: "ing-0", Addr: "ing-0:9095"}, ring.Instance{ID: "ing-1", Addr: "ing-1:9095"})
	require.NoError(t, err)
	ings := map[string]*fakeIngester{"ing-0:9095": {}, "ing-1:9095": {}}
	d := newTestDistributor(t, testConfig(t), r, ings, nil)

	req := &arguspb.WriteRequest{}
	var want []string
	wantOn := map[string][]string{}
	for i := range 200 {
		ts := series([]string{"__name__", "m", "i", fmt.Sprint(i)}, float64(i), ms(0))
		req.Timeseries = append(req.Timeseries, ts)
		s := seriesString(ts)
		want = append(want, s)
		owner, err := r.Get(ring.ShardTokenProto(testTenant, ts.Labels), nil)
		require.NoError(t, err)
		wantOn[owner[0].Addr] = append(wantOn[owner[0].Addr], s)
	}
	w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	var union []string
	for addr, ing := range ings {
		got := ing.pushed()
		require.NotEmpty(t, got, addr)
		require.Equal(t, wantOn[addr], got, addr)
		require.Equal(t, []string{testTenant}, ing.tenants, "one push per ingester, with the tenant")
		union = append(union, got...)
	}
	slices.Sort(union)
	slices.Sort(want)
	require.Equal(t, want, union, "disjoint shares whose union is the request")
}

// TestPush_TwoIngestersOneFails checks that one failed ingester fails the
// whole request with its status, though the other stored its share.
func TestPush_TwoIngestersOneFails(t *testing.T) {
	r, err := ring.NewStatic(ring.Instance{ID: "ing-0", Addr: "ing-0:9095"}, ring.Instance{ID: "ing-1", Addr: "ing-1:9095"})
	require.NoError(t, err)
	failing := &fakeIngester{pushFunc: func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		return nil, status.Error(codes.Unavailable, "down")
	}}
	ings := map[string]*fakeIngester{"ing-0:9095": {}, "ing-1:9095": failing}
	d := newTestDistributor(t, testConfig(t), r, ings, nil)
	req := &arguspb.WriteRequest{}
	for i := range 50 {
		req.Timeseries = append(req.Timeseries, series([]string{"__name__", "m", "i", fmt.Sprint(i)}, 1, ms(0)))
	}
	w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, `err-argus-ingester-unavailable: tenant "tenant-a": push to ingester ing-1:9095: rpc error: code = Unavailable desc = down`+"\n", w.Body.String())
}

// ingesterServer is a real gRPC Ingester server with a function-field Push.
type ingesterServer struct {
	arguspb.UnimplementedIngesterServer
	pushFunc func(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error)
}

func (s *ingesterServer) Push(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	return s.pushFunc(ctx, req)
}

// startIngesterServer serves srv on 127.0.0.1:0 until the test ends.
func startIngesterServer(t *testing.T, srv arguspb.IngesterServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	arguspb.RegisterIngesterServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// TestClientPool_EndToEnd pushes through a real gRPC connection from a
// ClientPool: the ingester receives the series and the tenant in metadata.
func TestClientPool_EndToEnd(t *testing.T) {
	type received struct {
		tenant string
		series []string
	}
	got := make(chan received, 1)
	addr := startIngesterServer(t, &ingesterServer{pushFunc: func(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		tn, err := tenant.FromContext(ctx)
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		var ss []string
		for _, ts := range req.Timeseries {
			ss = append(ss, seriesString(ts))
		}
		got <- received{tenant: tn, series: ss}
		return &arguspb.PushResponse{}, nil
	}})
	pool := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()))
	t.Cleanup(func() { require.NoError(t, pool.Close()) })
	r, err := ring.NewStatic(ring.Instance{ID: "ing", Addr: addr})
	require.NoError(t, err)
	d, err := New(testConfig(t), Deps{Ring: r, Clients: pool, Limits: tenantLimitsMap{def: defaultLimits(t)}})
	require.NoError(t, err)
	d.now = func() time.Time { return testNow }

	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"job", "x", "__name__", "up"}, 1, ms(0)),
	}})
	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, received{tenant: testTenant, series: []string{`{__name__="up", job="x"} 1@1767323045000`}}, <-got)
}

func TestClientPool(t *testing.T) {
	pool := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()))
	a1, err := pool.Get("127.0.0.1:1")
	require.NoError(t, err)
	a2, err := pool.Get("127.0.0.1:1")
	require.NoError(t, err)
	b, err := pool.Get("127.0.0.1:2")
	require.NoError(t, err)
	require.Same(t, a1, a2)
	require.NotSame(t, a1, b)

	require.NoError(t, pool.Close())
	require.NoError(t, pool.Close(), "idempotent")
	_, err = pool.Get("127.0.0.1:1")
	require.ErrorIs(t, err, ErrPoolClosed)

	_, err = NewClientPool().Get("127.0.0.1:3") // No transport credentials.
	require.Error(t, err)
}
