package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestRemoteWrite2WrittenHeaders: a remote write 2.0 push that the
// ingester takes in part is answered 400 with
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written counting
// exactly what was stored, floats and histograms apart, and without the
// exemplars the ingester dropped (out of order, of a series it does not
// hold); a retry of the whole push is answered the same and stores nothing
// twice.
func TestRemoteWrite2WrittenHeaders(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const tenant = "rw2-written"
	a := clustertest.StartArgus(t, clustertest.Options{})
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	at := func(s int64) int64 { return base + s*1000 }
	hist := func(n int64) *histogram.Histogram {
		return &histogram.Histogram{Count: uint64(n), Sum: float64(n), PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{n}}
	}
	push := func(series ...rw2Series) (int, string, http.Header) {
		t.Helper()
		st := writev2.NewSymbolTable()
		req := &writev2.Request{}
		for _, s := range series {
			ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(labels.FromStrings(s.labels...), nil), Samples: s.samples, Histograms: s.histograms}
			for _, e := range s.exemplars {
				ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", e.trace), nil), Value: e.v, Timestamp: e.t})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		req.Symbols = st.Symbols()
		b, err := req.Marshal()
		require.NoError(t, err)
		return send(t, a, http.MethodPost, "/api/v1/push", tenant, map[string]string{
			"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request", "X-Prometheus-Remote-Write-Version": "2.0.0",
		}, snappy.Encode(nil, b))
	}
	written := func(h http.Header) [3]string {
		return [3]string{h.Get("X-Prometheus-Remote-Write-Samples-Written"), h.Get("X-Prometheus-Remote-Write-Histograms-Written"), h.Get("X-Prometheus-Remote-Write-Exemplars-Written")}
	}
	series := []string{"__name__", "w_total", "job", "j"}
	hseries := []string{"__name__", "w_seconds", "job", "j"}

	code, body, h := push(
		rw2Series{labels: series, samples: []writev2.Sample{{Value: 1, Timestamp: at(100)}, {Value: 2, Timestamp: at(200)}}, exemplars: []rw2Exemplar{{"a", 2, at(200)}}},
		rw2Series{labels: hseries, histograms: []writev2.Histogram{writev2.FromIntHistogram(0, at(200), hist(2))}},
	)
	require.Equal(t, http.StatusNoContent, code, body)
	require.Equal(t, [3]string{"2", "1", "1"}, written(h))

	partial := []rw2Series{
		{labels: series, samples: []writev2.Sample{{Value: 0.5, Timestamp: at(50)}, {Value: 3, Timestamp: at(300)}},
			exemplars: []rw2Exemplar{{"old", 1, at(150)}, {"b", 3, at(300)}}}, // out of order: dropped; stored
		{labels: hseries, samples: []writev2.Sample{{Value: 9, Timestamp: at(250)}}, // stored, before the histograms
			histograms: []writev2.Histogram{writev2.FromIntHistogram(0, at(100), hist(1)), writev2.FromIntHistogram(0, at(300), hist(3))}},
		{labels: []string{"__name__", "w_never", "job", "j"}, exemplars: []rw2Exemplar{{"c", 1, at(300)}, {"d", 1, at(301)}}}, // no sample: dropped
	}
	for _, attempt := range []string{"first", "retry"} {
		code, body, h = push(partial...)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", attempt, body)
		require.Contains(t, body, "err-argus-sample-out-of-order")
		require.Equal(t, [3]string{"2", "1", "1"}, written(h), "%s: %s", attempt, body)
	}

	stored := func(metric string) string {
		return string(queryBody(t, a, tenant, "count_over_time("+metric+"[20m])"))
	}
	require.Contains(t, stored("w_total"), `,"3"]`)
	require.Contains(t, stored("w_seconds"), `,"3"]`)
	code, ex := a.Query(t, tenant, clustertest.PromAPI+"/query_exemplars", url.Values{"query": {`{job="j"}`},
		"start": {clustertest.FormatAPITime(at(0))}, "end": {clustertest.FormatAPITime(at(400))}})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(ex), `"trace_id":"a"`)
	require.Contains(t, string(ex), `"trace_id":"b"`)
	require.NotContains(t, string(ex), `"trace_id":"old"`)
	require.NotContains(t, string(ex), `"trace_id":"c"`)
}

// rw2Series is one series of a remote write 2.0 push of a test.
type rw2Series struct {
	labels     []string
	samples    []writev2.Sample
	histograms []writev2.Histogram
	exemplars  []rw2Exemplar
}

type rw2Exemplar struct {
	trace string
	v     float64
	t     int64
}

// queryBody returns the body of an instant query q at now for tenant.
func queryBody(t *testing.T, a *clustertest.Process, tenant, q string) []byte {
	t.Helper()
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/query", url.Values{"query": {q}})
	require.Equal(t, http.StatusOK, code, string(body))
	return body
}
