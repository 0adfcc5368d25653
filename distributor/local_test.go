package distributor

import (
	"flag"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// localTestMaxMsgSize is the gRPC message limit of both paths in
// TestLocalClients_AnswersAsGRPC, small enough for one request to pass it.
const localTestMaxMsgSize = 4 << 10

// startRealIngester starts an ingester in its own directory with a series
// limit per tenant of 4 and of 6 for the instance.
func startRealIngester(t *testing.T) *ingester.Ingester {
	t.Helper()
	var cfg ingester.Config
	fs := flag.NewFlagSet("ingester", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	cfg.Dir = t.TempDir()
	cfg.InstanceLimits.MaxSeries = 6
	lim := defaultLimits(t)
	lim.MaxGlobalSeriesPerUser = 4
	ing, err := ingester.New(cfg, ingester.Deps{Limits: tenantLimitsMap{def: lim}})
	require.NoError(t, err)
	require.NoError(t, ing.Starting(t.Context()))
	t.Cleanup(func() { require.NoError(t, ing.Stopping(t.Context())) })
	return ing
}

// TestLocalClients_AnswersAsGRPC pushes the same requests to two
// distributors, each with an ingester of its own: one over gRPC (the
// cluster's path), one in-process (the all-in-one's). Every answer must be
// the same, byte for byte: accepted pushes, rejections listed with their
// err-argus IDs, the per-tenant series limit, the instance series limit
// (a 5xx) and a request over the gRPC message size. Both rings list the
// same address, the gRPC server's, so that the answers that name the
// ingester are comparable.
func TestLocalClients_AnswersAsGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpccodec.ServerOption(), grpc.MaxRecvMsgSize(localTestMaxMsgSize))
	arguspb.RegisterIngesterServer(srv, startRealIngester(t))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()
	pool := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption(),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(localTestMaxMsgSize)))
	pool.SetMaxMsgSize(localTestMaxMsgSize)
	t.Cleanup(func() { require.NoError(t, pool.Close()) })

	reg := prometheus.NewRegistry()
	noRemote := ClientFactoryFunc(func(a string) (Pusher, error) {
		t.Errorf("the local path asked for a remote client of %s", a)
		return nil, ErrPoolClosed
	})
	local := NewLocalClients(noRemote, addr, startRealIngester(t), localTestMaxMsgSize, reg)

	newDist := func(c ClientFactory) *Distributor {
		r, err := ring.NewStatic(ring.Instance{ID: "ing", Addr: addr})
		require.NoError(t, err)
		d, err := New(testConfig(t), Deps{Ring: r, Clients: c, Limits: tenantLimitsMap{def: defaultLimits(t)}})
		require.NoError(t, err)
		return d // On the wall clock, as the ingesters are.
	}
	viaGRPC, viaLocal := newDist(pool), newDist(local)

	base := time.Now()
	s := func(name string, v float64, at time.Duration) *arguspb.TimeSeries {
		return series([]string{"__name__", name, "job", "j"}, v, float64(base.Add(at).UnixMilli()))
	}
	var long []*arguspb.TimeSeries // Over localTestMaxMsgSize in all.
	for i := range 40 {
		long = append(long, s(strings.Repeat("x", 100)+string(rune('A'+i)), 1, 0))
	}
	pushes := []struct {
		name   string
		tenant string
		series []*arguspb.TimeSeries
		code   int
	}{
		{"good", testTenant, []*arguspb.TimeSeries{s("a", 1, 0), s("b", 1, 0), s("c", 1, 0)}, http.StatusNoContent},
		{"out of order", testTenant, []*arguspb.TimeSeries{s("a", 2, -time.Minute), s("d", 1, 0)}, http.StatusBadRequest},
		{"per-tenant series limit", testTenant, []*arguspb.TimeSeries{s("a", 3, time.Second), s("e", 1, 0), s("f", 1, 0)}, http.StatusBadRequest},
		{"good again", testTenant, []*arguspb.TimeSeries{s("a", 4, 2*time.Second)}, http.StatusNoContent},
		{"instance series limit", "other", []*arguspb.TimeSeries{s("a", 1, 0), s("b", 1, 0), s("c", 1, 0)}, http.StatusServiceUnavailable},
		{"over the message size", testTenant, long, http.StatusServiceUnavailable},
	}
	for _, p := range pushes {
		body := encode(t, &arguspb.WriteRequest{Timeseries: p.series})
		req := func() *http.Request {
			r := newPushRequest(body)
			return r.WithContext(tenant.With(r.Context(), p.tenant))
		}
		g, l := serve(viaGRPC.PushHandler(), req()), serve(viaLocal.PushHandler(), req())
		require.Equal(t, p.code, g.Code, "%s over gRPC: %s", p.name, g.Body)
		require.Equal(t, g.Code, l.Code, p.name)
		require.Equal(t, g.Body.String(), l.Body.String(), p.name)
		require.Equal(t, g.Header(), l.Header(), p.name)
	}
	require.Equal(t, float64(len(pushes)-1), testutil.ToFloat64(local.local.pushes),
		"every push but the oversized one reached the ingester in-process")
}
