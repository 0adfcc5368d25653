package ingester

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// servePushStream serves ing on 127.0.0.1 with Argus's codec (pushes are
// decoded into leased memory, as in production) and returns a client.
func servePushStream(t *testing.T, ing *Ingester) arguspb.IngesterClient {
	t.Helper()
	_, client := servePushStreamOn(t, ing)
	return client
}

// servePushStreamOn is servePushStream that also returns the server.
func servePushStreamOn(t *testing.T, ing *Ingester) (*grpc.Server, arguspb.IngesterClient) {
	t.Helper()
	srv := grpc.NewServer(grpccodec.ServerOption())
	arguspb.RegisterIngesterServer(srv, ing)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return srv, arguspb.NewIngesterClient(conn)
}

// noLabels is s without its labels, as a series sent by ref.
func noLabels(s *arguspb.TimeSeries) *arguspb.TimeSeries {
	s.Labels = nil
	return s
}

// answered requires the next answer of stream to be a success with no
// rejected sample.
func answered(t *testing.T, stream arguspb.Ingester_PushStreamClient) {
	t.Helper()
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode, resp.ErrorMessage)
	require.Zero(t, resp.Response.RejectedSamples, resp.Response.String())
}

// TestPushStream_SeriesRefs sends series refs on real streams: the stream
// announces them, a ref defined by one request names its labels in later
// ones (the ingester stores exactly the series sent), a ref used for
// another tenant or on a new stream ends the stream with InvalidArgument,
// and the pushes answered before stay stored.
func TestPushStream_SeriesRefs(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	client := servePushStream(t, ing)
	a, b, c := metricName(1), metricName(2), metricName(3)

	stream, err := client.PushStream(context.Background())
	require.NoError(t, err)
	md, err := stream.Header()
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, md.Get(SeriesRefsHeader))

	require.NoError(t, stream.Send(&arguspb.PushStreamRequest{Id: 1, Tenant: "t1", SeriesRefs: []uint64{1<<1 | 1, 2<<1 | 1},
		Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1}), ts(b, sample{1000, 2})}}}))
	answered(t, stream) // Before the next: a stream's pushes run concurrently.
	require.NoError(t, stream.Send(&arguspb.PushStreamRequest{Id: 2, Tenant: "t1", SeriesRefs: []uint64{2 << 1, 0, 1 << 1},
		Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
			noLabels(ts(b, sample{2000, 20})), ts(c, sample{2000, 30}), noLabels(ts(a, sample{2000, 10}))}}}))
	answered(t, stream)
	// Tenant t2 may not use t1's refs.
	require.NoError(t, stream.Send(&arguspb.PushStreamRequest{Id: 3, Tenant: "t2", SeriesRefs: []uint64{1 << 1},
		Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{noLabels(ts(a, sample{3000, 99}))}}}))
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), err)

	// A new stream has no refs.
	stream, err = client.PushStream(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&arguspb.PushStreamRequest{Id: 1, Tenant: "t1", SeriesRefs: []uint64{1 << 1},
		Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{noLabels(ts(a, sample{3000, 99}))}}}))
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), err)

	all := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 10000,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "test"}}}
	require.Equal(t, map[string][]sample{
		lstr(a...): {{1000, 1}, {2000, 10}},
		lstr(b...): {{1000, 2}, {2000, 20}},
		lstr(c...): {{2000, 30}},
	}, decodeSeries(t, querySeries(t, ing, "t1", all)))
	require.Empty(t, querySeries(t, ing, "t2", all))
}

// TestPushStream_SeriesRefsRules checks that each broken rule of
// series_refs ends the stream with InvalidArgument and stores nothing of
// the request.
func TestPushStream_SeriesRefsRules(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	client := servePushStream(t, ing)
	a := metricName(1)
	for name, req := range map[string]*arguspb.PushStreamRequest{
		"fewer refs than series": {SeriesRefs: []uint64{0},
			Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1}), ts(a, sample{2000, 1})}}},
		"defined twice": {SeriesRefs: []uint64{3, 3},
			Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1}), ts(a, sample{2000, 1})}}},
		"defined without labels": {SeriesRefs: []uint64{3},
			Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{noLabels(ts(a, sample{1000, 1}))}}},
		"by ref with labels": {SeriesRefs: []uint64{3, 2},
			Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1}), ts(a, sample{2000, 1})}}},
		"over the bound": {SeriesRefs: []uint64{(MaxStreamRefs+1)<<1 | 1},
			Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1})}}},
	} {
		t.Run(name, func(t *testing.T) {
			stream, err := client.PushStream(context.Background())
			require.NoError(t, err)
			req.Id, req.Tenant = 1, "t1"
			require.NoError(t, stream.Send(req))
			_, err = stream.Recv()
			require.Equal(t, codes.InvalidArgument, status.Code(err), err)
		})
	}
	require.Empty(t, querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 10000,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "test"}}}))
}

// TestPushStream_EndsWhenStopping: a push stream the client keeps open
// ends with Unavailable once the ingester stops, so that the gRPC server's
// graceful stop does not wait for the client to hang up; a stream opened
// after that ends at once. The push answered before stays stored.
func TestPushStream_EndsWhenStopping(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	srv, client := servePushStreamOn(t, ing)

	a := metricName(1)
	stream, err := client.PushStream(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&arguspb.PushStreamRequest{Id: 1, Tenant: "t1",
		Request: &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts(a, sample{1000, 1})}}}))
	answered(t, stream)

	require.NoError(t, ing.Stopping(context.Background()))
	_, err = stream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), err)
	late, err := client.PushStream(context.Background())
	require.NoError(t, err)
	_, err = late.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), err)

	// Both streams are over on the server: a graceful stop returns (the
	// test's own timeout is the bound) without the client closing them.
	srv.GracefulStop()

	reopened := startIngester(t, cfg)
	all := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 10000,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "test"}}}
	require.Equal(t, map[string][]sample{lstr(a...): {{1000, 1}}}, decodeSeries(t, querySeries(t, reopened, "t1", all)))
}
