package ingester

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// pushAliased pushes tss as the gRPC codec hands a Push to the ingester
// (every label string aliasing the encoded request), then overwrites the
// encoded request, as a reused buffer would be: nothing the ingester kept may
// change.
func pushAliased(t *testing.T, ing *Ingester, tenantID string, tss ...*arguspb.TimeSeries) {
	t.Helper()
	raw, err := (&arguspb.WriteRequest{Timeseries: tss}).MarshalVT()
	require.NoError(t, err)
	req := &arguspb.WriteRequest{}
	require.NoError(t, req.UnmarshalVTUnsafe(raw))
	resp, err := ing.Push(tenantCtx(tenantID), req)
	require.NoError(t, err)
	require.Zero(t, resp.RejectedSamples)
	for k := range raw {
		raw[k] = 'X'
	}
}

// TestPushKeepsNoAliasOfTheRequest pushes requests whose labels alias their
// encoded bytes, clobbers the bytes after each push, and requires the series
// created, the postings that find them, the lookups of later pushes and the
// WAL to hold the original labels.
func TestPushKeepsNoAliasOfTheRequest(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "up", "instance", "host-a:9100", "job", "node"}
	b := []string{"__name__", "up", "instance", "host-b:9100", "job", "node"}
	pushAliased(t, ing, "t1", ts(a, sample{1000, 1}), ts(b, sample{1000, 2}))
	pushAliased(t, ing, "t1", ts(a, sample{2000, 3}))

	want := map[string][]sample{
		lstr(a...): {{1000, 1}, {2000, 3}},
		lstr(b...): {{1000, 2}},
	}
	byJob := &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "node"}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, 3000, byJob))
	names, err := ing.LabelValues(tenantCtx("t1"), &arguspb.LabelValuesRequest{Name: "instance", MaxTimeMs: 3000})
	require.NoError(t, err)
	require.Equal(t, []string{"host-a:9100", "host-b:9100"}, names.Values)
	require.Equal(t, int64(2), ing.tenants["t1"].series.count.Load(), "a later push of the same labels created another series")

	ing = restart(t, ing)
	requireSamples(t, want, queryAll(t, ing, "t1", 0, 3000, byJob))
}
