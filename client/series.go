package client

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/argus-tsdb/argus/proto/argusquerypb"
)

// Selection chooses series for Series, LabelNames and LabelValues, as the
// parameters of the HTTP API's series and labels endpoints.
type Selection struct {
	// Matchers are series selectors ('up{job="api"}'); Series needs one.
	Matchers []string
	// Start and End bound the time range; zero means unbounded.
	Start, End time.Time
	// Limit, when positive, returns at most that many, with a warning.
	Limit int
}

func (s Selection) bounds() (start, end *int64) {
	if !s.Start.IsZero() {
		ms := millis(s.Start)
		start = &ms
	}
	if !s.End.IsZero() {
		ms := millis(s.End)
		end = &ms
	}
	return start, end
}

// Series returns the label sets of the series sel selects, and the
// warnings.
func (c *Client) Series(ctx context.Context, sel Selection) ([]labels.Labels, []string, error) {
	start, end := sel.bounds()
	ctx, cancel := context.WithCancel(c.Context(ctx))
	defer cancel()
	stream, err := c.api.Series(ctx, &argusquerypb.SeriesRequest{Matchers: sel.Matchers, StartMs: start, EndMs: end, Limit: int64(sel.Limit)})
	if err != nil {
		return nil, nil, asError(err)
	}
	var out []labels.Labels
	var warnings []string
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, warnings, nil
		}
		if err != nil {
			return nil, nil, asError(err)
		}
		for _, s := range f.GetSeries() {
			out = append(out, fromProtoLabels(s.GetLabels()))
		}
		warnings = append(warnings, f.GetWarnings()...)
	}
}

// LabelNames returns the sorted label names of the series sel selects (all
// series without matchers), and the warnings.
func (c *Client) LabelNames(ctx context.Context, sel Selection) ([]string, []string, error) {
	start, end := sel.bounds()
	resp, err := c.api.LabelNames(c.Context(ctx), &argusquerypb.LabelNamesRequest{Matchers: sel.Matchers, StartMs: start, EndMs: end, Limit: int64(sel.Limit)})
	if err != nil {
		return nil, nil, asError(err)
	}
	return resp.GetValues(), resp.GetWarnings(), nil
}

// LabelValues returns the sorted values of label name, and the warnings.
func (c *Client) LabelValues(ctx context.Context, name string, sel Selection) ([]string, []string, error) {
	start, end := sel.bounds()
	resp, err := c.api.LabelValues(c.Context(ctx), &argusquerypb.LabelValuesRequest{Name: name, Matchers: sel.Matchers, StartMs: start, EndMs: end, Limit: int64(sel.Limit)})
	if err != nil {
		return nil, nil, asError(err)
	}
	return resp.GetValues(), resp.GetWarnings(), nil
}
