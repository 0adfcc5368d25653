package clustertest

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	commonmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// The push body must be what Prometheus itself sends: decode it with
// Prometheus's own remote-write 1.0 types.
func TestEncodeWriteRequest_IsRemoteWrite1(t *testing.T) {
	series := []TimeSeries{
		{Labels: Labels("__name__", "up", "job", "x"), Samples: []Sample{{T: 1000, V: 1}, {T: 2000, V: math.Inf(-1)}}},
		{Labels: Labels("job", "y", "job", "z")},
	}
	raw, err := snappy.Decode(nil, EncodeWriteRequest(t, series))
	require.NoError(t, err)
	var got prompb.WriteRequest
	require.NoError(t, got.Unmarshal(raw))
	want := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "x"}},
			Samples: []prompb.Sample{{Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: math.Inf(-1)}},
		},
		{Labels: []prompb.Label{{Name: "job", Value: "y"}, {Name: "job", Value: "z"}}, Samples: []prompb.Sample{}},
	}}
	require.Len(t, got.Timeseries, 2)
	require.Equal(t, want.Timeseries[0], got.Timeseries[0])
	require.Equal(t, want.Timeseries[1].Labels, got.Timeseries[1].Labels)
	require.Empty(t, got.Timeseries[1].Samples)
}

func TestParseAPITimestamp(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		got, err := ParseAPITimestamp(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Equal(t, in, strings.TrimRight(strings.TrimRight(FormatAPITime(want), "0"), "."), "round trip modulo trailing zeros")
	}
	f("1700000000", 1700000000000)
	f("1700000000.5", 1700000000500)
	f("1700000000.05", 1700000000050)
	f("1700000000.123", 1700000000123)
	f("-1.5", -1500)
	_, err := ParseAPITimestamp("1.2345")
	require.Error(t, err)
}

// The generated configuration must load with Prometheus's own parser.
func TestPrometheusConfig_Loads(t *testing.T) {
	text := prometheusConfig("127.0.0.1:9090", PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeTargets:  map[string]string{"argus": "127.0.0.1:8080"},
		RemoteWrite:    &RemoteWrite{URL: "http://127.0.0.1:8080/api/v1/push", Tenant: "team-a"},
	})
	cfg, err := config.Load(text, slog.New(slog.DiscardHandler))
	require.NoError(t, err, text)
	require.Equal(t, "1s", cfg.GlobalConfig.ScrapeInterval.String())
	require.Equal(t, "1s", cfg.GlobalConfig.ScrapeTimeout.String())
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	require.Equal(t, []string{"argus", "prometheus"}, jobs)
	require.Len(t, cfg.RemoteWriteConfigs, 1)
	rw := cfg.RemoteWriteConfigs[0]
	require.Equal(t, "http://127.0.0.1:8080/api/v1/push", rw.URL.String())
	require.Equal(t, map[string]string{"X-Scope-OrgID": "team-a"}, rw.Headers)
	require.Equal(t, "1s", rw.QueueConfig.BatchSendDeadline.String())
}

func TestSumMetric(t *testing.T) {
	const text = `# TYPE argus_discarded_samples_total counter
argus_discarded_samples_total{reason="a",tenant="x"} 2
argus_discarded_samples_total{reason="b",tenant="x"} 3
argus_discarded_samples_total{reason="b",tenant="y"} 5
# TYPE argus_ingester_memory_series gauge
argus_ingester_memory_series 7
# TYPE req_seconds histogram
req_seconds_bucket{le="+Inf"} 4
req_seconds_sum 1.5
req_seconds_count 4
`
	p := expfmt.NewTextParser(commonmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	f := func(name string, labels map[string]string, want float64) {
		t.Helper()
		require.InDelta(t, want, sumMetric(fams, name, labels), 0)
	}
	f("argus_discarded_samples_total", nil, 10)
	f("argus_discarded_samples_total", map[string]string{"tenant": "x"}, 5)
	f("argus_discarded_samples_total", map[string]string{"tenant": "x", "reason": "b"}, 3)
	f("argus_discarded_samples_total", map[string]string{"tenant": "z"}, 0)
	f("argus_ingester_memory_series", nil, 7)
	f("req_seconds_count", nil, 4)
	f("req_seconds_sum", nil, 1.5)
	f("absent_total", nil, 0)
}

func TestMatrixData(t *testing.T) {
	body := []byte(`{"status":"success","data":{"resultType":"matrix","result":[` +
		`{"metric":{"__name__":"a"},"values":[[1700000000,"1"],[1700000000.5,"NaN"],[1700000001.25,"-2.5e-05"]]}]}}`)
	got := MatrixData(t, 200, body)
	want := []Series{{Metric: map[string]string{"__name__": "a"}, Samples: []Sample{
		{T: 1700000000000, V: 1}, {T: 1700000000500, V: math.NaN()}, {T: 1700000001250, V: -2.5e-05},
	}}}
	require.Empty(t, cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool {
		return a == b || (math.IsNaN(a) && math.IsNaN(b))
	})))
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, func() string {
		n++
		if n < 3 {
			return "not yet"
		}
		return ""
	}, 10*time.Second)
	require.Equal(t, 3, n)
}

func TestJSONTimestampAndValue(t *testing.T) {
	require.Equal(t, "1700000000", JSONTimestamp(1700000000000))
	require.Equal(t, "1700000000.050", JSONTimestamp(1700000000050))
	require.Equal(t, "-0.500", JSONTimestamp(-500))
	require.Equal(t, "0.5", FormatValue(0.5))
	require.Equal(t, "1e-07", FormatValue(1e-7))
	require.Equal(t, "100000000000000000000", FormatValue(1e20))
	require.Equal(t, "1e+21", FormatValue(1e21))
	require.Equal(t, "NaN", FormatValue(math.NaN()))
	require.Equal(t, "+Inf", FormatValue(math.Inf(1)))
}

// TestPrometheusRemoteWrites checks the Prometheus helper against the real
// server: it becomes ready, scrapes itself and remote-writes (1.0, snappy,
// with the tenant header) to a receiver of the test's own.
func TestPrometheusRemoteWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real Prometheus: skipped in -short mode")
	}
	type push struct {
		header http.Header
		req    prompb.WriteRequest
	}
	pushes := make(chan push, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case pushes <- push{header: r.Header.Clone(), req: req}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	p := StartPrometheus(t, PrometheusOptions{RemoteWrite: &RemoteWrite{URL: recv.URL + "/api/v1/push", Tenant: "team-a"}})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-pushes:
			require.Equal(t, "team-a", got.header.Get(TenantHeader))
			require.Equal(t, "snappy", got.header.Get("Content-Encoding"))
			require.Equal(t, "0.1.0", got.header.Get("X-Prometheus-Remote-Write-Version"))
			for _, ts := range got.req.Timeseries {
				for _, l := range ts.Labels {
					if l.Name == "__name__" && l.Value == "up" {
						code, body := p.Query(t, "/api/v1/query", url.Values{"query": {"up"}})
						require.Equal(t, http.StatusOK, code, "%s", body)
						require.Contains(t, string(body), `"job":"prometheus"`)
						return
					}
				}
			}
		case <-deadline:
			t.Fatal("no remote-write request with an up sample within 30s")
		}
	}
}

// recordingTB records Errorf calls instead of failing the test.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckLog(t *testing.T) {
	f := func(log string, wantErrs int) {
		t.Helper()
		p := &process{name: "argus", logPath: filepath.Join(t.TempDir(), "argus.log")}
		require.NoError(t, os.WriteFile(p.logPath, []byte(log), 0o644))
		rec := &recordingTB{TB: t}
		p.checkLog(rec)
		require.Len(t, rec.errs, wantErrs, "%q", rec.errs)
	}
	f("level=INFO msg=ready\n", 0)
	f("2026/11/25 14:49:07 http: panic serving 127.0.0.1:56680: runtime error\n", 1)
	f("==================\nWARNING: DATA RACE\nRead at 0x00c000\n", 1)
}
