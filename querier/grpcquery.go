package querier

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// QueryServiceName is the full name of the public gRPC query service, the
// prefix of its methods ("/" + QueryServiceName + "/Query").
const QueryServiceName = "argus.query.v1.Query"

// QueryServer serves the public gRPC query API (proto/argusquerypb) over the
// querier's HTTP API handler (see handoff.go): each call is the HTTP request
// with the same parameters, so that it gets the same answer, limits and
// errors. Register it on a gRPC server whose interceptors put the tenant in
// each call's context (auth.Authenticator.StreamInterceptor); a call
// without one fails as an HTTP request without one does. It is safe for
// concurrent use. A call's work stops when its context ends: the client
// cancelled, its deadline passed, or it stopped reading and the stream's
// flow control blocked the sending until then.
type QueryServer struct {
	argusquerypb.UnimplementedQueryServer
	q *Querier
}

var _ argusquerypb.QueryServer = (*QueryServer)(nil)

// QueryServer returns the gRPC query API of q.
func (q *Querier) QueryServer() *QueryServer { return &QueryServer{q: q} }

// serve runs the API request GET path?form for ctx's call and hands its
// answer to emit.
func (s *QueryServer) serve(ctx context.Context, path string, form url.Values, emit func(*v1.Response) error) error {
	u := PathPrefix + apiRoutePrefix + path + "?" + form.Encode()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return statusOf(http.StatusBadRequest, []byte(err.Error()))
	}
	r.Header.Set("Accept", handoffMIME.String())
	w := &handoffWriter{codec: s.q.handoff, emit: emit}
	s.q.inner.ServeHTTP(w, r)
	return w.result()
}

// Query is the instant query of GET /api/v1/query.
func (s *QueryServer) Query(req *argusquerypb.QueryRequest, stream grpc.ServerStreamingServer[argusquerypb.QueryResponse]) error {
	form := url.Values{"query": {req.GetQuery()}}
	if req.TimeMs != nil {
		form.Set("time", formatTime(req.GetTimeMs()))
	}
	addQueryOptions(form, req.GetOptions())
	return s.serve(stream.Context(), "/query", form, func(resp *v1.Response) error {
		return sendQueryResult(resp, stream.Send)
	})
}

// QueryRange is the range query of GET /api/v1/query_range.
func (s *QueryServer) QueryRange(req *argusquerypb.QueryRangeRequest, stream grpc.ServerStreamingServer[argusquerypb.QueryResponse]) error {
	form := url.Values{
		"query": {req.GetQuery()},
		"start": {formatTime(req.GetStartMs())},
		"end":   {formatTime(req.GetEndMs())},
		"step":  {formatDuration(req.GetStepMs())},
	}
	addQueryOptions(form, req.GetOptions())
	return s.serve(stream.Context(), "/query_range", form, func(resp *v1.Response) error {
		return sendQueryResult(resp, stream.Send)
	})
}

// Series is GET /api/v1/series.
func (s *QueryServer) Series(req *argusquerypb.SeriesRequest, stream grpc.ServerStreamingServer[argusquerypb.SeriesResponse]) error {
	form := selectorForm(req.GetMatchers(), req.StartMs, req.EndMs, req.GetLimit())
	return s.serve(stream.Context(), "/series", form, func(resp *v1.Response) error {
		return sendSeries(resp, stream.Send)
	})
}

// LabelNames is GET /api/v1/labels.
func (s *QueryServer) LabelNames(ctx context.Context, req *argusquerypb.LabelNamesRequest) (*argusquerypb.LabelsResponse, error) {
	form := selectorForm(req.GetMatchers(), req.StartMs, req.EndMs, req.GetLimit())
	return s.labels(ctx, "/labels", form)
}

// LabelValues is GET /api/v1/label/<name>/values.
func (s *QueryServer) LabelValues(ctx context.Context, req *argusquerypb.LabelValuesRequest) (*argusquerypb.LabelsResponse, error) {
	form := selectorForm(req.GetMatchers(), req.StartMs, req.EndMs, req.GetLimit())
	return s.labels(ctx, "/label/"+url.PathEscape(req.GetName())+"/values", form)
}

func (s *QueryServer) labels(ctx context.Context, path string, form url.Values) (*argusquerypb.LabelsResponse, error) {
	var out *argusquerypb.LabelsResponse
	err := s.serve(ctx, path, form, func(resp *v1.Response) error {
		vals, ok := resp.Data.([]string)
		if !ok {
			return errUnexpectedData
		}
		out = &argusquerypb.LabelsResponse{Values: vals, Warnings: resp.Warnings, Infos: resp.Infos}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// errUnexpectedData means the API answered with data of a type the gRPC
// server does not know for the endpoint: a bug.
var errUnexpectedData = errors.New("the query API answered with unexpected data")

// addQueryOptions sets the form parameters of o.
func addQueryOptions(form url.Values, o *argusquerypb.QueryOptions) {
	if o.GetTimeoutMs() != 0 {
		form.Set("timeout", formatDuration(o.GetTimeoutMs()))
	}
	if o.GetLookbackDeltaMs() != 0 {
		form.Set("lookback_delta", formatDuration(o.GetLookbackDeltaMs()))
	}
	if o.GetLimit() != 0 {
		form.Set("limit", strconv.FormatInt(o.GetLimit(), 10))
	}
	if o.GetStats() != "" {
		form.Set("stats", o.GetStats())
	}
	switch o.GetPartialResponse() {
	case argusquerypb.PartialResponse_PARTIAL_ALLOW:
		form.Set("partial_response", "true")
	case argusquerypb.PartialResponse_PARTIAL_DENY:
		form.Set("partial_response", "false")
	}
}

// selectorForm is the form of the series and labels endpoints.
func selectorForm(matchers []string, start, end *int64, limit int64) url.Values {
	form := url.Values{}
	for _, m := range matchers {
		form.Add("match[]", m)
	}
	if start != nil {
		form.Set("start", formatTime(*start))
	}
	if end != nil {
		form.Set("end", formatTime(*end))
	}
	if limit != 0 {
		form.Set("limit", strconv.FormatInt(limit, 10))
	}
	return form
}

// formatTime renders Unix ms as the API parses it exactly: RFC 3339 with
// the milliseconds (a float of seconds could round).
func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// formatDuration renders ms as the API's float seconds, which it parses
// back to the millisecond.
func formatDuration(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1e3, 'f', -1, 64)
}

// protoLabels converts ls into buf, reused, and returns it.
func protoLabels(ls labels.Labels, buf []*argusquerypb.Label) []*argusquerypb.Label {
	buf = buf[:0]
	ls.Range(func(l labels.Label) {
		buf = append(buf, &argusquerypb.Label{Name: l.Name, Value: l.Value})
	})
	return buf
}
