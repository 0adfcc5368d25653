package distributor

import (
	"errors"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// otlpAppender is the storage.AppenderV2 Prometheus's OTLP converter writes
// into: it encodes what it is given in the remote-write 1.0 form the push
// path reads (arguspb.WriteRequest), one TimeSeries per label set, in the
// order the series were first appended, their samples, histograms (as
// prompb.Histogram) and exemplars (as prompb.Exemplar) in the order
// appended, then one prompb.MetricMetadata per metric family.
//
// It is used by one request at a time (the converter is not concurrent),
// kept in the pooled writeCtx with its buffers.
type otlpAppender struct {
	index    map[string]int32 // encoded labels to index in series
	series   []otlpSeries     // the first n are in use
	n        int
	meta     []byte              // encoded WriteRequest.metadata fields
	families map[string]struct{} // whose metadata is in meta
	key      []byte              // scratch: encoded labels
	// appended counts the samples appended; past limit Append fails with
	// errTooManyOTLPSamples.
	appended, limit int
}

// maxTargetInfoSamples bounds the target_info samples the converter may add
// per resource: it adds one every 2.5 minutes between the earliest and the
// latest data point of the resource, so that data points a year apart
// would make 200,000 of them. 1000 cover 41 hours.
const maxTargetInfoSamples = 1000

// errTooManyOTLPSamples means the translation of an OTLP request made more
// samples than its data points account for.
var errTooManyOTLPSamples = errors.New("too many samples")

// otlpSeries is one series being built: its encoded Label fields, then its
// encoded Sample, Histogram and Exemplar fields.
type otlpSeries struct {
	labels, data []byte
}

var _ storage.AppenderV2 = (*otlpAppender)(nil)

func newOTLPAppender() *otlpAppender {
	return &otlpAppender{index: map[string]int32{}, families: map[string]struct{}{}}
}

// reset empties a, keeping the capacity of its buffers within bounds.
func (a *otlpAppender) reset() {
	if len(a.index) > maxPooledSeries {
		a.index = map[string]int32{}
	}
	clear(a.index)
	for i := range a.series[:a.n] {
		s := &a.series[i]
		s.labels, s.data = reuse(s.labels), reuse(s.data)
	}
	if len(a.series) > maxPooledSeries {
		a.series = a.series[:maxPooledSeries:maxPooledSeries]
	}
	a.n, a.appended, a.limit = 0, 0, 0
	a.meta = reuse(a.meta)
	if len(a.families) > maxPooledSeries {
		a.families = map[string]struct{}{}
	}
	clear(a.families)
}

// Append adds one float sample, or histogram if h or fh is set, of the
// series ls, with the exemplars and the metadata of opts. The start
// timestamp st is not stored. Nothing is retained of ls, h, fh or opts.
func (a *otlpAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if a.appended++; a.appended > a.limit {
		return 0, errTooManyOTLPSamples
	}
	i := a.seriesOf(ls)
	s := &a.series[i]
	switch {
	case fh != nil:
		hp := prompb.FromFloatHistogram(t, fh)
		s.data = appendMessage(s.data, tagSeriesHistogram, &hp)
	case h != nil:
		hp := prompb.FromIntHistogram(t, h)
		s.data = appendMessage(s.data, tagSeriesHistogram, &hp)
	default:
		s.data = appendSampleFields(s.data, math.Float64bits(v), uint64(t))
	}
	for _, e := range opts.Exemplars {
		pe := prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts}
		s.data = appendMessage(s.data, tagSeriesExemplar, &pe)
	}
	a.addMetadata(opts)
	return storage.SeriesRef(i + 1), nil
}

// seriesOf returns the index of the series ls, starting it if it is new.
func (a *otlpAppender) seriesOf(ls labels.Labels) int32 {
	key := a.key[:0]
	ls.Range(func(l labels.Label) {
		key = appendLabelField(key, l.Name, l.Value)
	})
	a.key = key
	if i, ok := a.index[string(key)]; ok {
		return i
	}
	if a.n == len(a.series) {
		a.series = append(a.series, otlpSeries{})
	}
	i := int32(a.n)
	a.n++
	s := &a.series[i]
	s.labels = append(s.labels[:0], key...)
	s.data = s.data[:0]
	a.index[string(key)] = i
	return i
}

// addMetadata adds the metadata of opts, once per metric family.
func (a *otlpAppender) addMetadata(opts storage.AOptions) {
	family := opts.MetricFamilyName
	if family == "" || opts.Metadata.IsEmpty() {
		return
	}
	if _, ok := a.families[family]; ok {
		return
	}
	a.families[family] = struct{}{}
	m := prompb.MetricMetadata{
		Type: prompb.FromMetadataType(opts.Metadata.Type), MetricFamilyName: family,
		Help: opts.Metadata.Help, Unit: opts.Metadata.Unit,
	}
	a.meta = appendMessage(a.meta, tagMetadata, &m)
}

// encode appends the WriteRequest of everything appended to buf.
func (a *otlpAppender) encode(buf []byte) []byte {
	for _, s := range a.series[:a.n] {
		buf = append(buf, tagTimeSeries)
		buf = appendVarint(buf, uint64(len(s.labels)+len(s.data)))
		buf = append(buf, s.labels...)
		buf = append(buf, s.data...)
	}
	return append(buf, a.meta...)
}

// Commit does nothing: the request is encoded once the converter is done.
func (a *otlpAppender) Commit() error { return nil }

// Rollback does nothing: nothing is stored before the push.
func (a *otlpAppender) Rollback() error { return nil }

// sizedMarshaler is a generated (gogo) message of prompb.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// appendMessage appends m as a length-delimited field with the wire byte tag.
func appendMessage(buf []byte, tag byte, m sizedMarshaler) []byte {
	n := m.Size()
	buf = appendVarint(append(buf, tag), uint64(n))
	buf = slices.Grow(buf, n)
	if _, err := m.MarshalToSizedBuffer(buf[len(buf) : len(buf)+n]); err != nil {
		panic(err) // Marshalling into a buffer of its size cannot fail.
	}
	return buf[:len(buf)+n]
}

// appendLabelField appends one TimeSeries.labels field.
func appendLabelField(buf []byte, name, value string) []byte {
	size := 1 + sizeOfVarint(uint64(len(name))) + len(name) + 1 + sizeOfVarint(uint64(len(value))) + len(value)
	buf = appendVarint(append(buf, tagLabels), uint64(size))
	buf = appendVarint(append(buf, tagLabelName), uint64(len(name)))
	buf = append(buf, name...)
	buf = appendVarint(append(buf, tagLabelValue), uint64(len(value)))
	return append(buf, value...)
}

// maxOTLPSamples is the most samples the translation of md may make: those
// of its data points (a histogram's buckets, sum and count, a summary's
// quantiles, sum and count), and maxTargetInfoSamples per resource.
func maxOTLPSamples(md pmetric.Metrics) int {
	n := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		n += maxTargetInfoSamples
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				n += metricSamples(ms.At(k))
			}
		}
	}
	return n
}

func metricSamples(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		dps, n := m.Histogram().DataPoints(), 0
		for i := range dps.Len() {
			n += dps.At(i).BucketCounts().Len() + 3 // +Inf, sum, count
		}
		return n
	case pmetric.MetricTypeSummary:
		dps, n := m.Summary().DataPoints(), 0
		for i := range dps.Len() {
			n += dps.At(i).QuantileValues().Len() + 2
		}
		return n
	default:
		return 0
	}
}
