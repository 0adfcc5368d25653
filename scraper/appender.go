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
	return &appender{ctx: ctx, parent: a, tenant: tenantID}
}

// appender collects the samples of one scrape. It is used by one goroutine
// (the scrape loop) and discarded after Commit or Rollback.
//
// It encodes each appended sample straight into the protobuf bytes of the
// request (encode.go), one TimeSeries per Append, without building
// arguspb structs: a scrape of N samples costs no allocation per sample,
// and the labels, which the scrape loop reuses, are copied by the encoding.
type appender struct {
	ctx     context.Context
	parent  *appendable
	tenant  string
	buf     *[]byte // the encoded WriteRequest so far, pooled
	samples int
}

// Append adds one float or histogram sample of ls. Exemplars, metadata and
// start timestamps are not sent (see DESIGN.md). The returned reference is
// the label set's hash: the scrape cache hands it back, and Append ignores it.
func (a *appender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	var hb []byte
	switch {
	case fh != nil:
		hp := prompb.FromFloatHistogram(t, fh)
		b, err := hp.Marshal()
		if err != nil {
			return 0, fmt.Errorf("encode histogram: %w", err)
		}
		hb = b
	case h != nil:
		hp := prompb.FromIntHistogram(t, h)
		b, err := hp.Marshal()
		if err != nil {
			return 0, fmt.Errorf("encode histogram: %w", err)
		}
		hb = b
	}
	if a.buf == nil {
		a.buf = getBuf()
	}
	if hb != nil {
		*a.buf = appendHistogramSeries(*a.buf, ls, hb)
	} else {
		*a.buf = appendFloatSeries(*a.buf, ls, t, v)
	}
	a.samples++
	return storage.SeriesRef(ls.Hash() | 1), nil
}

// Commit pushes the scrape's samples as one request and returns the push's
// error; the scrape loop logs it and counts it.
func (a *appender) Commit() error {
	if a.buf == nil {
		return nil
	}
	defer a.release()
	m := a.parent.metrics
	if err := tenant.Validate(a.tenant); err != nil {
		m.pushFailures.WithLabelValues(a.tenant).Inc()
		return fmt.Errorf("scraped samples of tenant %q: %w", a.tenant, err)
	}
	body := getBuf()
	defer putBuf(body)
	*body = snappy.Encode((*body)[:cap(*body)], *a.buf)
	if err := a.parent.pusher.Push(a.ctx, a.tenant, *body); err != nil {
		m.pushFailures.WithLabelValues(a.tenant).Inc()
		return fmt.Errorf("push scraped samples of tenant %q: %w", a.tenant, err)
	}
	m.pushedSamples.WithLabelValues(a.tenant).Add(float64(a.samples))
	return nil
}

// Rollback drops the scrape's samples.
func (a *appender) Rollback() error {
	a.release()
	return nil
}

func (a *appender) release() {
	if a.buf != nil {
		putBuf(a.buf)
		a.buf = nil
	}
}
