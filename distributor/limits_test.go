package distributor

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestPushHandler_LabelLimits checks each per-tenant label limit: exactly at
// the limit passes, one over is rejected naming the series, the limit and the
// tenant, and the rest of the push is stored.
func TestPushHandler_LabelLimits(t *testing.T) {
	lim := defaultLimits(t)
	lim.MaxLabelNamesPerSeries = 3
	lim.MaxLabelNameLength = 8
	lim.MaxLabelValueLength = 6
	ok := series([]string{"__name__", "up", "abcde", "123456"}, 1, ms(0))
	cases := []struct {
		name string
		bad  *arguspb.TimeSeries
		want string
	}{
		{"too many labels", series([]string{"__name__", "up", "a", "1", "b", "2", "c", "3"}, 1, ms(0)),
			`err-argus-max-label-names-per-series: {__name__="up", a="1", b="2", c="3"}: too many labels: the series has 4 labels, over -validation.max-label-names-per-series=3`},
		{"label name too long", series([]string{"__name__", "up", "abcdefghi", "1"}, 1, ms(0)),
			`err-argus-label-name-too-long: {__name__="up", abcdefghi="1"}: label name too long: label name "abcdefghi" is 9 bytes long, over -validation.max-length-label-name=8`},
		{"label value too long", series([]string{"__name__", "up", "a", "1234567"}, 1, ms(0)),
			`err-argus-label-value-too-long: {__name__="up", a="1234567"}: label value too long: the value of label "a" is 7 bytes long, over -validation.max-length-label-value=6`},
		{"the metric name counts as a value", series([]string{"__name__", "up_too_long"}, 1, ms(0)),
			`err-argus-label-value-too-long: {__name__="up_too_long"}: label value too long: the value of label "__name__" is 11 bytes long, over -validation.max-length-label-value=6`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ing := newSingleIngester(t, testConfig(t), nil)
			d.limits = tenantLimitsMap{def: lim}
			w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{
				Timeseries: []*arguspb.TimeSeries{ok.CloneVT(), c.bad},
			})))
			require.Equal(t, http.StatusBadRequest, w.Code)
			id := c.want[:strings.Index(c.want, ":")]
			require.Equal(t, id+`: tenant "tenant-a": 1 series (1 samples) rejected, 1 samples accepted`+"\n"+c.want+"\n", w.Body.String())
			require.Equal(t, []string{`{__name__="up", abcde="123456"} 1@1767323045000`}, ing.pushed())
		})
	}
}

// TestPushHandler_LabelLimitsPerTenant checks that one tenant's override
// does not apply to another.
func TestPushHandler_LabelLimitsPerTenant(t *testing.T) {
	strict := defaultLimits(t)
	strict.MaxLabelNamesPerSeries = 1
	d, _ := newSingleIngester(t, testConfig(t), nil)
	d.limits = tenantLimitsMap{def: defaultLimits(t), tenants: map[string]*limits.Limits{"strict": strict}}
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up", "a", "1"}, 1, ms(0))}})
	require.Equal(t, http.StatusNoContent, serve(d.PushHandler(), newPushRequest(body)).Code)
	r := newPushRequest(body)
	r = r.WithContext(tenant.With(r.Context(), "strict"))
	require.Equal(t, http.StatusBadRequest, serve(d.PushHandler(), r).Code)
}

// fixedMembers is a memberCounter with a fixed count.
type fixedMembers int

func (n fixedMembers) HealthyMembers(string) int { return int(n) }

// TestPushHandler_RateLimit drives the token bucket with a fake clock: the
// burst passes, the next push gets 429 with Retry-After and nothing is
// pushed, time refills the bucket, the limit is shared by the healthy
// distributors, and a push larger than the burst passes on a full bucket.
func TestPushHandler_RateLimit(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, ing := newSingleIngester(t, testConfig(t), reg)
	lim := defaultLimits(t)
	lim.IngestionRate = 20 // samples/s over 2 distributors: 10/s here
	lim.IngestionBurstSize = 10
	d.limits = tenantLimitsMap{def: lim}
	d.distributors = fixedMembers(2)
	now := testNow
	d.now = func() time.Time { return now }
	push := func(n int, tn string) *httpResult {
		var ts []*arguspb.TimeSeries
		for i := range n {
			ts = append(ts, series([]string{"__name__", "m", "i", fmt.Sprint(i)}, 1, float64(now.UnixMilli())))
		}
		r := newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: ts}))
		r = r.WithContext(tenant.With(r.Context(), tn))
		w := serve(d.PushHandler(), r)
		return &httpResult{code: w.Code, body: w.Body.String(), retryAfter: w.Header().Get("Retry-After")}
	}

	require.Equal(t, http.StatusNoContent, push(10, testTenant).code) // the burst
	before := len(ing.pushed())
	res := push(5, testTenant)
	require.Equal(t, http.StatusTooManyRequests, res.code)
	require.Equal(t, "1", res.retryAfter)
	require.Equal(t, `err-argus-ingestion-rate-limited: tenant "tenant-a": ingestion rate limit -distributor.ingestion-rate-limit=20 (10 samples/s on each of 2 distributors) with burst -distributor.ingestion-burst-size=10 exceeded by a push of 5 samples, the first series {__name__="m", i="0"}; retry after 1s`+"\n", res.body)
	require.Len(t, ing.pushed(), before, "nothing of a rate-limited push is stored")
	require.InDelta(t, 5.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("rate_limited", testTenant)), 0)

	// Another tenant has its own bucket.
	require.Equal(t, http.StatusNoContent, push(10, "tenant-b").code)

	// Half a second refills 5 samples: exactly enough.
	now = now.Add(500 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, push(5, testTenant).code)
	require.Equal(t, http.StatusTooManyRequests, push(1, testTenant).code)

	// A push larger than the burst passes once the bucket is full, and its
	// debt delays the next push: 25 samples leave the bucket at -15, so 1
	// more sample needs 1.6s.
	now = now.Add(10 * time.Second)
	require.Equal(t, http.StatusNoContent, push(25, testTenant).code)
	res = push(1, testTenant)
	require.Equal(t, http.StatusTooManyRequests, res.code)
	require.Equal(t, "2", res.retryAfter)
	now = now.Add(1600 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, push(1, testTenant).code)

	// One distributor alone takes the whole rate: 20/s.
	d.distributors = fixedMembers(1)
	now = now.Add(10 * time.Second)
	require.Equal(t, http.StatusNoContent, push(10, testTenant).code)
	now = now.Add(500 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, push(10, testTenant).code)

	// Rate 0 is unlimited.
	lim.IngestionRate = 0
	require.Equal(t, http.StatusNoContent, push(1000, testTenant).code)

	n, err := testutil.GatherAndCount(reg, "argus_distributor_ingestion_rate_samples_per_second")
	require.NoError(t, err)
	require.Equal(t, 2, n, "one rate per tenant seen")
}

type httpResult struct {
	code       int
	body       string
	retryAfter string
}

// TestTokenBucketRate checks the accepted-rate average: a steady 100
// samples/s converges to 100, and it decays once pushes stop.
func TestTokenBucketRate(t *testing.T) {
	now := testNow
	b := &tokenBucket{last: now, rateAt: now}
	for range 600 { // 10 minutes at 100/s, one push a second
		now = now.Add(time.Second)
		require.Zero(t, b.take(now, 100, 0, 0))
	}
	require.InDelta(t, 100, b.Rate(now), 1)
	require.InDelta(t, 100/2.718281828, b.Rate(now.Add(time.Minute)), 1)
	require.Less(t, b.Rate(now.Add(time.Hour)), 0.001)
}

// TestPushHandler_RetriedAnswersDoNotCountInvalid checks that the samples
// validation refused are counted once the answer is final, not for a 429
// whose retry will count them.
func TestPushHandler_RetriedAnswersDoNotCountInvalid(t *testing.T) {
	d, _ := newSingleIngester(t, testConfig(t), nil)
	lim := defaultLimits(t)
	lim.IngestionRate, lim.IngestionBurstSize = 1, 1
	d.limits = tenantLimitsMap{def: lim}
	now := testNow
	d.now = func() time.Time { return now }
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up", "i", "1"}, 1, ms(0)),
		series([]string{"__name__", "up", "i", "2"}, 1, ms(0)),
		series([]string{"job", "nameless"}, 1, ms(0)),
	}})
	invalid := func() float64 {
		return testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("missing_metric_name", testTenant))
	}
	require.Equal(t, http.StatusNoContent, serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{
		Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "x"}, 1, ms(0))}}))).Code) // empties the bucket
	require.Equal(t, http.StatusTooManyRequests, serve(d.PushHandler(), newPushRequest(body)).Code)
	require.Zero(t, invalid())
	now = now.Add(time.Hour)
	require.Equal(t, http.StatusBadRequest, serve(d.PushHandler(), newPushRequest(body)).Code)
	require.Equal(t, 1.0, invalid())
}
