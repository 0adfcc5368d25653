package distributor

import (
	"flag"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"

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

// TestLocalHandOver_LikeGRPC: the request the all-in-one hands its
// ingester (handOver, from what the distributor's scan read) is the one
// the gRPC path would send, field for field, for series the fast scan read
// and for one it left to the generated decoder (its labels encoded value
// first) that validation did not change; with metadata it is left to the
// encode-and-decode path.
func TestLocalHandOver_LikeGRPC(t *testing.T) {
	raw, err := benchRequest(50).MarshalVT()
	require.NoError(t, err)
	raw = append(raw, valueFirstSeries(t, benchRequest(51).Timeseries[50])...)
	wc := shardedPush(t, snappy.Encode(nil, raw))
	in := rawBatch{wc: wc, b: &wc.batches[0]}
	require.Len(t, in.b.series, 51)
	last := &wc.series[in.b.series[50]]
	require.True(t, last.ts != nil && last.raw != nil, "the value-first series is decoded and kept raw")

	want, err := in.request()
	require.NoError(t, err)
	got := (&localPusher{maxMsgSize: 1 << 24}).handOver(&in)
	require.NotNil(t, got, "plain series are handed over")
	require.True(t, want.EqualVT(got), "want %v\ngot  %v", want, got)
	grpccodec.ReleaseWriteRequest(got)

	require.Nil(t, (&localPusher{maxMsgSize: len(raw) / 2}).handOver(&in), "over the message size")
	in.b.meta = []int32{0}
	require.Nil(t, (&localPusher{maxMsgSize: 1 << 24}).handOver(&in), "metadata takes the other path")
}

// valueFirstSeries encodes ts as field 1 of a WriteRequest, each label's
// value field before its name field: valid protobuf that the distributor's
// fast scan leaves to the generated decoder.
func valueFirstSeries(t *testing.T, ts *arguspb.TimeSeries) []byte {
	t.Helper()
	var s []byte
	for _, l := range ts.Labels {
		var lb []byte
		lb = protowire.AppendTag(lb, 2, protowire.BytesType)
		lb = protowire.AppendString(lb, l.Value)
		lb = protowire.AppendTag(lb, 1, protowire.BytesType)
		lb = protowire.AppendString(lb, l.Name)
		s = protowire.AppendTag(s, 1, protowire.BytesType)
		s = protowire.AppendBytes(s, lb)
	}
	for _, smp := range ts.Samples {
		b, err := smp.MarshalVT()
		require.NoError(t, err)
		s = protowire.AppendTag(s, 2, protowire.BytesType)
		s = protowire.AppendBytes(s, b)
	}
	out := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(out, s)
}

// BenchmarkLocalHandOver: the all-in-one's hand-over of a push of 1000
// plain series (each of 10 labels and one sample) to its ingester, without
// the ingester's Push.
func BenchmarkLocalHandOver(b *testing.B) {
	wc := shardedPush(b, encode(b, benchRequest(1000)))
	in := rawBatch{wc: wc, b: &wc.batches[0]}
	p := &localPusher{maxMsgSize: 1 << 24}
	b.ReportAllocs()
	for b.Loop() {
		req := p.handOver(&in)
		if req == nil {
			b.Fatal("not handed over")
		}
		grpccodec.ReleaseWriteRequest(req)
	}
}
