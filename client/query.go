package client

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// QueryOptions are the optional parameters of a query.
type QueryOptions struct {
	// Timeout, when positive, is shorter than the tenant's timeout.
	Timeout time.Duration
	// LookbackDelta, when positive, replaces the querier's for this query.
	LookbackDelta time.Duration
	// Limit, when positive, returns at most that many series, with a
	// warning if the result was cut.
	Limit int
	// Stats asks for the query's statistics (Result.Stats), as stats=all.
	Stats bool
	// Partial, when set, says whether an answer from only the ingesters that
	// answered is acceptable; nil leaves it to the tenant's setting.
	Partial *bool
}

// InstantQuery is a PromQL query at one time.
type InstantQuery struct {
	Expr string
	// Time is the evaluation time; zero means the querier's now.
	Time time.Time
	QueryOptions
}

// RangeQuery is a PromQL query at Start, Start+Step, ... up to End.
type RangeQuery struct {
	Expr       string
	Start, End time.Time
	Step       time.Duration
	QueryOptions
}

// FPoint is a float sample: T in Unix ms.
type FPoint struct {
	T int64
	F float64
}

// HPoint is a native histogram sample: T in Unix ms.
type HPoint struct {
	T int64
	H *histogram.FloatHistogram
}

// Series is one series of a result. A vector's series has one point.
type Series struct {
	Labels     labels.Labels
	Floats     []FPoint
	Histograms []HPoint
}

// ResultType is the type of a query's result, as the HTTP API's resultType.
type ResultType string

// The result types.
const (
	Matrix ResultType = "matrix"
	Vector ResultType = "vector"
	Scalar ResultType = "scalar"
	String ResultType = "string"
)

// Result is the answer of a query. Series is nil when the series went to a
// callback (QueryEach, QueryRangeEach).
type Result struct {
	Type   ResultType
	Series []Series
	// The point of a scalar result, or of a string one (its value in
	// StringValue).
	ScalarT     int64
	ScalarV     float64
	StringValue string
	// Warnings and Infos are the query's annotations, as the HTTP API's.
	Warnings, Infos []string
	// Stats is set when QueryOptions.Stats asked for it.
	Stats *argusquerypb.QueryStats
}

// Query evaluates q and collects its whole result.
func (c *Client) Query(ctx context.Context, q InstantQuery) (*Result, error) {
	var all []Series
	res, err := c.QueryEach(ctx, q, func(s Series) error { all = append(all, s); return nil })
	if err != nil {
		return nil, err
	}
	res.Series = all
	return res, nil
}

// QueryRange evaluates q and collects its whole result.
func (c *Client) QueryRange(ctx context.Context, q RangeQuery) (*Result, error) {
	var all []Series
	res, err := c.QueryRangeEach(ctx, q, func(s Series) error { all = append(all, s); return nil })
	if err != nil {
		return nil, err
	}
	res.Series = all
	return res, nil
}

// QueryEach evaluates q and calls each with every series of the result, in
// the result's order, as they arrive; the series are each's to keep. An
// error from each cancels the query and is returned.
func (c *Client) QueryEach(ctx context.Context, q InstantQuery, each func(Series) error) (*Result, error) {
	req := &argusquerypb.QueryRequest{Query: q.Expr, Options: protoOptions(q.QueryOptions)}
	if !q.Time.IsZero() {
		t := millis(q.Time)
		req.TimeMs = &t
	}
	ctx, cancel := context.WithCancel(c.Context(ctx))
	defer cancel()
	stream, err := c.api.Query(ctx, req)
	if err != nil {
		return nil, asError(err)
	}
	return readQuery(stream, each)
}

// QueryRangeEach is QueryEach for a range query.
func (c *Client) QueryRangeEach(ctx context.Context, q RangeQuery, each func(Series) error) (*Result, error) {
	req := &argusquerypb.QueryRangeRequest{
		Query: q.Expr, StartMs: millis(q.Start), EndMs: millis(q.End), StepMs: q.Step.Milliseconds(),
		Options: protoOptions(q.QueryOptions),
	}
	ctx, cancel := context.WithCancel(c.Context(ctx))
	defer cancel()
	stream, err := c.api.QueryRange(ctx, req)
	if err != nil {
		return nil, asError(err)
	}
	return readQuery(stream, each)
}

func protoOptions(o QueryOptions) *argusquerypb.QueryOptions {
	p := &argusquerypb.QueryOptions{
		TimeoutMs: o.Timeout.Milliseconds(), LookbackDeltaMs: o.LookbackDelta.Milliseconds(), Limit: int64(o.Limit),
	}
	if o.Stats {
		p.Stats = "all"
	}
	if o.Partial != nil {
		p.PartialResponse = argusquerypb.PartialResponse_PARTIAL_DENY
		if *o.Partial {
			p.PartialResponse = argusquerypb.PartialResponse_PARTIAL_ALLOW
		}
	}
	return p
}

// receiver is a stream of frames.
type receiver[T any] interface {
	Recv() (*T, error)
}

// readQuery reads the frames of a query's answer, joining the pieces of a
// series split over frames before handing it to each.
func readQuery(stream receiver[argusquerypb.QueryResponse], each func(Series) error) (*Result, error) {
	res := &Result{}
	var cur *Series
	for first := true; ; first = false {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, asError(err)
		}
		if first {
			res.Type = resultType(f.GetResultType())
		}
		for _, s := range f.GetSeries() {
			if s.GetContinued() && cur != nil {
				appendPoints(cur, s)
				continue
			}
			if cur != nil {
				if err := each(*cur); err != nil {
					return nil, err
				}
			}
			cur = &Series{Labels: fromProtoLabels(s.GetLabels())}
			appendPoints(cur, s)
		}
		res.ScalarT, res.ScalarV, res.StringValue = f.GetScalarTimeMs(), f.GetScalarValue(), f.GetStringValue()
		res.Warnings = append(res.Warnings, f.GetWarnings()...)
		res.Infos = append(res.Infos, f.GetInfos()...)
		if f.GetStats() != nil {
			res.Stats = f.GetStats()
		}
	}
	if cur != nil {
		if err := each(*cur); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func resultType(t argusquerypb.ResultType) ResultType {
	switch t {
	case argusquerypb.ResultType_MATRIX:
		return Matrix
	case argusquerypb.ResultType_VECTOR:
		return Vector
	case argusquerypb.ResultType_SCALAR:
		return Scalar
	case argusquerypb.ResultType_STRING:
		return String
	}
	return ""
}

func appendPoints(dst *Series, s *argusquerypb.Series) {
	ts, vs := s.GetFloatTimestampsMs(), s.GetFloatValues()
	for i := range min(len(ts), len(vs)) {
		dst.Floats = append(dst.Floats, FPoint{T: ts[i], F: vs[i]})
	}
	for _, h := range s.GetHistograms() {
		dst.Histograms = append(dst.Histograms, HPoint{T: h.GetTimestampMs(), H: fromProtoHistogram(h)})
	}
}

func fromProtoLabels(ls []*argusquerypb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.GetName(), l.GetValue())
	}
	return b.Labels() // Sorted by the server.
}

func fromProtoHistogram(h *argusquerypb.HistogramSample) *histogram.FloatHistogram {
	return &histogram.FloatHistogram{
		CounterResetHint: histogram.CounterResetHint(h.GetCounterResetHint()),
		Schema:           h.GetSchema(),
		ZeroThreshold:    h.GetZeroThreshold(),
		ZeroCount:        h.GetZeroCount(),
		Count:            h.GetCount(),
		Sum:              h.GetSum(),
		PositiveSpans:    fromProtoSpans(h.GetPositiveSpans()),
		NegativeSpans:    fromProtoSpans(h.GetNegativeSpans()),
		PositiveBuckets:  h.GetPositiveBuckets(),
		NegativeBuckets:  h.GetNegativeBuckets(),
		CustomValues:     h.GetCustomValues(),
	}
}

func fromProtoSpans(spans []*argusquerypb.BucketSpan) []histogram.Span {
	if len(spans) == 0 {
		return nil
	}
	out := make([]histogram.Span, len(spans))
	for i, s := range spans {
		out[i] = histogram.Span{Offset: s.GetOffset(), Length: s.GetLength()}
	}
	return out
}
