// Package promjson renders the results of the gRPC query client as the
// Prometheus HTTP API renders them: Data gives exactly the JSON "data"
// object that /api/v1/query or /api/v1/query_range answers for the same
// query, through Prometheus's own JSON codec (web/api/v1), so that floats,
// timestamps and histograms are formatted as Prometheus formats them.
//
// It is separate from package client because it brings in Prometheus's
// PromQL and web API packages, which a program that only reads series does
// not need.
package promjson

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/argus-tsdb/argus/client"
)

// Value converts res into the PromQL value the engine returned.
func Value(res *client.Result) (parser.Value, error) {
	switch res.Type {
	case client.Matrix:
		m := make(promql.Matrix, 0, len(res.Series))
		for _, s := range res.Series {
			m = append(m, promql.Series{Metric: s.Labels, Floats: fpoints(s.Floats), Histograms: hpoints(s.Histograms)})
		}
		return m, nil
	case client.Vector:
		v := make(promql.Vector, 0, len(res.Series))
		for _, s := range res.Series {
			switch {
			case len(s.Floats) == 1 && len(s.Histograms) == 0:
				v = append(v, promql.Sample{Metric: s.Labels, T: s.Floats[0].T, F: s.Floats[0].F})
			case len(s.Histograms) == 1 && len(s.Floats) == 0:
				v = append(v, promql.Sample{Metric: s.Labels, T: s.Histograms[0].T, H: s.Histograms[0].H})
			default:
				return nil, fmt.Errorf("vector series %s has %d floats and %d histograms, not one sample", s.Labels, len(s.Floats), len(s.Histograms))
			}
		}
		return v, nil
	case client.Scalar:
		return promql.Scalar{T: res.ScalarT, V: res.ScalarV}, nil
	case client.String:
		return promql.String{T: res.ScalarT, V: res.StringValue}, nil
	}
	return nil, fmt.Errorf("unknown result type %q", res.Type)
}

// Data returns the JSON "data" object of the HTTP API's answer to the same
// query: resultType and result (without stats).
func Data(res *client.Result) ([]byte, error) {
	v, err := Value(res)
	if err != nil {
		return nil, err
	}
	b, err := v1.JSONCodec{}.Encode(&v1.Response{Status: "success", Data: &v1.QueryData{ResultType: v.Type(), Result: v}})
	if err != nil {
		return nil, err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	return env.Data, nil
}

func fpoints(ps []client.FPoint) []promql.FPoint {
	if len(ps) == 0 {
		return nil
	}
	out := make([]promql.FPoint, len(ps))
	for i, p := range ps {
		out[i] = promql.FPoint{T: p.T, F: p.F}
	}
	return out
}

func hpoints(ps []client.HPoint) []promql.HPoint {
	if len(ps) == 0 {
		return nil
	}
	out := make([]promql.HPoint, len(ps))
	for i, p := range ps {
		out[i] = promql.HPoint{T: p.T, H: p.H}
	}
	return out
}
