package distributor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestPushHandler covers each kind of input: its exact status, the body
// naming the rejected series and the reason, and, in the mixed cases, the
// exact series that still reached the ingester.
func TestPushHandler(t *testing.T) {
	valid := series([]string{"__name__", "up", "job", "x"}, 1, ms(-time.Minute))
	const validPushed = `{__name__="up", job="x"} 1@1767322985000`

	cases := []struct {
		name       string
		body       []byte
		header     map[string]string // set on top of the remote-write 1.0 headers; "" deletes
		method     string
		noTenant   bool
		cfg        func(*Config)
		lim        func(*limits.Limits)
		wantStatus int
		wantBody   []string // substrings of the body, in order
		wantPushed []string // exact, in order; nil means nothing pushed
	}{
		{
			name:       "valid series",
			body:       encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{valid.CloneVT()}}),
			wantStatus: http.StatusNoContent,
			wantPushed: []string{validPushed},
		},
		{
			name:       "absent content type and encoding are remote write 1.0 snappy",
			body:       encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{valid.CloneVT()}}),
			header:     map[string]string{"Content-Type": "", "Content-Encoding": ""},
			wantStatus: http.StatusNoContent,
			wantPushed: []string{validPushed},
		},
		{
			name:       "explicit remote write 1.0 content type",
			body:       encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{valid.CloneVT()}}),
			header:     map[string]string{"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"},
			wantStatus: http.StatusNoContent,
			wantPushed: []string{validPushed},
		},
		{
			name:       "malformed snappy",
			body:       []byte{0x05, 0xff, 0xff, 0xff},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"decode snappy: "},
		},
		{
			name:       "malformed protobuf",
			body:       snappy.Encode(nil, []byte{0x0a, 0x7f, 0x01}), // field 1, length 127, 1 byte.
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"decode protobuf: "},
		},
		{
			// Prometheus's receiver answers 400 too: the snappy decoder both
			// use (klauspost/compress) fails on an empty body.
			name:       "zero-length body",
			body:       []byte{},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"decode snappy: s2: corrupt input"},
		},
		{
			// A valid, empty WriteRequest: Prometheus's receiver answers 204.
			name:       "empty request",
			body:       encode(t, &arguspb.WriteRequest{}),
			wantStatus: http.StatusNoContent,
		},
		{
			name: "series without metric name",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"job", "x"}, 1, ms(0), 2, ms(time.Second)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody: []string{
				"1 series (2 samples) rejected, 1 samples accepted\n",
				`{job="x"}: missing metric name: `,
			},
			wantPushed: []string{validPushed},
		},
		{
			name: "empty metric name is a missing one",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "", "job", "x"}, 1, ms(0)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`{__name__="", job="x"}: missing metric name: `},
			wantPushed: []string{validPushed},
		},
		{
			name: "duplicate label names",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "up", "a", "1", "a", "2"}, 1, ms(0)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody: []string{
				"1 series (1 samples) rejected, 1 samples accepted\n",
				`{__name__="up", a="1", a="2"}: duplicate label names: label name "a" appears more than once`,
			},
			wantPushed: []string{validPushed},
		},
		{
			name: "invalid label name",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "up", "b\xffad", "1"}, 1, ms(0)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`{__name__="up", "b\xffad"="1"}: invalid label name: label name "b\xffad" is empty or not valid UTF-8`},
			wantPushed: []string{validPushed},
		},
		{
			name: "empty label name",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"", "v", "__name__", "up"}, 1, ms(0)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`{""="v", __name__="up"}: invalid label name: `},
			wantPushed: []string{validPushed},
		},
		{
			name: "invalid label value",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "up", "job", "\xc3\x28"}, 1, ms(0)), valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`{__name__="up", job="\xc3("}: invalid label value: value "\xc3(" of label "job" is not valid UTF-8`},
			wantPushed: []string{validPushed},
		},
		{
			name: "invalid metric name",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "\xff"}, 1, ms(0)),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"1 series (1 samples) rejected, 0 samples accepted\n", `{__name__="\xff"}: invalid metric name: `},
		},
		{
			name: "unsorted labels are sorted before the push",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"zone", "z", "job", "x", "__name__", "up", "instance", "i"}, 1, ms(0)),
			}}),
			wantStatus: http.StatusNoContent,
			wantPushed: []string{`{__name__="up", instance="i", job="x", zone="z"} 1@1767323045000`},
		},
		{
			name: "empty label values are stripped",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "up", "a", "", "job", "x", "z", ""}, 1, ms(0)),
			}}),
			wantStatus: http.StatusNoContent,
			wantPushed: []string{`{__name__="up", job="x"} 1@1767323045000`},
		},
		{
			name:       "body over the size limit",
			lim:        func(l *limits.Limits) { l.MaxRecvMsgSize = 64 },
			body:       make([]byte, 65),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"request body too large: 65 bytes, over -distributor.max-recv-msg-size=64"},
		},
		{
			name: "snappy header announcing a huge decoded length",
			lim:  func(l *limits.Limits) { l.MaxRecvMsgSize = 1 << 20 },
			// A varint of 1 GiB, then garbage: rejected before any allocation.
			body:       append(binary.AppendUvarint(nil, 1<<30), 0x00, 0x01, 0x02),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"decoded request too large: the snappy header announces 1073741824 bytes, over -distributor.max-recv-msg-size=1048576"},
		},
		{
			name:       "wrong content encoding",
			body:       encode(t, &arguspb.WriteRequest{}),
			header:     map[string]string{"Content-Encoding": "gzip"},
			wantStatus: http.StatusUnsupportedMediaType,
			wantBody:   []string{`unsupported content encoding: "gzip", only snappy is accepted`},
		},
		{
			name:       "unknown proto",
			body:       encode(t, &arguspb.WriteRequest{}),
			header:     map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"},
			wantStatus: http.StatusUnsupportedMediaType,
			wantBody:   []string{`expected proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request`},
		},
		{
			name:       "wrong content type",
			body:       encode(t, &arguspb.WriteRequest{}),
			header:     map[string]string{"Content-Type": "application/json"},
			wantStatus: http.StatusUnsupportedMediaType,
			wantBody:   []string{`unsupported content type: "application/json"`},
		},
		{
			name: "invalid native histograms",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				func() *arguspb.TimeSeries {
					ts := series([]string{"__name__", "latency"}, 1, ms(0))
					ts.Histograms = [][]byte{{0x01}, {0x02}}
					return ts
				}(),
				valid.CloneVT(),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody: []string{
				"1 series (2 samples) rejected, 2 samples accepted\n",
				`{__name__="latency"}: invalid native histogram: 2 histogram samples refused, the first at 0 ms: malformed histogram`,
			},
			wantPushed: []string{`{__name__="latency"} 1@1767323045000`, validPushed},
		},
		{
			name: "samples too far in the future",
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "up"}, 1, ms(0), 2, ms(10*time.Minute), 3, ms(10*time.Minute+time.Millisecond), 4, ms(time.Hour)),
				series([]string{"__name__", "late"}, 1, ms(time.Hour)),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody: []string{
				"2 series (3 samples) rejected, 2 samples accepted\n",
				`{__name__="up"}: too far in the future: 2 samples after 1767323645000 ms (now + -validation.create-grace-period=10m0s), the first at 1767323645001 ms` + "\n",
				`{__name__="late"}: too far in the future: 1 samples after`,
			},
			wantPushed: []string{`{__name__="up"} 1@1767323045000 2@1767323645000`},
		},
		{
			name: "rejected series listed up to max-errors-in-response",
			cfg:  func(c *Config) { c.MaxErrorsInResponse = 2 },
			body: encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"job", "1"}, 1, ms(0)), series([]string{"job", "2"}, 1, ms(0)), series([]string{"job", "3"}, 1, ms(0)),
			}}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"3 series (3 samples) rejected, 0 samples accepted\n", `{job="1"}`, `{job="2"}`, "(1 more rejected series not listed)"},
		},
		{
			name: "malformed exemplars and metadata are rejected, series without samples skipped",
			body: encode(t, &arguspb.WriteRequest{
				Timeseries: []*arguspb.TimeSeries{
					func() *arguspb.TimeSeries {
						ts := valid.CloneVT()
						ts.Exemplars = [][]byte{{0x01}}
						return ts
					}(),
					series([]string{"__name__", "nosamples"}),
				},
				Metadata: [][]byte{{0x01}},
			}),
			wantStatus: http.StatusBadRequest,
			wantBody: []string{"err-argus-invalid-exemplar", "0 series (0 samples) rejected, 1 samples accepted, 2 exemplars or metadata entries rejected\n",
				`err-argus-invalid-exemplar: exemplar of {__name__="up", job="x"}: does not decode`, `err-argus-invalid-metadata: metadata of "": does not decode`},
			wantPushed: []string{validPushed},
		},
		{
			name:       "GET",
			method:     http.MethodGet,
			wantStatus: http.StatusMethodNotAllowed,
		},
		{
			name:       "no tenant",
			body:       encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{valid.CloneVT()}}),
			noTenant:   true,
			wantStatus: http.StatusUnauthorized,
			wantBody:   []string{"no tenant ID"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			d, ing := newSingleIngester(t, cfg, nil)
			if c.lim != nil {
				l := defaultLimits(t)
				c.lim(l)
				d.limits = tenantLimitsMap{def: l}
			}
			r := newPushRequest(c.body)
			if c.method != "" {
				r.Method = c.method
			}
			if c.noTenant {
				r = r.WithContext(t.Context())
			}
			for k, v := range c.header {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}
			w := serve(d.PushHandler(), r)
			body := w.Body.String()
			require.Equal(t, c.wantStatus, w.Code, "body: %s", body)
			rest := body
			for _, want := range c.wantBody {
				i := strings.Index(rest, want)
				require.GreaterOrEqual(t, i, 0, "body %q lacks %q (in order)", body, want)
				rest = rest[i+len(want):]
			}
			if c.wantStatus >= 400 {
				require.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
			} else {
				require.Empty(t, body)
			}
			require.Equal(t, c.wantPushed, nilIfEmpty(ing.pushed()))
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestPushHandler_Metrics checks the counters of one push that has valid,
// invalid, exemplar and metadata content, and that every discard reason
// exists at zero once the tenant is seen.
func TestPushHandler_Metrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, _ := newSingleIngester(t, testConfig(t), reg)
	ex := series([]string{"__name__", "up"}, 1, ms(0), 2, ms(time.Second))
	ex.Exemplars = [][]byte{{1}, {2}}
	body := encode(t, &arguspb.WriteRequest{
		Timeseries: []*arguspb.TimeSeries{ex, series([]string{"job", "x"}, 1, ms(0))},
		Metadata:   [][]byte{{1}},
	})
	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusBadRequest, w.Code)

	m := d.metrics
	require.InDelta(t, 1.0, testutil.ToFloat64(m.receivedRequests.WithLabelValues(testTenant)), 0)
	require.InDelta(t, 3.0, testutil.ToFloat64(m.receivedSamples.WithLabelValues(testTenant)), 0)
	require.InDelta(t, 1.0, testutil.ToFloat64(m.discardedSamples.WithLabelValues("missing_metric_name", testTenant)), 0)
	require.InDelta(t, 0.0, testutil.ToFloat64(m.discardedSamples.WithLabelValues("too_far_in_future", testTenant)), 0)
	require.InDelta(t, 2.0, testutil.ToFloat64(m.receivedExemplars), 0)
	require.InDelta(t, 1.0, testutil.ToFloat64(m.receivedMetadata), 0)
	require.InDelta(t, 2.0, testutil.ToFloat64(m.discardedExemplars[exReasonInvalid]), 0)
	require.InDelta(t, 1.0, testutil.ToFloat64(m.discardedExemplars[mdReasonInvalid]), 0)
	n, err := testutil.GatherAndCount(reg, "argus_discarded_samples_total")
	require.NoError(t, err)
	require.Equal(t, int(numReasons), n, "every reason pre-created for the tenant")
	n, err = testutil.GatherAndCount(reg, "argus_distributor_push_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestPushHandler_ReusesPooledBuffers pushes different requests in a row
// through the same handler, so that pooled state from one request must not
// leak into the next.
func TestPushHandler_ReusesPooledBuffers(t *testing.T) {
	d, ing := newSingleIngester(t, testConfig(t), nil)
	var want []string
	for i := range 20 {
		ts := series([]string{"__name__", "m", "i", strings.Repeat("x", 1+i*37)}, float64(i), ms(0))
		want = append(want, seriesString(ts))
		reqs := []*arguspb.TimeSeries{ts}
		if i%3 == 0 {
			reqs = append(reqs, series([]string{"job", "bad"}, 1, ms(0)))
		}
		w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: reqs})))
		if i%3 == 0 {
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Contains(t, w.Body.String(), "1 series (1 samples) rejected, 1 samples accepted")
		} else {
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		}
	}
	require.Equal(t, want, ing.pushed())
}

func TestHTTPStatusFor(t *testing.T) {
	cases := map[error]int{
		nil:                       http.StatusNoContent,
		tenant.ErrNoTenant:        http.StatusUnauthorized,
		ErrMethodNotAllowed:       http.StatusMethodNotAllowed,
		ErrUnsupportedEncoding:    http.StatusUnsupportedMediaType,
		ErrUnsupportedContentType: http.StatusUnsupportedMediaType,
		ErrBodyTooLarge:           http.StatusBadRequest,
		ErrDecodedTooLarge:        http.StatusBadRequest,
		ErrReadBody:               http.StatusBadRequest,
		ErrDecodeSnappy:           http.StatusBadRequest,
		ErrDecodeProtobuf:         http.StatusBadRequest,
		&rejectedError{id: apierror.MissingMetricName, body: "x"}: http.StatusBadRequest,
		tenant.ErrInvalidTenant:                                   http.StatusUnauthorized,
		&rateLimitedError{msg: "x"}:                               http.StatusTooManyRequests,
		ErrNoIngester:                                             http.StatusServiceUnavailable,
		ErrPoolClosed:                                             http.StatusInternalServerError,
	}
	for err, want := range cases {
		require.Equal(t, want, httpStatusFor(err), "%v", err)
	}
}

// errReader fails after its data, as a connection that breaks mid-body.
type errReader struct{ data []byte }

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("connection reset")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestPushHandler_BodyWithoutContentLength covers the size limit and read
// errors of a body whose length is not announced (chunked encoding).
func TestPushHandler_BodyWithoutContentLength(t *testing.T) {
	cfg := testConfig(t)
	d, ing := newSingleIngester(t, cfg, nil)
	lim := defaultLimits(t)
	lim.MaxRecvMsgSize = 1000
	d.limits = tenantLimitsMap{def: lim}

	r := newPushRequest(nil)
	r.Body = io.NopCloser(bytes.NewReader(make([]byte, 5000)))
	r.ContentLength = -1
	w := serve(d.PushHandler(), r)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, `err-argus-request-too-large: tenant "tenant-a": request body too large: more than -distributor.max-recv-msg-size=1000 bytes`+"\n", w.Body.String())

	r = newPushRequest(nil)
	r.Body = io.NopCloser(&errReader{data: []byte{1, 2, 3}})
	r.ContentLength = -1
	w = serve(d.PushHandler(), r)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, `err-argus-malformed-request: tenant "tenant-a": read request body: connection reset`+"\n", w.Body.String())

	// Exactly at the limit, in many small reads: accepted.
	ts := series([]string{"__name__", "up", "pad", strings.Repeat("p", 500)}, 1, ms(0))
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{ts}})
	require.Less(t, len(body), lim.MaxRecvMsgSize)
	r = newPushRequest(nil)
	r.Body = io.NopCloser(iotest.OneByteReader(bytes.NewReader(body)))
	r.ContentLength = -1
	w = serve(d.PushHandler(), r)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, []string{seriesString(ts)}, ing.pushed())
}
