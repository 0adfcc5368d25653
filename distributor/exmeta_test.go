package distributor

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func marshalExemplar(t testing.TB, e prompb.Exemplar) []byte {
	t.Helper()
	b, err := e.Marshal()
	require.NoError(t, err)
	return b
}

func marshalMetadataEntry(t testing.TB, m prompb.MetricMetadata) []byte {
	t.Helper()
	b, err := m.Marshal()
	require.NoError(t, err)
	return b
}

// TestPush_Exemplars checks that valid exemplars reach the ingesters inside
// their series (a series with exemplars and no sample included) and that
// each invalid one is dropped and reported with its ID, the rest stored.
func TestPush_Exemplars(t *testing.T) {
	d, ing := newSingleIngester(t, testConfig(t), nil)
	trace := []prompb.Label{{Name: "trace_id", Value: "abc"}}
	good := marshalExemplar(t, prompb.Exemplar{Labels: trace, Value: 1, Timestamp: int64(ms(0))})
	long := marshalExemplar(t, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: strings.Repeat("é", 121)}}, Value: 1, Timestamp: int64(ms(0))})
	noTS := marshalExemplar(t, prompb.Exemplar{Labels: trace, Value: 1})
	dup := marshalExemplar(t, prompb.Exemplar{Labels: append(slices.Clone(trace), trace...), Value: 1, Timestamp: int64(ms(0))})
	withSamples := series([]string{"__name__", "up", "job", "x"}, 1, ms(0))
	withSamples.Exemplars = [][]byte{good, long}
	only := series([]string{"__name__", "h_bucket", "le", "1"})
	only.Exemplars = [][]byte{noTS, good, dup}
	w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{withSamples, only}})))
	require.Equal(t, http.StatusBadRequest, w.Code)
	body := w.Body.String()
	require.True(t, strings.HasPrefix(body, "err-argus-exemplar-labels-too-long"), body)
	for _, want := range []string{
		"0 series (0 samples) rejected, 1 samples accepted, 3 exemplars or metadata entries rejected",
		`err-argus-exemplar-labels-too-long: exemplar of {__name__="up", job="x"}: labels of 129 runes, over 128`,
		`err-argus-exemplar-missing-timestamp: exemplar of {__name__="h_bucket", le="1"}: no timestamp`,
		`err-argus-invalid-exemplar: exemplar of {__name__="h_bucket", le="1"}: duplicate label name "trace_id"`,
	} {
		require.Contains(t, body, want)
	}
	require.Equal(t, []string{
		`{__name__="up", job="x"} 1@1767323045000 exemplars=1 histograms=0`,
		`{__name__="h_bucket", le="1"} exemplars=1 histograms=0`,
	}, ing.pushed())
	ing.mu.Lock()
	defer ing.mu.Unlock()
	require.Equal(t, good, ing.series[0].Exemplars[0])
	require.Equal(t, good, ing.series[1].Exemplars[0])
	require.InDelta(t, 5, testutil.ToFloat64(d.metrics.receivedExemplars), 0)
	require.InDelta(t, 0, testutil.ToFloat64(d.metrics.discardedExemplars[exReasonSeriesRejected]), 0)
	require.InDelta(t, 1, testutil.ToFloat64(d.metrics.discardedExemplars[exReasonLabelsTooLong]), 0)
	require.InDelta(t, 1, testutil.ToFloat64(d.metrics.discardedExemplars[exReasonMissingTimestamp]), 0)
	require.InDelta(t, 1, testutil.ToFloat64(d.metrics.discardedExemplars[exReasonInvalid]), 0)
}

// TestPush_MetadataPlacement checks that each metadata entry goes to the
// replicas of its family's token, and only there, and that an invalid one
// is refused with its ID.
func TestPush_MetadataPlacement(t *testing.T) {
	d, r, ings := newReplicated(t, 5, 3, nil)
	fams := []string{"http_requests", "latency_seconds", "up", "go_goroutines", "process_cpu_seconds"}
	req := &arguspb.WriteRequest{}
	for _, f := range fams {
		req.Metadata = append(req.Metadata, marshalMetadataEntry(t, prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: f, Help: "h " + f}))
	}
	req.Metadata = append(req.Metadata, marshalMetadataEntry(t, prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, Help: "no name"}))
	w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.True(t, strings.HasPrefix(w.Body.String(), "err-argus-metadata-missing-metric-name"), w.Body.String())
	d.WaitPushes() // The push is answered at quorum: the third replica's may still run.

	byAddr := map[string]*fakeIngester{}
	for i, ing := range ings {
		byAddr[fmt.Sprintf("ing-%d:9095", i)] = ing
	}
	want := map[*fakeIngester][]string{}
	for _, f := range fams {
		key := append([]byte(testTenant+"\xff__name__\xff"), f+"\xff"...)
		replicas, err := r.Get(shardToken(key), nil)
		require.NoError(t, err)
		require.Len(t, replicas, 3)
		for _, inst := range replicas {
			want[byAddr[inst.Addr]] = append(want[byAddr[inst.Addr]], f)
		}
	}
	spread := 0
	for _, ing := range ings {
		var got []string
		ing.mu.Lock()
		metadata := ing.metadata
		ing.mu.Unlock()
		for _, raw := range metadata {
			var m prompb.MetricMetadata
			require.NoError(t, m.Unmarshal(raw))
			require.Equal(t, "h "+m.MetricFamilyName, m.Help)
			got = append(got, m.MetricFamilyName)
		}
		require.Equal(t, want[ing], got)
		if len(got) > 0 {
			spread++
		}
	}
	require.Greater(t, spread, 3, "families spread over the ring")
}

// TestPush_MetadataQuorum checks that metadata entries count in the write
// quorum: a metadata-only push whose replicas fail is a 5xx.
func TestPush_MetadataQuorum(t *testing.T) {
	d, _, ings := newReplicated(t, 3, 3, nil)
	for _, ing := range ings[:2] {
		ing.pushFunc = failWith(syscall.ECONNREFUSED)
	}
	req := &arguspb.WriteRequest{Metadata: [][]byte{marshalMetadataEntry(t, prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up"})}}
	w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.GreaterOrEqual(t, w.Code, 500, w.Body.String())
	require.Contains(t, w.Body.String(), `metadata of "up"`)

	ings[1].pushFunc = nil
	w = serve(d.PushHandler(), newPushRequest(encode(t, req)))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
}

func TestExemplarsWritten(t *testing.T) {
	wc := &writeCtx{exemplars: 9}
	wc.exInvalid[exReasonInvalid] = 1
	wc.exInvalid[exReasonLabelsTooLong] = 2
	wc.exInvalid[exReasonSeriesRejected] = 3
	wc.exInvalid[mdReasonInvalid] = 4 // metadata: not exemplars
	require.Equal(t, 3, wc.exemplarsWritten())
}
