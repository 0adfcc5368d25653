package distributor

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

func TestSeriesValidator(t *testing.T) {
	v := newSeriesValidator(testNow, defaultLimits(t))
	withHistograms := func(ts *arguspb.TimeSeries) *arguspb.TimeSeries {
		ts.Histograms = [][]byte{{0x01}}
		return ts
	}
	cases := []struct {
		name        string
		in          *arguspb.TimeSeries
		wantErr     error // nil: valid as sent
		wantSamples int   // rejected samples
		wantPartial bool
		want        string // the series afterwards (seriesString), when it is kept
	}{
		{name: "valid", in: series([]string{"__name__", "up", "job", "x"}, 1, ms(0)), want: `{__name__="up", job="x"} 1@1767323045000`},
		{name: "unsorted", in: series([]string{"job", "x", "__name__", "up"}, 1, ms(0)), want: `{__name__="up", job="x"} 1@1767323045000`},
		{name: "empty values stripped", in: series([]string{"__name__", "up", "a", "", "b", ""}, 1, ms(0)), want: `{__name__="up"} 1@1767323045000`},
		{name: "utf-8 names", in: series([]string{"__name__", "http.requests", "ключ", "значение"}, 1, ms(0)), want: `{__name__="http.requests", "ключ"="значение"} 1@1767323045000`},
		{name: "no labels", in: series(nil, 1, ms(0)), wantErr: ErrMissingMetricName, wantSamples: 1},
		{name: "no name", in: series([]string{"job", "x"}, 1, ms(0), 2, ms(1)), wantErr: ErrMissingMetricName, wantSamples: 2},
		{name: "empty name", in: series([]string{"__name__", ""}, 1, ms(0)), wantErr: ErrMissingMetricName, wantSamples: 1},
		{name: "invalid metric name", in: series([]string{"__name__", "\xff"}, 1, ms(0)), wantErr: ErrInvalidMetricName, wantSamples: 1},
		{name: "empty label name", in: series([]string{"__name__", "up", "", "x"}, 1, ms(0)), wantErr: ErrInvalidLabelName, wantSamples: 1},
		{name: "invalid label name", in: series([]string{"__name__", "up", "\xff", "x"}, 1, ms(0)), wantErr: ErrInvalidLabelName, wantSamples: 1},
		{name: "invalid label value", in: series([]string{"__name__", "up", "job", "\xff"}, 1, ms(0)), wantErr: ErrInvalidLabelValue, wantSamples: 1},
		{name: "duplicate names", in: series([]string{"__name__", "up", "a", "1", "a", "2"}, 1, ms(0)), wantErr: ErrDuplicateLabelNames, wantSamples: 1},
		{name: "duplicate names, one value empty", in: series([]string{"__name__", "up", "a", "", "a", "2"}, 1, ms(0)), wantErr: ErrDuplicateLabelNames, wantSamples: 1},
		{name: "duplicate unsorted names", in: series([]string{"a", "1", "__name__", "up", "a", "2"}, 1, ms(0)), wantErr: ErrDuplicateLabelNames, wantSamples: 1},
		{
			name: "a histogram that does not decode", in: withHistograms(series([]string{"__name__", "up"}, 1, ms(0))),
			wantErr: ErrInvalidNativeHistogram, wantSamples: 1, wantPartial: true, want: `{__name__="up"} 1@1767323045000`,
		},
		{name: "labels checked before histograms", in: withHistograms(series([]string{"job", "x"})), wantErr: ErrMissingMetricName, wantSamples: 1},
		{name: "at the grace limit", in: series([]string{"__name__", "up"}, 1, ms(10*time.Minute)), want: `{__name__="up"} 1@1767323645000`},
		{
			name: "some samples too far in the future", in: series([]string{"__name__", "up"}, 1, ms(0), 2, ms(11*time.Minute), 3, ms(time.Minute)),
			wantErr: ErrTooFarInFuture, wantSamples: 1, wantPartial: true, want: `{__name__="up"} 1@1767323045000 3@1767323105000`,
		},
		{name: "all samples too far in the future", in: series([]string{"__name__", "up"}, 2, ms(11*time.Minute)), wantErr: ErrTooFarInFuture, wantSamples: 1},
		{name: "no samples", in: series([]string{"__name__", "up"}), want: `{__name__="up"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			serr := v.validate(c.in)
			if c.wantErr == nil {
				require.Nil(t, serr)
				require.Equal(t, c.want, seriesString(c.in))
				return
			}
			require.NotNil(t, serr)
			var err error = serr
			require.ErrorIs(t, err, c.wantErr)
			for _, other := range []error{ErrMissingMetricName, ErrInvalidLabelName, ErrTooFarInFuture, ErrInvalidNativeHistogram} {
				if !errors.Is(c.wantErr, other) {
					require.NotErrorIs(t, err, other)
				}
			}
			require.Equal(t, c.wantSamples, serr.samples)
			require.Equal(t, c.wantPartial, serr.partial)
			if c.wantPartial {
				require.Equal(t, c.want, seriesString(c.in))
			}
		})
	}
}

func TestConfig(t *testing.T) {
	cfg := testConfig(t)
	require.Equal(t, Config{
		RemoteTimeout:       20 * time.Second,
		MaxErrorsInResponse: 10,
		IdleTenantTimeout:   time.Hour,
		InstanceLimits:      InstanceLimits{MaxInflightPushRequests: 2000},
		LocalIngesterPushes: true,
		HATracker:           HATrackerConfig{UpdateTimeout: 15 * time.Second, UpdateTimeoutJitterMax: 5 * time.Second, FailoverTimeout: 30 * time.Second},
	}, cfg)
	require.NoError(t, cfg.Validate())

	bad := Config{RemoteTimeout: 0, MaxErrorsInResponse: -1}
	err := bad.Validate()
	require.ErrorContains(t, err, "-distributor.remote-timeout")
	require.ErrorContains(t, err, "-distributor.max-errors-in-response")
	require.ErrorContains(t, err, "-distributor.idle-tenant-timeout")

	_, err = New(bad, Deps{})
	require.Error(t, err)
	_, err = New(cfg, Deps{})
	require.ErrorContains(t, err, "ring")
}
