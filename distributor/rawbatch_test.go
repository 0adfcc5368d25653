package distributor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// randomRequest builds n series, some of which validation changes: labels
// out of order, an empty label, a sample too far in the future, exemplars;
// and some it rejects.
func randomRequest(rnd *rand.Rand, n int) *arguspb.WriteRequest {
	req := &arguspb.WriteRequest{}
	for i := range n {
		ls := []string{"__name__", fmt.Sprintf("m%d", rnd.IntN(5)), "a", fmt.Sprint(i), "b", "x"}
		switch rnd.IntN(8) {
		case 0:
			ls = []string{"b", "x", "__name__", "m", "a", fmt.Sprint(i)} // unsorted
		case 1:
			ls = append(ls, "c", "") // an empty label
		case 2:
			ls = []string{"a", fmt.Sprint(i)} // no name: rejected
		}
		ts := series(ls, 1, ms(-1e6), 2, ms(0))
		switch rnd.IntN(6) {
		case 0:
			ts.Samples = append(ts.Samples, &arguspb.Sample{Value: 3, TimestampMs: int64(ms(1e12))})
		case 1:
			ts.Exemplars = [][]byte{{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

// TestRawBatch_SameRequest checks, for random requests mixing series the
// fast path takes, series validation changes and series it rejects, that
// the request each batch encodes (through the gRPC codec) is exactly what a
// model computes from the generated decoding: every series validated by
// seriesValidator.validate, placed by ring.ShardTokenProto.
func TestRawBatch_SameRequest(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	d, r, _ := newReplicated(t, 3, 2, nil)
	lim := defaultLimits(t)
	raws, encoded := 0, 0
	for round := range 50 {
		req := randomRequest(rnd, 1+rnd.IntN(60))
		want := wantBatches(t, req, r, lim)
		wc := getWriteCtx()
		wc.body = encode(t, req)
		require.NoError(t, wc.decode(1<<20))
		_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), lim)
		require.NoError(t, err)
		require.NoError(t, d.shard(wc, testTenant))
		for _, s := range wc.series {
			if s.raw != nil {
				raws++
			} else {
				encoded++
			}
		}
		require.Len(t, wc.batches, len(want), "round %d", round)
		for bi := range wc.batches {
			b := &wc.batches[bi]
			bs, err := grpccodec.Codec{}.Marshal(&rawBatch{wc: wc, b: b})
			require.NoError(t, err)
			var got arguspb.WriteRequest
			require.NoError(t, got.UnmarshalVT(bs.Materialize()))
			size := bs.Len()
			bs.Free()
			require.True(t, want[b.addr].EqualVT(&got), "round %d batch %s:\nwant %v\ngot  %v", round, b.addr, want[b.addr], &got)
			require.Equal(t, rawBatch{wc: wc, b: b}.SizeVT(), size)
		}
		wc.refs.Store(1)
		d.release(wc)
	}
	require.Greater(t, raws, 500, "series forwarded raw")
	require.Greater(t, encoded, 200, "series re-encoded")
}

// wantBatches is the model of a push's batches: the series of req, copied,
// validated one by one by seriesValidator.validate (exemplars dropped),
// those with samples left placed with ring.ShardTokenProto, by address.
func wantBatches(t *testing.T, req *arguspb.WriteRequest, r replicaPicker, lim *limits.Limits) map[string]*arguspb.WriteRequest {
	t.Helper()
	raw, err := req.MarshalVT()
	require.NoError(t, err)
	var copied arguspb.WriteRequest
	require.NoError(t, copied.UnmarshalVT(raw))
	v := newSeriesValidator(testNow, lim)
	want := map[string]*arguspb.WriteRequest{}
	for _, ts := range copied.Timeseries {
		ts.Exemplars = nil
		if serr := v.validate(ts); serr != nil && !serr.partial || len(ts.Samples) == 0 {
			continue
		}
		replicas, err := r.Get(ring.ShardTokenProto(testTenant, ts.Labels), nil)
		require.NoError(t, err)
		for _, inst := range replicas {
			if want[inst.Addr] == nil {
				want[inst.Addr] = &arguspb.WriteRequest{}
			}
			want[inst.Addr].Timeseries = append(want[inst.Addr].Timeseries, ts)
		}
	}
	return want
}

// TestClientPool_RawPush checks through a real gRPC server that a push sent
// with raw series bytes arrives as the validated series: sorted labels,
// empty ones and future samples removed.
func TestClientPool_RawPush(t *testing.T) {
	got := make(chan []string, 1)
	addr := startIngesterServer(t, &ingesterServer{pushFunc: func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		var ss []string
		for _, ts := range req.Timeseries {
			ss = append(ss, seriesString(ts))
		}
		got <- ss
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
		series([]string{"__name__", "up", "job", "a"}, 1, ms(0)),
		series([]string{"job", "b", "__name__", "up"}, 2, ms(0)),
		series([]string{"__name__", "up", "job", "c", "x", ""}, 3, ms(0), 4, ms(1e12)),
	}})
	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusBadRequest, w.Code, "the future sample is reported: %s", w.Body.String())
	require.Equal(t, []string{
		`{__name__="up", job="a"} 1@1767323045000`,
		`{__name__="up", job="b"} 2@1767323045000`,
		`{__name__="up", job="c"} 3@1767323045000`,
	}, <-got)
}

// TestRawBatch_SharedEncoding checks that with as many ingesters as the
// replication factor every batch holds every series and the push encodes
// them once: each push gets the same bytes, the model's request.
func TestRawBatch_SharedEncoding(t *testing.T) {
	d, r, _ := newReplicated(t, 3, 3, nil)
	req := randomRequest(rand.New(rand.NewPCG(1, 5)), 40)
	want := wantBatches(t, req, r, defaultLimits(t))
	wc := getWriteCtx()
	wc.body = encode(t, req)
	require.NoError(t, wc.decode(1<<20))
	_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), defaultLimits(t))
	require.NoError(t, err)
	require.NoError(t, d.shard(wc, testTenant))
	require.Len(t, wc.batches, 3)
	require.Len(t, wc.encodings, 1, "one encoding for the three batches")
	var first []byte
	for bi := range wc.batches {
		b := &wc.batches[bi]
		bs, err := grpccodec.Codec{}.Marshal(&rawBatch{wc: wc, b: b})
		require.NoError(t, err)
		got := bs.Materialize()
		bs.Free()
		if first == nil {
			first = got
		}
		require.Equal(t, first, got, "batch %d", bi)
		var gotReq arguspb.WriteRequest
		require.NoError(t, gotReq.UnmarshalVT(got))
		require.True(t, want[b.addr].EqualVT(&gotReq), "batch %s", b.addr)
	}
	wc.refs.Store(1)
	d.release(wc)
}
