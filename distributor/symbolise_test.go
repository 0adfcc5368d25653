package distributor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// pushedRW2 runs the remote-write 2.0 request raw through decoding,
// validation and sharding over n ingesters at replication factor rf, with
// series symbolised or not, and returns for each ingester the request its
// codec decodes from the batch's encoding, the same in the remote-write 1.0
// form, and the rejections.
func pushedRW2(t *testing.T, raw []byte, n, rf int, symbolise bool) (got, rw1 map[string]*arguspb.WriteRequest, rej string) {
	t.Helper()
	d, _, _ := newReplicated(t, n, rf, nil)
	wc := getWriteCtx()
	defer putWriteCtx(wc)
	wc.rej.reset(100)
	wc.body = snappy.Encode(nil, raw)
	require.NoError(t, wc.decodeRW2(1<<24, symbolise))
	lim := defaultLimits(t)
	_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), lim)
	require.NoError(t, err)
	if len(wc.series)+len(wc.meta) > 0 {
		require.NoError(t, d.shard(wc, testTenant))
	}
	got, rw1 = map[string]*arguspb.WriteRequest{}, map[string]*arguspb.WriteRequest{}
	for i := range wc.batches {
		b := &wc.batches[i]
		r := rawBatch{wc: wc, b: b}
		require.Equal(t, symbolise && b.symbolised, r.symbolised())
		buf := make([]byte, r.SizeVT())
		m, err := r.MarshalToSizedBufferVT(buf)
		require.NoError(t, err)
		require.Equal(t, len(buf), m)
		req := &arguspb.WriteRequest{}
		require.NoError(t, grpccodec.UnmarshalWriteRequestOwned(buf, req))
		got[b.addr] = req.CloneVT()
		grpccodec.ReleaseWriteRequest(req)
		if rw1[b.addr], err = r.request(); err != nil {
			t.Fatal(err)
		}
	}
	return got, rw1, fmt.Sprint(wc.rej.err(0))
}

// TestSymbolised_LikeTranslated checks that forwarding remote write 2.0
// symbolised gives every ingester the request that translating it into
// remote write 1.0 gives, and the same rejections, over random requests
// with every kind of series, bad ones included.
func TestSymbolised_LikeTranslated(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	for iter := range 100 {
		series := randomRW2(rng, 1+rng.IntN(20))
		for i := range series {
			// Plain float series most of the time, as senders send them.
			if rng.IntN(3) > 0 {
				series[i].histograms, series[i].exemplars = nil, nil
				for j := range series[i].samples {
					series[i].samples[j].StartTimestamp = 0
				}
			}
		}
		req := buildRW2(t, series...)
		if len(req.Timeseries) > 0 {
			badSeries(rng, req)
		}
		n := 1 + rng.IntN(5)
		requireSymbolisedLikeTranslated(t, marshalRW2(t, req), n, min(n, 1+rng.IntN(3)))
		_ = iter
	}
}

// requireSymbolisedLikeTranslated checks that every ingester is pushed the
// same request, in the symbolised form or in the 1.0 form, as when raw is
// translated, and that the rejections are the same.
func requireSymbolisedLikeTranslated(t *testing.T, raw []byte, n, rf int) {
	t.Helper()
	want, wantRW1, wantRej := pushedRW2(t, raw, n, rf, false)
	got, gotRW1, gotRej := pushedRW2(t, raw, n, rf, true)
	require.Equal(t, wantRej, gotRej)
	require.Equal(t, len(want), len(got))
	for addr, w := range want {
		require.True(t, w.EqualVT(got[addr]), "%s:\nwant %v\ngot  %v", addr, w, got[addr])
		require.True(t, wantRW1[addr].EqualVT(gotRW1[addr]), "%s (1.0 form)", addr)
		require.True(t, w.EqualVT(gotRW1[addr]), "%s (1.0 form against the codec's)", addr)
	}
}

// badSeries makes a few series of req invalid the ways the fast checks
// refuse: labels out of order, an empty value, no metric name, a sample in
// the future, a reference to the empty symbol as a name.
func badSeries(rng *rand.Rand, req *writev2.Request) {
	sym := func(s string) uint32 {
		for i, x := range req.Symbols {
			if x == s {
				return uint32(i)
			}
		}
		req.Symbols = append(req.Symbols, s)
		return uint32(len(req.Symbols) - 1)
	}
	for range rng.IntN(4) {
		ts := &req.Timeseries[rng.IntN(len(req.Timeseries))]
		refs := ts.LabelsRefs
		switch rng.IntN(5) {
		case 0:
			if len(refs) >= 4 {
				refs[0], refs[1], refs[2], refs[3] = refs[2], refs[3], refs[0], refs[1]
			}
		case 1:
			ts.LabelsRefs = append(refs, sym("zzz"), 0)
		case 2:
			if len(refs) >= 2 {
				ts.LabelsRefs = refs[2:]
			}
		case 3:
			ts.Samples = append(ts.Samples, writev2.Sample{Value: 1, Timestamp: testNow.Add(time.Hour).UnixMilli()})
		case 4:
			ts.LabelsRefs = append([]uint32{0, sym("v" + strconv.Itoa(rng.IntN(3)))}, refs...)
		}
	}
}

// TestSymbolised_Forwarded checks that a push of plain float series is
// forwarded symbolised, with the symbol table copied at once, and a
// series that fails the fast checks is translated.
func TestSymbolised_Forwarded(t *testing.T) {
	var series []testRW2Series
	for i := range 3 {
		series = append(series, testRW2Series{labels: labels.FromStrings("__name__", "up", "i", fmt.Sprint(i)), samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}})
	}
	req := buildRW2(t, series...)
	req.Symbols = append(req.Symbols, "zzz")
	req.Timeseries[1].LabelsRefs = append(req.Timeseries[1].LabelsRefs, uint32(len(req.Symbols)-1), 0) // zzz="": removed by validate.
	wc := getWriteCtx()
	defer putWriteCtx(wc)
	wc.rej.reset(10)
	wc.body = snappy.Encode(nil, marshalRW2(t, req))
	require.NoError(t, wc.decodeRW2(1<<24, true))
	require.GreaterOrEqual(t, wc.rw2.symbolsAt[0], int32(0), "symbols adjacent")
	require.True(t, wc.series[0].symbolised && wc.series[1].symbolised && wc.series[2].symbolised)
	d, _, _ := newReplicated(t, 1, 1, nil)
	_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), defaultLimits(t))
	require.NoError(t, err)
	require.True(t, wc.series[0].symbolised)
	require.False(t, wc.series[1].symbolised, "translated for validate")
	require.Equal(t, `{__name__="up", i="1"}`, formatLabels(wc.series[1].ts.Labels))
}

// TestClientPool_Symbolised pushes remote write 2.0 through a real gRPC
// connection from a ClientPool to ingesters of three kinds: one with the
// IngesterSymbols service and Argus's codec gets the series symbolised,
// one without the service (an older version) gets them in the 1.0 form,
// and one whose server has another codec fails the push (a 5xx) rather
// than acknowledge a request it decoded without its series.
func TestClientPool_Symbolised(t *testing.T) {
	body := snappy.Encode(nil, marshalRW2(t, buildRW2(t,
		testRW2Series{labels: labels.FromStrings("__name__", "up", "job", "x"), samples: []writev2.Sample{{Value: 1, Timestamp: 1767323045000}}},
		testRW2Series{labels: labels.FromStrings("__name__", "up", "job", "y"), samples: []writev2.Sample{{Value: 2, Timestamp: 1767323045000}}},
	)))
	want := []string{`{__name__="up", job="x"} 1@1767323045000`, `{__name__="up", job="y"} 2@1767323045000`}
	for _, c := range []struct {
		name           string
		codec, symbols bool
		wantCode       int
	}{
		{"symbols", true, true, http.StatusNoContent},
		{"older ingester", true, false, http.StatusNoContent},
		{"older ingester, default codec", false, false, http.StatusNoContent},
		{"symbols, default codec", false, true, http.StatusInternalServerError},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan []string, 2)
			srv := &ingesterServer{pushFunc: func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
				var ss []string
				for _, ts := range req.Timeseries {
					ss = append(ss, seriesString(ts))
				}
				got <- ss
				return &arguspb.PushResponse{}, nil
			}}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var opts []grpc.ServerOption
			if c.codec {
				opts = append(opts, grpccodec.ServerOption())
			}
			s := grpc.NewServer(opts...)
			arguspb.RegisterIngesterServer(s, srv)
			if c.symbols {
				grpccodec.RegisterIngesterSymbolsServer(s, srv)
			}
			go func() { _ = s.Serve(lis) }()
			t.Cleanup(s.Stop)

			pool := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption())
			t.Cleanup(func() { require.NoError(t, pool.Close()) })
			r, err := ring.NewStatic(ring.Instance{ID: "ing", Addr: lis.Addr().String()})
			require.NoError(t, err)
			d, err := New(testConfig(t), Deps{Ring: r, Clients: pool, Limits: tenantLimitsMap{def: defaultLimits(t)}})
			require.NoError(t, err)
			d.now = func() time.Time { return testNow }
			for range 2 { // The second push to an older ingester goes straight to the 1.0 form.
				w := serve(d.PushHandler(), newRW2RequestBody(body))
				require.Equal(t, c.wantCode, w.Code, w.Body.String())
				if c.wantCode == http.StatusNoContent {
					require.Equal(t, want, <-got)
				}
			}
			require.Empty(t, got)
		})
	}
}
