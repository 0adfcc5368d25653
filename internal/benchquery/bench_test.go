// BenchmarkQuerierPeakRSS measures the peak RSS of a querier that answers one
// query over many series, without a limit and with
// -querier.max-fetched-series-per-query. Setup (three argus processes, one
// of them filled with 200K series) costs more than the op, and the peak of
// one query is the number wanted, so run one op, by hand (about 3 s on 2
// cores; ARGUS_BIN is optional, without it clustertest builds the binary):
//
//	make build
//	ARGUS_BIN=$PWD/bin/argus go test -run='^$' -bench=BenchmarkQuerierPeakRSS -benchtime=1x -count=1 -v ./internal/benchquery/ | tee new.txt
//	benchstat old.txt new.txt   # a change against a baseline, over several such runs
//
// BENCH_QUERY_SERIES sets the number of series (default 200000; it must be
// more than the limit, 10000), e.g. BENCH_QUERY_SERIES=20000 for a quick run.
// One op is the query once on each querier. With -benchtime=1x (intended),
// the peak RSS and its growth are those of that one query; with a time
// -benchtime, b.Loop repeats the queries and VmHWM keeps the highest peak
// over all of them. Allocations are not reported: this process is only the
// client.
package benchquery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

const (
	tenant     = "bench"
	metricName = "bench_metric"
	// query reads every series of the metric and returns one number.
	query = "count(" + metricName + ")"
	// seriesEnv overrides defaultSeries.
	seriesEnv     = "BENCH_QUERY_SERIES"
	defaultSeries = 200_000
	// batchSeries is the number of series of one push.
	batchSeries = 5000
	// samplesPerSeries samples, stepMs apart, the last at the query time.
	samplesPerSeries = 4
	stepMs           = int64(15 * time.Second / time.Millisecond)
	// seriesLimit is the -querier.max-fetched-series-per-query of the
	// limited querier.
	seriesLimit = 10_000
)

// commonFlags quiet the per-request logs and lift the ingestion rate and
// series limits, which pushing seriesCount series of one metric would hit.
var commonFlags = []string{"-log.level=warn", "-distributor.ingestion-rate-limit=0",
	"-ingester.max-global-series-per-user=0", "-ingester.max-global-series-per-metric=0"}

// querier is one querier-only process and what the benchmark measured of it.
// It is used by the benchmark goroutine only.
type querier struct {
	// name is unlimited or limited, the prefix of its metrics.
	name string
	proc *clustertest.Process
	// check fails b unless status and body are the answer this querier must
	// give.
	check func(b *testing.B, status int, body []byte)
	// rssBefore and rssAfter are VmHWM in bytes before the first query and
	// after the last.
	rssBefore, rssAfter int64
	// took is the wall time of its queries, summed; status is the HTTP
	// status of the last one.
	took   time.Duration
	status int
}

// BenchmarkQuerierPeakRSS fills one all-in-one argus with series of one
// metric, starts two querier-only processes that read its ingester, one
// without limits and one with -querier.max-fetched-series-per-query, and
// runs the same instant query on each. It fails unless the unlimited
// querier answers 200 with the count of every series and the limited one
// 422 with err-argus-max-fetched-series-per-query, and reports each one's
// peak RSS, its growth over the query, the query's wall time and the ratio
// of the peaks (limited/unlimited). It never asserts a memory bound.
//
//	load generator ──push──▶ argus -target=all ◀──gRPC Series──┬── querier (no limit)
//	                                                           └── querier (-querier.max-fetched-series-per-query)
func BenchmarkQuerierPeakRSS(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skipf("peak RSS is VmHWM of /proc/<pid>/status, which %s does not have", runtime.GOOS)
	}
	n := seriesCount(b)
	b.Run("series="+strconv.Itoa(n), func(b *testing.B) {
		grpcAddr, endMs := startIngester(b, n)
		qs := []*querier{
			{name: "unlimited", proc: startQuerier(b, grpcAddr), check: wantCount(n)},
			{name: "limited", proc: startQuerier(b, grpcAddr, "-querier.max-fetched-series-per-query="+strconv.Itoa(seriesLimit)),
				check: wantSeriesLimitError},
		}
		measure(b, qs, endMs)
		report(b, qs)
	})
}

// seriesCount returns $BENCH_QUERY_SERIES, or defaultSeries.
func seriesCount(b *testing.B) int {
	b.Helper()
	s := os.Getenv(seriesEnv)
	if s == "" {
		return defaultSeries
	}
	n, err := strconv.Atoi(s)
	require.NoError(b, err, "%s", seriesEnv)
	require.Greater(b, n, seriesLimit, "%s must be more than the limited querier's limit", seriesEnv)
	return n
}

// startIngester starts an all-in-one argus on a gRPC port chosen here (the
// querier processes dial it; clustertest does not export the one it picks)
// and pushes n series of metricName to it for tenant. It returns the gRPC
// address and the time of the last sample of every series, in Unix ms.
func startIngester(b *testing.B, n int) (grpcAddr string, endMs int64) {
	b.Helper()
	port := clustertest.FreePorts(b, 1)[0]
	// Later flags win: this -server.grpc-listen-port overrides the harness's.
	flags := append([]string{"-server.grpc-listen-port=" + strconv.Itoa(port)}, commonFlags...)
	p := clustertest.StartArgus(b, clustertest.Options{Flags: flags})

	endMs = time.Now().Truncate(time.Second).UnixMilli()
	start := time.Now()
	for first := 0; first < n; first += batchSeries {
		batch := makeBatch(first, min(first+batchSeries, n), endMs)
		status, body := p.Push(b, tenant, batch)
		require.True(b, status/100 == 2, "push of series %d..: status %d: %s", first, status, clustertest.Truncate(body, 2000))
	}
	b.Logf("pushed %d series x %d samples in %v", n, samplesPerSeries, time.Since(start).Round(time.Millisecond))
	if rss, err := peakRSS(p.PID()); err == nil {
		b.Logf("all-in-one argus (the ingester) peak RSS after the pushes: %.0f MiB", mib(rss))
	}
	return fmt.Sprintf("127.0.0.1:%d", port), endMs
}

// makeBatch returns series first..end-1 (end excluded): six labels, about
// 110 bytes of label text, sorted by name, and samplesPerSeries samples each
// up to endMs.
func makeBatch(first, end int, endMs int64) []clustertest.TimeSeries {
	batch := make([]clustertest.TimeSeries, 0, end-first)
	for i := first; i < end; i++ {
		samples := make([]clustertest.Sample, samplesPerSeries)
		for j := range samples {
			samples[j] = clustertest.Sample{T: endMs - int64(samplesPerSeries-1-j)*stepMs, V: float64(i + j)}
		}
		batch = append(batch, clustertest.TimeSeries{
			Labels: clustertest.Labels(
				"__name__", metricName,
				"container", "app",
				"instance", fmt.Sprintf("10.%d.%d.%d:9100", i>>16&0xff, i>>8&0xff, i&0xff),
				"job", "bench",
				"namespace", fmt.Sprintf("namespace-%02d", i%40),
				"pod", fmt.Sprintf("bench-deployment-%07d", i),
			),
			Samples: samples,
		})
	}
	return batch
}

// startQuerier starts a -target=querier process on a static ring of the one
// ingester at grpcAddr, with extra flags after the others.
func startQuerier(b *testing.B, grpcAddr string, extra ...string) *clustertest.Process {
	b.Helper()
	flags := append([]string{
		"-target=querier", // overrides StartArgus's -target=all
		"-ingester.ring.store=static",
		"-ingester.client.addresses=" + grpcAddr,
	}, commonFlags...)
	return clustertest.StartArgus(b, clustertest.Options{Flags: append(flags, extra...)})
}

// measure reads the peak RSS of every querier, then runs query at endMs on
// each, one after the other, once per b.Loop iteration, and reads the peak
// RSS again.
func measure(b *testing.B, qs []*querier, endMs int64) {
	b.Helper()
	var err error
	for _, q := range qs {
		q.rssBefore, err = peakRSS(q.proc.PID())
		require.NoError(b, err)
	}
	params := url.Values{"query": {query}, "time": {clustertest.FormatAPITime(endMs)}}
	for b.Loop() {
		for _, q := range qs {
			start := time.Now()
			status, body := q.proc.Query(b, tenant, "/prometheus/api/v1/query", params)
			q.took += time.Since(start)
			q.check(b, status, body)
			q.status = status
		}
	}
	for _, q := range qs {
		q.rssAfter, err = peakRSS(q.proc.PID())
		require.NoError(b, err)
	}
}

// report reports, per querier, its peak RSS, how much the queries raised it,
// and the mean wall time of its query; and the ratio of the limited
// querier's peak to the unlimited one's (qs[1] to qs[0]).
func report(b *testing.B, qs []*querier) {
	for _, q := range qs {
		b.ReportMetric(mib(q.rssAfter), q.name+"-peak-rss-MiB")
		b.ReportMetric(mib(q.rssAfter-q.rssBefore), q.name+"-rss-growth-MiB")
		b.ReportMetric(float64(q.took)/float64(time.Millisecond)/float64(b.N), q.name+"-query-ms")
		b.Logf("%s querier: status %d, peak RSS %.1f MiB (%.1f MiB before the query), %v per query",
			q.name, q.status, mib(q.rssAfter), mib(q.rssBefore), (q.took / time.Duration(b.N)).Round(time.Millisecond))
	}
	b.ReportMetric(float64(qs[1].rssAfter)/float64(qs[0].rssAfter), "x-peak-rss")
}

// wantCount returns a check that the answer is 200 with the vector
// [{} n]: every series was fetched.
func wantCount(n int) func(b *testing.B, status int, body []byte) {
	return func(b *testing.B, status int, body []byte) {
		b.Helper()
		require.Equal(b, http.StatusOK, status, "unlimited querier: %s", clustertest.Truncate(string(body), 2000))
		var resp struct {
			Data struct {
				Result []struct {
					Value [2]json.RawMessage `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(b, json.Unmarshal(body, &resp), "unlimited querier: %s", clustertest.Truncate(string(body), 2000))
		require.Len(b, resp.Data.Result, 1, "unlimited querier: %s", clustertest.Truncate(string(body), 2000))
		require.JSONEq(b, strconv.Quote(strconv.Itoa(n)), string(resp.Data.Result[0].Value[1]), "count of the series")
	}
}

// wantSeriesLimitError checks that the answer is the series limit's 422.
func wantSeriesLimitError(b *testing.B, status int, body []byte) {
	b.Helper()
	require.Equal(b, http.StatusUnprocessableEntity, status, "limited querier: %s", clustertest.Truncate(string(body), 2000))
	require.Contains(b, string(body), string(apierror.MaxFetchedSeriesPerQuery), "limited querier")
}

// mib converts bytes to MiB.
func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }
