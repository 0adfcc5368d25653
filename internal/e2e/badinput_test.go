package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestBadInput sends malformed and invalid remote-write requests. Each gets
// its exact 4xx status and a body that names the reason (and the series, for
// per-series errors); valid series of a mixed request are ingested; nothing
// that is rejected is stored; the process stays up.
func TestBadInput(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const maxRecv = 1 << 20
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-distributor.max-recv-msg-size=1048576"}})
	const tenant = "bad-input"
	now := time.Now().Truncate(time.Second).UnixMilli()
	smp := func(ts ...int64) []clustertest.Sample {
		out := make([]clustertest.Sample, 0, len(ts))
		for i, t := range ts {
			out = append(out, clustertest.Sample{T: t, V: float64(i + 1)})
		}
		return out
	}

	// rejectedSamples counts the samples of series-level rejections, which
	// argus_discarded_samples_total must count; whole-request failures
	// (undecodable, too large) have no samples to count.
	rejectedSamples := 0
	cases := []struct {
		name       string
		body       []byte
		wantStatus int
		// wantBody are case-insensitive patterns the answer must all match.
		wantBody []string
		rejected int
	}{
		{
			name:       "malformed snappy",
			body:       []byte("this is not a snappy block"),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`snappy`},
		},
		{
			name:       "malformed protobuf",
			body:       snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`proto|unmarshal`},
		},
		{
			name:       "empty body",
			body:       []byte{},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`snappy|empty`},
		},
		{
			name: "series without a metric name",
			body: clustertest.EncodeWriteRequest(t, []clustertest.TimeSeries{
				{Labels: clustertest.Labels("job", "no-name"), Samples: smp(now)},
			}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`metric name`, `no-name`},
			rejected:   1,
		},
		{
			name: "duplicate label names",
			body: clustertest.EncodeWriteRequest(t, []clustertest.TimeSeries{
				{Labels: clustertest.Labels("__name__", "bad_dup", "job", "x", "job", "y"), Samples: smp(now, now+1000)},
			}),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`duplicate`, `bad_dup`},
			rejected:   2,
		},
		{
			// 400, not 413, as Mimir answers: either way the sender drops
			// the request instead of retrying it.
			name:       "over -distributor.max-recv-msg-size",
			body:       oversizedRequest(t, maxRecv),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`too large|larger than|exceed|limit`},
		},
		{
			// Small on the wire, over the limit once decoded.
			name:       "decoded size over -distributor.max-recv-msg-size",
			body:       snappy.Encode(nil, make([]byte, 2*maxRecv)),
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{`too large|larger than|exceed|limit`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.PushBody(t, tenant, tc.body)
			require.Equal(t, tc.wantStatus, code, "answer: %s", body)
			for _, p := range tc.wantBody {
				require.Regexp(t, regexp.MustCompile(`(?i)`+p), body)
			}
			rejectedSamples += tc.rejected
		})
	}

	// An empty WriteRequest is valid and stores nothing, as in Prometheus's
	// own receiver.
	t.Run("empty write request", func(t *testing.T) {
		code, body := a.PushBody(t, tenant, snappy.Encode(nil, nil))
		require.Equal(t, http.StatusNoContent, code, "answer: %s", body)
	})

	t.Run("mixed request ingests the valid series", func(t *testing.T) {
		series := []clustertest.TimeSeries{
			{Labels: clustertest.Labels("__name__", "bad_input_valid", "i", "1"), Samples: smp(now-2000, now-1000, now)},
			{Labels: clustertest.Labels("i", "nameless"), Samples: smp(now)},
			{Labels: clustertest.Labels("__name__", "bad_input_dup", "i", "2", "i", "3"), Samples: smp(now)},
			{Labels: clustertest.Labels("__name__", "bad_input_valid", "i", "2"), Samples: smp(now)},
		}
		code, body := a.Push(t, tenant, series)
		require.Equal(t, http.StatusBadRequest, code, "answer: %s", body)
		require.Regexp(t, `(?i)metric name`, body)
		require.Regexp(t, `nameless`, body)
		require.Regexp(t, `(?i)duplicate`, body)
		require.Regexp(t, `bad_input_dup`, body)
		require.NotContains(t, body, `bad_input_valid`, "a valid series is not named as rejected")
		rejectedSamples += 2

		want := []clustertest.Series{
			{Metric: map[string]string{"__name__": "bad_input_valid", "i": "1"}, Samples: smp(now-2000, now-1000, now)},
			{Metric: map[string]string{"__name__": "bad_input_valid", "i": "2"}, Samples: smp(now)},
		}
		got := rawSamples(t, a, tenant, `{__name__=~"bad_input_.*"}`, now, time.Hour)
		require.Empty(t, clustertest.DiffSamples(want, got))
	})

	t.Run("out-of-order and duplicate-timestamp samples", func(t *testing.T) {
		ls := clustertest.Labels("__name__", "bad_input_order", "i", "1")
		pushOK(t, a, tenant, []clustertest.TimeSeries{{Labels: ls, Samples: []clustertest.Sample{{T: now, V: 10}}}})

		code, body := a.Push(t, tenant, []clustertest.TimeSeries{{Labels: ls, Samples: []clustertest.Sample{{T: now - 5000, V: 1}}}})
		require.Equal(t, http.StatusBadRequest, code, "answer: %s", body)
		require.Regexp(t, `(?i)out[ -]of[ -]order`, body)
		require.Contains(t, body, `bad_input_order`)
		rejectedSamples++

		code, body = a.Push(t, tenant, []clustertest.TimeSeries{{Labels: ls, Samples: []clustertest.Sample{{T: now, V: 11}}}})
		require.Equal(t, http.StatusBadRequest, code, "answer: %s", body)
		require.Regexp(t, `(?i)duplicate`, body)
		require.Contains(t, body, `bad_input_order`)
		rejectedSamples++

		// Resending an identical sample (a client retry) is accepted and
		// stored once.
		pushOK(t, a, tenant, []clustertest.TimeSeries{{Labels: ls, Samples: []clustertest.Sample{{T: now, V: 10}}}})
		want := []clustertest.Series{{Metric: map[string]string{"__name__": "bad_input_order", "i": "1"}, Samples: []clustertest.Sample{{T: now, V: 10}}}}
		require.Empty(t, clustertest.DiffSamples(want, rawSamples(t, a, tenant, `bad_input_order`, now, time.Hour)))
	})

	require.Equal(t, http.StatusOK, a.ReadyStatus(t), "argus is still ready after bad input")
	require.True(t, a.Running())
	require.InDelta(t, float64(rejectedSamples), a.Metric(t, "argus_discarded_samples_total", map[string]string{"tenant": tenant}), 0,
		"argus_discarded_samples_total{tenant=%q} counts every rejected sample", tenant)
	// Nothing rejected was stored: the tenant has exactly the valid series.
	code, body := a.Query(t, tenant, clustertest.PromAPI+"/series", map[string][]string{
		"match[]": {`{__name__=~".+"}`}, "start": {clustertest.FormatAPITime(now - 3600_000)}, "end": {clustertest.FormatAPITime(now)},
	})
	require.Empty(t, cmpJSON(t, mustJSON(t, `[
		{"__name__":"bad_input_order","i":"1"},
		{"__name__":"bad_input_valid","i":"1"},
		{"__name__":"bad_input_valid","i":"2"}
	]`), clustertest.SortSeriesList(apiData(t, code, body))))
}

// oversizedRequest is a valid remote-write body larger than limit even
// compressed (random label values do not compress).
func oversizedRequest(t testing.TB, limit int) []byte {
	t.Helper()
	var series []clustertest.TimeSeries
	now := time.Now().UnixMilli()
	buf := make([]byte, 512)
	for size := 0; size <= limit+limit/2; size += 2 * len(buf) {
		_, err := rand.Read(buf)
		require.NoError(t, err)
		series = append(series, clustertest.TimeSeries{
			Labels:  clustertest.Labels("__name__", "bad_input_big", "blob", hex.EncodeToString(buf)),
			Samples: []clustertest.Sample{{T: now, V: 1}},
		})
	}
	body := clustertest.EncodeWriteRequest(t, series)
	require.Greater(t, len(body), limit)
	return body
}
