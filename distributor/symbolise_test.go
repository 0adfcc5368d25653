package distributor

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
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
		raw := marshalRW2(t, req)
		n := 1 + rng.IntN(5)
		rf := min(n, 1+rng.IntN(3))
		want, wantRW1, wantRej := pushedRW2(t, raw, n, rf, false)
		got, gotRW1, gotRej := pushedRW2(t, raw, n, rf, true)
		require.Equal(t, wantRej, gotRej, "iteration %d", iter)
		require.Equal(t, len(want), len(got))
		for addr, w := range want {
			require.True(t, w.EqualVT(got[addr]), "iteration %d, %s:\nwant %v\ngot  %v", iter, addr, w, got[addr])
			require.True(t, wantRW1[addr].EqualVT(gotRW1[addr]), "iteration %d, %s (1.0 form)", iter, addr)
			require.True(t, w.EqualVT(gotRW1[addr]), "iteration %d, %s (1.0 form against the codec's)", iter, addr)
		}
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

