package querier

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/stats"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// Frames of the gRPC query API. A frame holds about frameBytes of series
// (estimated by the sizes of their labels and points), so that neither side
// holds more than a frame of encoded answer at a time, whatever the size of
// the result; a series larger than a frame is split into pieces, the later
// ones marked continued.

// frameBytes is the target size of a frame, well under gRPC's default 4 MiB
// message limit.
const frameBytes = 1 << 20

// Estimated encoded sizes, in bytes.
const (
	floatPointBytes     = 18 // a varint timestamp and a double, packed
	histogramPointBytes = 96 // before its buckets
	seriesBytes         = 16
)

// queryFramer accumulates the series of a query result into frames.
type queryFramer struct {
	send  func(*argusquerypb.QueryResponse) error
	frame *argusquerypb.QueryResponse
	size  int
}

// sendQueryResult sends the query result of resp (a *v1.QueryData) in frames
// through send.
func sendQueryResult(resp *v1.Response, send func(*argusquerypb.QueryResponse) error) error {
	data, ok := resp.Data.(*v1.QueryData)
	if !ok {
		return errUnexpectedData
	}
	f := &queryFramer{send: send, frame: &argusquerypb.QueryResponse{ResultType: resultType(data.ResultType)}}
	var err error
	switch v := data.Result.(type) {
	case promql.Matrix:
		for i := range v {
			if err = f.addSeries(v[i].Metric, v[i].Floats, v[i].Histograms); err != nil {
				return err
			}
		}
	case promql.Vector:
		for i := range v {
			err = f.addSample(&v[i])
			if err != nil {
				return err
			}
		}
	case promql.Scalar:
		f.frame.ScalarTimeMs, f.frame.ScalarValue = v.T, v.V
	case promql.String:
		f.frame.ScalarTimeMs, f.frame.StringValue = v.T, v.V
	default:
		return errUnexpectedData
	}
	f.frame.Warnings, f.frame.Infos = resp.Warnings, resp.Infos
	f.frame.Stats = protoStats(data.Stats)
	return f.send(f.frame)
}

func (f *queryFramer) addSample(s *promql.Sample) error {
	if s.H != nil {
		return f.addSeries(s.Metric, nil, []promql.HPoint{{T: s.T, H: s.H}})
	}
	return f.addSeries(s.Metric, []promql.FPoint{{T: s.T, F: s.F}}, nil)
}

// addSeries adds one series, split over frames when it does not fit in one.
func (f *queryFramer) addSeries(ls labels.Labels, floats []promql.FPoint, hists []promql.HPoint) error {
	s := &argusquerypb.Series{Labels: protoLabels(ls, nil)}
	f.size += seriesBytes + int(ls.ByteSize())
	f.frame.Series = append(f.frame.Series, s)
	for _, p := range floats {
		if f.size >= frameBytes {
			if err := f.flush(); err != nil {
				return err
			}
			s = f.continuation()
		}
		s.FloatTimestampsMs = append(s.FloatTimestampsMs, p.T)
		s.FloatValues = append(s.FloatValues, p.F)
		f.size += floatPointBytes
	}
	for _, p := range hists {
		if f.size >= frameBytes {
			if err := f.flush(); err != nil {
				return err
			}
			s = f.continuation()
		}
		s.Histograms = append(s.Histograms, protoHistogram(p.T, p.H))
		f.size += histogramPointBytes + 9*(len(p.H.PositiveBuckets)+len(p.H.NegativeBuckets)+len(p.H.CustomValues))
	}
	if f.size >= frameBytes {
		return f.flush()
	}
	return nil
}

// flush sends the frame and starts the next one.
func (f *queryFramer) flush() error {
	if err := f.send(f.frame); err != nil {
		return err
	}
	f.frame, f.size = &argusquerypb.QueryResponse{}, 0
	return nil
}

// continuation starts the next piece of the series being added.
func (f *queryFramer) continuation() *argusquerypb.Series {
	s := &argusquerypb.Series{Continued: true}
	f.frame.Series = append(f.frame.Series, s)
	f.size += seriesBytes
	return s
}

func resultType(t parser.ValueType) argusquerypb.ResultType {
	switch t {
	case parser.ValueTypeMatrix:
		return argusquerypb.ResultType_MATRIX
	case parser.ValueTypeVector:
		return argusquerypb.ResultType_VECTOR
	case parser.ValueTypeScalar:
		return argusquerypb.ResultType_SCALAR
	case parser.ValueTypeString:
		return argusquerypb.ResultType_STRING
	}
	return argusquerypb.ResultType_RESULT_TYPE_UNSPECIFIED
}

// protoHistogram copies h: the engine reuses its memory once the call ends.
func protoHistogram(t int64, h *histogram.FloatHistogram) *argusquerypb.HistogramSample {
	return &argusquerypb.HistogramSample{
		TimestampMs:      t,
		CounterResetHint: int32(h.CounterResetHint),
		Schema:           h.Schema,
		ZeroThreshold:    h.ZeroThreshold,
		ZeroCount:        h.ZeroCount,
		Count:            h.Count,
		Sum:              h.Sum,
		PositiveSpans:    protoSpans(h.PositiveSpans),
		NegativeSpans:    protoSpans(h.NegativeSpans),
		PositiveBuckets:  append([]float64(nil), h.PositiveBuckets...),
		NegativeBuckets:  append([]float64(nil), h.NegativeBuckets...),
		CustomValues:     append([]float64(nil), h.CustomValues...),
	}
}

func protoSpans(spans []histogram.Span) []*argusquerypb.BucketSpan {
	if len(spans) == 0 {
		return nil
	}
	out := make([]*argusquerypb.BucketSpan, len(spans))
	for i, s := range spans {
		out[i] = &argusquerypb.BucketSpan{Offset: s.Offset, Length: s.Length}
	}
	return out
}

// protoStats converts the API's stats=all statistics; nil stays nil.
func protoStats(qs stats.QueryStats) *argusquerypb.QueryStats {
	if qs == nil {
		return nil
	}
	b := qs.Builtin()
	out := &argusquerypb.QueryStats{
		EvalTotalTime:        b.Timings.EvalTotalTime,
		ResultSortTime:       b.Timings.ResultSortTime,
		QueryPreparationTime: b.Timings.QueryPreparationTime,
		InnerEvalTime:        b.Timings.InnerEvalTime,
		ExecQueueTime:        b.Timings.ExecQueueTime,
		ExecTotalTime:        b.Timings.ExecTotalTime,
	}
	if s := b.Samples; s != nil {
		out.TotalQueryableSamples, out.SamplesRead = s.TotalQueryableSamples, s.SamplesRead
		out.SeriesTouched, out.PeakSamples = s.SeriesTouched, int64(s.PeakSamples)
		for _, st := range s.TotalQueryableSamplesPerStep {
			out.TotalQueryableSamplesPerStep = append(out.TotalQueryableSamplesPerStep, &argusquerypb.StepStat{TimestampMs: st.T, Value: st.V})
		}
		for _, st := range s.SamplesReadPerStep {
			out.SamplesReadPerStep = append(out.SamplesReadPerStep, &argusquerypb.StepStat{TimestampMs: st.T, Value: st.V})
		}
	}
	return out
}

// sendSeries sends the label sets of resp (GET /api/v1/series) in frames.
func sendSeries(resp *v1.Response, send func(*argusquerypb.SeriesResponse) error) error {
	sets, ok := resp.Data.([]labels.Labels)
	if !ok {
		return errUnexpectedData
	}
	frame, size := &argusquerypb.SeriesResponse{}, 0
	for _, ls := range sets {
		if size >= frameBytes {
			if err := send(frame); err != nil {
				return err
			}
			frame, size = &argusquerypb.SeriesResponse{}, 0
		}
		frame.Series = append(frame.Series, &argusquerypb.LabelSet{Labels: protoLabels(ls, nil)})
		size += seriesBytes + int(ls.ByteSize())
	}
	frame.Warnings, frame.Infos = resp.Warnings, resp.Infos
	return send(frame)
}
