package scraper

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

type recordingPusher struct {
	mu     sync.Mutex
	tenant []string
	reqs   []*arguspb.WriteRequest
	err    error
}

func (p *recordingPusher) Push(_ context.Context, tenantID string, body []byte) error {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return err
	}
	var req arguspb.WriteRequest
	if err := req.UnmarshalVT(raw); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tenant = append(p.tenant, tenantID)
	p.reqs = append(p.reqs, &req)
	return p.err
}

func TestAppender_OnePushPerScrape(t *testing.T) {
	p := &recordingPusher{}
	a := &appendable{pusher: p, defaultTenant: "dflt", metrics: newMetrics(nil)}
	target := scrape.NewTarget(labels.FromStrings("job", "j", TenantLabel, "team-a"), nil, nil, nil)
	app := a.AppenderV2(scrape.ContextWithTarget(context.Background(), target))

	up := labels.FromStrings("__name__", "up", "job", "j")
	g := labels.FromStrings("__name__", "g", "job", "j")
	h := labels.FromStrings("__name__", "h", "job", "j")
	_, err := app.Append(0, up, 0, 1000, 1, nil, nil, storage.AOptions{})
	require.NoError(t, err)
	_, err = app.Append(0, g, 0, 1000, 2.5, nil, nil, storage.AOptions{})
	require.NoError(t, err)
	_, err = app.Append(0, g, 0, 2000, math.Float64frombits(value.StaleNaN), nil, nil, storage.AOptions{})
	require.NoError(t, err)
	hist := &histogram.Histogram{Count: 3, Sum: 4, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{3}}
	_, err = app.Append(0, h, 0, 1000, 0, hist, nil, storage.AOptions{})
	require.NoError(t, err)
	require.Empty(t, p.reqs, "nothing is pushed before Commit")
	require.NoError(t, app.Commit())

	require.Equal(t, []string{"team-a"}, p.tenant, "the target's __tenant__ names the tenant")
	require.Len(t, p.reqs, 1)
	ts := p.reqs[0].Timeseries
	require.Len(t, ts, 4, "one entry per Append, in order")
	require.Equal(t, []*arguspb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "j"}}, ts[0].Labels)
	require.Equal(t, []*arguspb.Sample{{Value: 1, TimestampMs: 1000}}, ts[0].Samples)
	require.Equal(t, []*arguspb.Sample{{Value: 2.5, TimestampMs: 1000}}, ts[1].Samples)
	require.Equal(t, ts[1].Labels, ts[2].Labels)
	require.Len(t, ts[2].Samples, 1)
	require.Equal(t, value.StaleNaN, math.Float64bits(ts[2].Samples[0].Value), "a staleness marker keeps its bits")
	require.Equal(t, int64(2000), ts[2].Samples[0].TimestampMs)
	require.Len(t, ts[3].Histograms, 1)
	require.Empty(t, ts[3].Samples)
	want := prompb.FromIntHistogram(1000, hist)
	wantBytes, err := want.Marshal()
	require.NoError(t, err)
	require.Equal(t, wantBytes, ts[3].Histograms[0], "a histogram goes as prompb.Histogram bytes")
}

func TestAppender_DefaultTenantAndErrors(t *testing.T) {
	p := &recordingPusher{err: errors.New("refused")}
	a := &appendable{pusher: p, defaultTenant: "dflt", metrics: newMetrics(nil)}
	app := a.AppenderV2(context.Background())
	_, err := app.Append(0, labels.FromStrings("__name__", "x"), 0, 1, 1, nil, nil, storage.AOptions{})
	require.NoError(t, err)
	require.ErrorContains(t, app.Commit(), "refused")
	require.Equal(t, []string{"dflt"}, p.tenant)

	// An empty scrape pushes nothing; a rolled-back one neither.
	require.NoError(t, a.AppenderV2(context.Background()).Commit())
	app = a.AppenderV2(context.Background())
	_, _ = app.Append(0, labels.FromStrings("__name__", "x"), 0, 2, 1, nil, nil, storage.AOptions{})
	require.NoError(t, app.Rollback())
	require.Len(t, p.reqs, 1)

	// An invalid tenant never reaches the pusher.
	bad := scrape.NewTarget(labels.FromStrings(TenantLabel, "a/b"), nil, nil, nil)
	app = a.AppenderV2(scrape.ContextWithTarget(context.Background(), bad))
	_, _ = app.Append(0, labels.FromStrings("__name__", "x"), 0, 3, 1, nil, nil, storage.AOptions{})
	require.ErrorContains(t, app.Commit(), "a/b")
	require.Len(t, p.reqs, 1)
}

// TestEncode_SameBytesAsMarshalVT requires the hand-written encoding to be
// byte for byte what arguspb's generated MarshalVT writes, zero values and
// empty label values included.
func TestEncode_SameBytesAsMarshalVT(t *testing.T) {
	type sample struct {
		ls labels.Labels
		t  int64
		v  float64
	}
	samples := []sample{
		{labels.FromStrings("__name__", "a", "x", "1"), 1700000000123, 42.5},
		{labels.FromStrings("__name__", "zero"), 0, 0},
		{labels.FromStrings("__name__", "neg", "e", ""), -5, -1},
		{labels.FromStrings("__name__", "stale", "long", strings.Repeat("v", 300)), 9, math.Float64frombits(value.StaleNaN)},
		{labels.EmptyLabels(), 1, 1},
	}
	var got []byte
	var want arguspb.WriteRequest
	for _, s := range samples {
		got = appendFloatSeries(got, s.ls, s.t, s.v)
		ts := &arguspb.TimeSeries{Samples: []*arguspb.Sample{{Value: s.v, TimestampMs: s.t}}}
		s.ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, &arguspb.Label{Name: l.Name, Value: l.Value}) })
		want.Timeseries = append(want.Timeseries, ts)
	}
	h := []byte{1, 2, 3}
	got = appendHistogramSeries(got, labels.FromStrings("__name__", "h"), h)
	want.Timeseries = append(want.Timeseries, &arguspb.TimeSeries{Labels: []*arguspb.Label{{Name: "__name__", Value: "h"}}, Histograms: [][]byte{h}})
	wantBytes, err := want.MarshalVT()
	require.NoError(t, err)
	require.Equal(t, wantBytes, got)
}
