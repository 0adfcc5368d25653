package benchcmp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Native histogram benchmarks: the same remote-write requests of integer
// exponential histograms (schema 3, 20 populated buckets, counters) into
// Argus's ingester and into Prometheus's head, which decodes each
// prompb.Histogram and appends it as its remote-write handler does.

// histSeries is the number of histogram series of the benchmarks.
const histSeries = 1_000

// histRequests returns the requests of histSeries histogram series (100 per
// request), labels only: fillHistograms adds one sample per series.
func histRequests() []*arguspb.WriteRequest {
	var reqs []*arguspb.WriteRequest
	for i := range histSeries {
		if i%100 == 0 {
			reqs = append(reqs, &arguspb.WriteRequest{})
		}
		req := reqs[len(reqs)-1]
		req.Timeseries = append(req.Timeseries, &arguspb.TimeSeries{Labels: []*arguspb.Label{
			{Name: "__name__", Value: "http_request_duration_seconds"},
			{Name: "instance", Value: fmt.Sprintf("host-%04d", i)},
			{Name: "job", Value: fmt.Sprintf("job-%d", i%10)},
		}})
	}
	return reqs
}

// fillHistograms sets the one histogram sample of every series of reqs to
// its value at scrape k: bucket j of series i has counted (i+j)%7+1 more
// observations each scrape.
func fillHistograms(tb testing.TB, reqs []*arguspb.WriteRequest, k int) {
	n := uint64(k + 1)
	for r, req := range reqs {
		for s, ts := range req.Timeseries {
			i := r*100 + s
			h := &histogram.Histogram{Schema: 3, ZeroThreshold: 1e-9, Sum: float64(n) * 0.37 * float64(i%13+1)}
			h.PositiveSpans = []histogram.Span{{Offset: -10, Length: 20}}
			h.PositiveBuckets = make([]int64, 20)
			prev := int64(0)
			for j := range 20 {
				c := int64(n) * int64((i+j)%7+1)
				h.PositiveBuckets[j] = c - prev
				prev = c
				h.Count += uint64(c)
			}
			ph := prompb.FromIntHistogram(scrapeTime(k), h)
			b, err := ph.Marshal()
			if err != nil {
				tb.Fatal(err)
			}
			ts.Histograms = append(ts.Histograms[:0], b)
		}
	}
}

// pushHistograms appends the histograms of req to Prometheus's head as its
// remote-write 1.0 handler does: decode, convert, append by labels.
func (p *promHead) pushHistograms(ctx context.Context, req *arguspb.WriteRequest) error {
	app := p.head.Appender(ctx)
	for _, ts := range req.Timeseries {
		p.builder.Reset()
		for _, l := range ts.Labels {
			p.builder.Add(l.Name, l.Value)
		}
		ls := p.builder.Labels()
		for _, raw := range ts.Histograms {
			var ph prompb.Histogram
			if err := ph.Unmarshal(raw); err != nil {
				return errors.Join(err, app.Rollback())
			}
			if _, err := app.AppendHistogram(0, ls, ph.Timestamp, ph.ToIntHistogram(), nil); err != nil {
				return errors.Join(fmt.Errorf("append to prometheus head: %w", err), app.Rollback())
			}
		}
	}
	return app.Commit()
}

// pushHist pushes req to db: Push for Argus, pushHistograms for Prometheus.
func pushHist(ctx context.Context, db tsdbUnderTest, req *arguspb.WriteRequest) error {
	if p, ok := db.(*promHead); ok {
		return p.pushHistograms(ctx, req)
	}
	return db.push(ctx, req)
}

// BenchmarkHistogramAppend measures steady-state native histogram append
// throughput: one op pushes one histogram to each of histSeries series at
// the next scrape, the requests already marshalled (outside the timer).
func BenchmarkHistogramAppend(b *testing.B) {
	for _, im := range impls {
		b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, histSeries), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			reqs := histRequests()
			db := im.open(b, openOptions{})
			k := 0
			push := func() {
				for _, req := range reqs {
					if err := pushHist(ctx, db, req); err != nil {
						b.Fatalf("push: %v", err)
					}
				}
			}
			for ; k < 2; k++ { // Creates the series and their first chunks.
				fillHistograms(b, reqs, k)
				push()
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				fillHistograms(b, reqs, k)
				k++
				b.StartTimer()
				push()
			}
			b.ReportMetric(float64(histSeries)*float64(b.N)/b.Elapsed().Seconds(), "histograms/s")
		})
	}
}

// histQueryScrapes is 1h of 15s scrapes.
const histQueryScrapes = 240

// BenchmarkHistogramRangeQuery measures PromQL range queries over 1h of
// native histograms of histSeries series: Argus through its querier over
// gRPC (as BenchmarkRangeQuery), Prometheus over its head.
func BenchmarkHistogramRangeQuery(b *testing.B) {
	queries := []struct{ name, expr string }{
		{"quantile_by_job", `histogram_quantile(0.9, sum by (job) (rate(http_request_duration_seconds[5m])))`},
		{"count_one_series", `histogram_count(rate(http_request_duration_seconds{instance="host-0042"}[5m]))`},
	}
	for _, im := range impls {
		b.Run(fmt.Sprintf("impl=%s/series=%d", im.name, histSeries), func(b *testing.B) {
			ctx := tenant.With(b.Context(), tenantID)
			reqs := histRequests()
			db := im.open(b, openOptions{})
			for k := range histQueryScrapes {
				fillHistograms(b, reqs, k)
				for _, req := range reqs {
					if err := pushHist(ctx, db, req); err != nil {
						b.Fatalf("push: %v", err)
					}
				}
			}
			if err := db.settle(ctx, 0); err != nil {
				b.Fatalf("settle: %v", err)
			}
			queryable := db.queryable(b)
			engine := newBenchEngine()
			start, end := time.UnixMilli(scrapeTime(20)), time.UnixMilli(scrapeTime(histQueryScrapes-1))
			for _, q := range queries {
				b.Run("query="+q.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						qry, err := engine.NewRangeQuery(ctx, queryable, nil, q.expr, start, end, time.Minute)
						if err != nil {
							b.Fatalf("new query: %v", err)
						}
						res := qry.Exec(ctx)
						if res.Err != nil {
							b.Fatalf("query %s: %v", q.expr, res.Err)
						}
						if m, ok := res.Value.(promql.Matrix); !ok || len(m) == 0 {
							b.Fatalf("query %s: got %v", q.expr, res.Value)
						}
						qry.Close()
					}
				})
			}
		})
	}
}
