package distributor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// FuzzDecodeWriteRequest feeds raw HTTP bodies to the push handler: it must
// never panic, must answer 2xx or 4xx (its fake ingester never fails), and
// every series that reaches the ingester must hold the invariants ingesters
// rely on: labels sorted by name, unique, valid UTF-8, non-empty values, a
// metric name, only histograms that decode and pass Prometheus's
// validation, only valid exemplars, samples, histograms or exemplars; and
// every metadata entry names a family.
//
// Seeds are in testdata/fuzz/FuzzDecodeWriteRequest. Run it with:
//
//	go test -run=^$ -fuzz=FuzzDecodeWriteRequest -fuzztime=20s ./distributor/
func FuzzDecodeWriteRequest(f *testing.F) {
	f.Add(encode(f, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up", "job", "x"}, 1, ms(0)),
		series([]string{"job", "x", "__name__", "up", "a", ""}, 1, ms(0)),
	}}))
	withExemplar := series([]string{"__name__", "up"}, 1, ms(0))
	withExemplar.Exemplars = [][]byte{marshalExemplar(f, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: "a"}}, Value: 1, Timestamp: 1})}
	f.Add(encode(f, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{withExemplar},
		Metadata: [][]byte{marshalMetadataEntry(f, prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "h"})}}))
	f.Add([]byte{})
	r, err := ring.NewStatic(ring.Instance{ID: "ing-0", Addr: "ing-0"}, ring.Instance{ID: "ing-1", Addr: "ing-1"})
	if err != nil {
		f.Fatal(err)
	}
	cfg := testConfig(f)
	lim := defaultLimits(f)
	lim.MaxRecvMsgSize = 1 << 16 // Larger inputs only test the limit.
	reused := &writeCtx{byAddr: map[string]int{}}

	f.Fuzz(func(t *testing.T, body []byte) {
		var violation error
		check := func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
			for _, ts := range req.Timeseries {
				if err := checkPushed(ts); err != nil && violation == nil {
					violation = fmt.Errorf("series %s: %w", formatLabels(ts.Labels), err)
				}
			}
			for _, raw := range req.Metadata {
				var m prompb.MetricMetadata
				if err := m.Unmarshal(raw); (err != nil || m.MetricFamilyName == "") && violation == nil {
					violation = fmt.Errorf("metadata entry %x pushed: %v", raw, err)
				}
			}
			return &arguspb.PushResponse{}, nil
		}
		ings := map[string]*fakeIngester{"ing-0": {pushFunc: check}, "ing-1": {pushFunc: check}}
		d := newTestDistributor(t, cfg, r, ings, nil)
		d.limits = tenantLimitsMap{def: lim}
		w := serve(d.PushHandler(), newPushRequest(body))
		if w.Code/100 != 2 && w.Code/100 != 4 {
			t.Fatalf("status %d, want 2xx or 4xx; body: %s", w.Code, w.Body.String())
		}
		if w.Code == http.StatusBadRequest && w.Body.Len() == 0 {
			t.Fatal("400 without a body")
		}
		if violation != nil {
			t.Fatal(violation)
		}
		// Differential: the distributor's request decoder against the
		// generated one, on every body that snappy-decodes within the limit.
		if n, err := snappy.DecodedLen(body); err == nil && n <= lim.MaxRecvMsgSize {
			if raw, err := snappy.Decode(nil, body); err == nil {
				requireDecodesLikeGenerated(t, raw, reused)
			}
		}
	})
}

// newCheckingDistributor returns a distributor with limits lim over one
// fake ingester, and a function returning the first series pushed to it
// that breaks checkPushed's invariants (nil: none), read after the push.
func newCheckingDistributor(t testing.TB, cfg Config, lim *limits.Limits) (*Distributor, func() error) {
	var violation error
	d, ing := newSingleIngester(t, cfg, nil)
	d.limits = tenantLimitsMap{def: lim}
	ing.pushFunc = func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		for _, ts := range req.Timeseries {
			if err := checkPushed(ts); err != nil && violation == nil {
				violation = fmt.Errorf("series %s: %w", formatLabels(ts.Labels), err)
			}
		}
		return &arguspb.PushResponse{}, nil
	}
	return d, func() error { return violation }
}

// checkPushed returns what is wrong with a series pushed to an ingester.
func checkPushed(ts *arguspb.TimeSeries) error {
	hasName := false
	for i, l := range ts.Labels {
		switch {
		case i > 0 && strings.Compare(ts.Labels[i-1].Name, l.Name) >= 0:
			return fmt.Errorf("labels not strictly sorted at %q", l.Name)
		case l.Name == "" || !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value):
			return fmt.Errorf("invalid label %q=%q", l.Name, l.Value)
		case l.Value == "":
			return fmt.Errorf("empty value of %q", l.Name)
		}
		hasName = hasName || l.Name == metricName
	}
	switch {
	case !hasName:
		return fmt.Errorf("no metric name")
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0 && len(ts.Exemplars) == 0:
		return fmt.Errorf("no samples, no histograms and no exemplars")
	}
	for _, b := range ts.Histograms {
		if err := checkPushedHistogram(b); err != nil {
			return fmt.Errorf("invalid histogram pushed: %w", err)
		}
	}
	for _, e := range ts.Exemplars {
		if _, detail := checkExemplar(e); detail != "" {
			return fmt.Errorf("invalid exemplar pushed: %s", detail)
		}
	}
	return nil
}

// checkPushedHistogram returns what Prometheus's head would refuse in a
// pushed histogram sample: bytes that do not decode as a prompb.Histogram,
// an unknown schema, or what Validate refuses once an exponential schema
// above the maximum is reduced, as Prometheus's receiver reduces it. It is
// written apart from validateHistogram so that the fuzzers check that code.
func checkPushedHistogram(b []byte) error {
	var ph prompb.Histogram
	if err := ph.Unmarshal(b); err != nil {
		return err
	}
	if !histogram.IsKnownSchema(ph.Schema) {
		return fmt.Errorf("unknown schema %d", ph.Schema)
	}
	fh := ph.ToFloatHistogram()
	if !ph.IsFloatHistogram() {
		h := ph.ToIntHistogram()
		if err := h.Validate(); err != nil && h.Schema <= histogram.ExponentialSchemaMax {
			return err
		}
		fh = h.ToFloat(nil)
	}
	if fh.Schema > histogram.ExponentialSchemaMax && !histogram.IsCustomBucketsSchema(fh.Schema) {
		if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return err
		}
	}
	return fh.Validate()
}
