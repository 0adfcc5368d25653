package ingester

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// pushLeased pushes tss as a replica receives a Push: decoded by grpccodec
// into leased memory (strings aliasing the encoded bytes, objects in pooled
// arrays). After Push returns it requires the lease released, then
// overwrites the encoded bytes and every series, label and sample object,
// as the next request decoded into that memory would.
func pushLeased(t *testing.T, ing *Ingester, tenantID string, tss ...*arguspb.TimeSeries) *arguspb.PushResponse {
	t.Helper()
	raw, err := (&arguspb.WriteRequest{Timeseries: tss}).MarshalVT()
	require.NoError(t, err)
	req := &arguspb.WriteRequest{}
	require.NoError(t, grpccodec.UnmarshalWriteRequestOwned(raw, req))
	series := slices.Clone(req.Timeseries)
	var labels []*arguspb.Label
	var samples []*arguspb.Sample
	for _, s := range series {
		labels = append(labels, s.Labels...)
		samples = append(samples, s.Samples...)
	}
	resp, err := ing.Push(tenantCtx(tenantID), req)
	require.NoError(t, err)
	require.Nil(t, req.Timeseries, "Push did not release its request")
	for k := range raw {
		raw[k] = 'X'
	}
	for _, s := range series {
		*s = arguspb.TimeSeries{}
	}
	for _, l := range labels {
		*l = arguspb.Label{Name: "clobbered", Value: "clobbered"}
	}
	for _, s := range samples {
		*s = arguspb.Sample{Value: -1, TimestampMs: -1}
	}
	return resp
}

// TestPushRetainsNoRequestMemory pushes leased requests (new series,
// existing series, and rejections that quote labels: invalid labels, the
// per-metric limit, out of order), clobbers their memory after each push,
// and requires the responses to equal those of an ingester pushed ordinary
// requests, and the series, their postings and the WAL replay to hold the
// original labels and samples.
func TestPushRetainsNoRequestMemory(t *testing.T) {
	leased := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(100, 2), nil)
	plain := limitsIngester(t, testConfig(t, t.TempDir()), newFakeLimits(100, 2), nil)
	a := []string{"__name__", "up", "instance", "host-a:9100", "job", "node"}
	b := []string{"__name__", "up", "instance", "host-b:9100", "job", "node"}
	c := []string{"__name__", "up", "instance", "host-c:9100", "job", "node"} // over the per-metric limit of 2
	unsorted := []string{"job", "node", "__name__", "bad"}
	pushes := [][]*arguspb.TimeSeries{
		{ts(a, sample{1000, 1}), ts(b, sample{1000, 2}), ts(c, sample{1000, 3}), ts(unsorted, sample{1000, 4})},
		{ts(a, sample{500, 5}, sample{2000, 6}), ts(b, sample{2000, 7})},
	}
	for n, tss := range pushes {
		got := pushLeased(t, leased, "t1", tss...)
		want, err := plain.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: tss})
		require.NoError(t, err)
		require.NotZero(t, want.RejectedSamples, "push %d rejects nothing: the test would not see a response aliasing the request", n)
		require.True(t, proto.Equal(want, got), "push %d:\nwant %v\ngot  %v", n, want, got)
	}

	want := map[string][]sample{
		lstr(a...): {{1000, 1}, {2000, 6}},
		lstr(b...): {{1000, 2}, {2000, 7}},
	}
	byJob := &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "node"}
	requireSamples(t, want, queryAll(t, leased, "t1", 0, 3000, byJob))
	names, err := leased.LabelValues(tenantCtx("t1"), &arguspb.LabelValuesRequest{Name: "instance", MaxTimeMs: 3000})
	require.NoError(t, err)
	require.Equal(t, []string{"host-a:9100", "host-b:9100"}, names.Values)

	leased = restart(t, leased)
	requireSamples(t, want, queryAll(t, leased, "t1", 0, 3000, byJob))
}
