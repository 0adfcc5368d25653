package scraper

import (
	"context"
	"fmt"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// Pusher sends one remote-write 1.0 request (snappy-compressed protobuf
// WriteRequest) of a tenant, and returns once it is stored or refused. It
// must be safe for concurrent use; body is the caller's again when Push
// returns.
type Pusher interface {
	Push(ctx context.Context, tenantID string, body []byte) error
}

// appendable is the storage of the scrape manager: every appender it opens
// (one per scrape, and one for a stopped target's staleness markers)
// batches what is appended to it into one push at Commit.
type appendable struct {
	pusher        Pusher
	defaultTenant string
	metrics       *metrics
}

// AppenderV2 returns the appender of one scrape. The scrape loop's context
// carries its target (scrape.Options.PassMetadataInContext), whose
// __tenant__ label, if any, names the tenant.
func (a *appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	tenantID := a.defaultTenant
	if t, ok := scrape.TargetFromContext(ctx); ok {
		if v := t.GetValue(TenantLabel); v != "" {
			tenantID = v
		}
	}
	return &appender{ctx: ctx, parent: a, tenant: tenantID, index: map[uint64]int{}}
}

// appender collects the samples of one scrape. It is used by one goroutine
// (the scrape loop) and discarded after Commit or Rollback.
type appender struct {
	ctx    context.Context
	parent *appendable
	tenant string
	req    arguspb.WriteRequest
	// index maps a label set's hash to its series in req, for the rare
	// scrape that appends two samples to one series.
	index map[uint64]int
}

// Append adds one float or histogram sample of ls. Exemplars, metadata and
// start timestamps are not sent (see DESIGN.md). The returned reference is
// the label set's hash: the scrape cache hands it back, and Append ignores it.
func (a *appender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	hash := ls.Hash()
	ts := a.series(hash, ls)
	switch {
	case fh != nil:
		hp := prompb.FromFloatHistogram(t, fh)
		b, err := hp.Marshal()
		if err != nil {
			return 0, fmt.Errorf("encode histogram: %w", err)
		}
		ts.Histograms = append(ts.Histograms, b)
	case h != nil:
		hp := prompb.FromIntHistogram(t, h)
		b, err := hp.Marshal()
		if err != nil {
			return 0, fmt.Errorf("encode histogram: %w", err)
		}
		ts.Histograms = append(ts.Histograms, b)
	default:
		ts.Samples = append(ts.Samples, &arguspb.Sample{Value: v, TimestampMs: t})
	}
	return storage.SeriesRef(hash | 1), nil
}

// series returns the series of ls in the request, added if new. ls's
// strings are copied: the scrape loop reuses its buffers.
func (a *appender) series(hash uint64, ls labels.Labels) *arguspb.TimeSeries {
	if i, ok := a.index[hash]; ok {
		return a.req.Timeseries[i]
	}
	ts := &arguspb.TimeSeries{Labels: make([]*arguspb.Label, 0, ls.Len())}
	ls.Range(func(l labels.Label) {
		ts.Labels = append(ts.Labels, &arguspb.Label{Name: l.Name, Value: l.Value})
	})
	a.index[hash] = len(a.req.Timeseries)
	a.req.Timeseries = append(a.req.Timeseries, ts)
	return ts
}

// Commit pushes the scrape's samples as one request and returns the push's
// error; the scrape loop logs it and counts it.
func (a *appender) Commit() error {
	if len(a.req.Timeseries) == 0 {
		return nil
	}
	m := a.parent.metrics
	if err := tenant.Validate(a.tenant); err != nil {
		m.pushFailures.WithLabelValues(a.tenant).Inc()
		return fmt.Errorf("scraped samples of tenant %q: %w", a.tenant, err)
	}
	raw, err := a.req.MarshalVT()
	if err != nil {
		return fmt.Errorf("encode scraped samples: %w", err)
	}
	samples := 0
	for _, ts := range a.req.Timeseries {
		samples += len(ts.Samples) + len(ts.Histograms)
	}
	if err := a.parent.pusher.Push(a.ctx, a.tenant, snappy.Encode(nil, raw)); err != nil {
		m.pushFailures.WithLabelValues(a.tenant).Inc()
		return fmt.Errorf("push scraped samples of tenant %q: %w", a.tenant, err)
	}
	m.pushedSamples.WithLabelValues(a.tenant).Add(float64(samples))
	return nil
}

// Rollback drops the scrape's samples.
func (a *appender) Rollback() error {
	a.req.Timeseries = nil
	return nil
}
