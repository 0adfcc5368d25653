package distributor

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// validated decodes and validates req as a push of testTenant under lim
// would. The caller puts the writeCtx back.
func validated(t *testing.T, d *Distributor, req *arguspb.WriteRequest, lim *limits.Limits) *writeCtx {
	t.Helper()
	wc := getWriteCtx()
	wc.body = encode(t, req)
	require.NoError(t, wc.decode(1<<20))
	_, err := d.validate(wc, testTenant, d.metrics.forTenant(testTenant, testNow), lim)
	require.NoError(t, err)
	return wc
}

// pushReq pushes req for testTenant and returns the status and the body.
func pushReq(t *testing.T, d *Distributor, req *arguspb.WriteRequest) (int, string) {
	t.Helper()
	raw, err := req.MarshalVT()
	require.NoError(t, err)
	resp := serve(d.PushHandler(), newPushRequest(snappyEncode(raw)))
	return resp.Code, resp.Body.String()
}

// dictKey is the dictionary key of the series with labels lbls (in their
// order) of tenantID: the encoding of its label fields.
func dictKey(t *testing.T, tenantID string, lbls ...string) string {
	t.Helper()
	raw, err := series(lbls).MarshalVT()
	require.NoError(t, err)
	return string(refKey(nil, tenantID, raw))
}

// entryOf returns d's dictionary entry for key, and whether it has one.
func entryOf(d *Distributor, key string) (dictEntry, bool) {
	d.dict.mu.RLock()
	defer d.dict.mu.RUnlock()
	e, ok := d.dict.refs[key]
	return e, ok
}

// randomValidSeries returns n distinct valid series of random labels
// (sorted names, some values not ASCII), one sample each at now.
func randomValidSeries(rnd *rand.Rand, n int) *arguspb.WriteRequest {
	const alphabet = "abcdefghijklmnopqrstuvwxyz_0123456789"
	word := func(n int) string {
		var b strings.Builder
		b.WriteByte(alphabet[rnd.IntN(26)])
		for range n - 1 {
			b.WriteByte(alphabet[rnd.IntN(len(alphabet))])
		}
		return b.String()
	}
	values := []string{"é", "ünïcode", "日本", ""}
	req := &arguspb.WriteRequest{}
	for i := range n {
		names := []string{"__name__"}
		for range rnd.IntN(12) {
			names = append(names, word(1+rnd.IntN(12)))
		}
		slices.Sort(names)
		names = slices.Compact(names)
		var ls []string
		for _, name := range names {
			v := word(1+rnd.IntN(30)) + values[rnd.IntN(len(values))]
			if name == "__name__" {
				v = fmt.Sprintf("metric_%d", i) // Distinct series.
			}
			ls = append(ls, name, v)
		}
		req.Timeseries = append(req.Timeseries, series(ls, float64(i), ms(0)))
	}
	return req
}

// TestStreamRefs_KnownSeriesToken checks that a series the dictionary
// knows skips the label checks (a token planted in its entry is the one
// it gets) and otherwise gets the token the slow path computes, for many
// random series: shardToken over its key, as a distributor without a
// dictionary computes it.
func TestStreamRefs_KnownSeriesToken(t *testing.T) {
	d := streamTestDistributor(t, &streamIngester{t: t, refs: true}, 0, 0)
	require.NotNil(t, d.dict)
	d.dict.used.Store(true) // As once a stream took refs.
	slow, _ := newSingleIngester(t, testConfig(t), nil)
	require.Nil(t, slow.dict, "no dictionary without a ClientPool")
	local, err := New(testConfig(t), Deps{Ring: slow.ring, Limits: slow.limits, Clients: NewLocalClients(d.clients, "x:1", nil, 1<<20, nil)})
	require.NoError(t, err)
	require.Nil(t, local.dict, "the all-in-one's in-process pushes keep the slow path")

	lim := defaultLimits(t)
	req := randomValidSeries(rand.New(rand.NewPCG(11, 13)), 2000)
	want := validated(t, slow, req, lim)
	defer putWriteCtx(want)
	require.Len(t, want.series, len(req.Timeseries))
	for i := range want.series {
		require.Nil(t, want.series[i].ts, "series %d on the fast path", i)
		key := want.appendLabels(append([]byte(testTenant), 0xff), i)
		require.Equal(t, shardToken(key), want.series[i].token, "series %d", i)
	}

	first := validated(t, d, req, lim) // Unknown: checked, then remembered.
	for i := range first.series {
		require.Zero(t, first.series[i].ref)
		require.Equal(t, want.series[i].token, first.series[i].token, "series %d", i)
	}
	refs := slices.Clone(first.streamRefs.refs)
	require.NotContains(t, refs, uint32(0))
	require.Equal(t, refs, d.dict.refsOf(first), "refsOf takes validate's refs")
	putWriteCtx(first)

	planted := dictKey(t, testTenant, labelPairs(req.Timeseries[7])...)
	d.dict.mu.Lock()
	e := d.dict.refs[planted]
	e.token = ^e.token
	d.dict.refs[planted] = e
	d.dict.mu.Unlock()

	second := validated(t, d, req, lim)
	defer putWriteCtx(second)
	for i := range second.series {
		require.Equal(t, refs[i], second.series[i].ref, "series %d known", i)
		if i == 7 {
			require.Equal(t, ^want.series[i].token, second.series[i].token, "the token of the entry, not recomputed")
			continue
		}
		require.Equal(t, want.series[i].token, second.series[i].token, "series %d", i)
	}
	require.Equal(t, refs, second.streamRefs.refs)
}

// labelPairs returns the labels of ts as name, value pairs.
func labelPairs(ts *arguspb.TimeSeries) []string {
	var out []string
	for _, l := range ts.Labels {
		out = append(out, l.Name, l.Value)
	}
	return out
}

// refsTestDistributor returns a distributor pushing to a streamIngester
// that takes refs, with the dictionary in use (two pushes warm it), and
// the limits of testTenant, which the test may replace in lims.
func refsTestDistributor(t *testing.T) (*Distributor, *streamIngester, tenantLimitsMap) {
	t.Helper()
	f := &streamIngester{t: t, refs: true}
	d := streamTestDistributor(t, f, 0, 0)
	lims := tenantLimitsMap{def: defaultLimits(t), tenants: map[string]*limits.Limits{testTenant: defaultLimits(t)}}
	d.limits = lims
	for v := range 2 {
		resp := pushAs(d, testTenant, float64(v), "warm")
		require.Equal(t, http.StatusNoContent, resp.StatusCode, readBody(t, resp))
	}
	require.True(t, d.dict.used.Load(), "the second push went by ref")
	return d, f, lims
}

// TestStreamRefs_InvalidNeverCached checks that a series validation
// refuses never enters the dictionary and is refused again, with the same
// answer, while the valid series of its push are remembered.
func TestStreamRefs_InvalidNeverCached(t *testing.T) {
	d, f, _ := refsTestDistributor(t)
	tooLong := strings.Repeat("v", 2049)
	for _, tc := range []struct {
		name    string
		invalid []string
		want    string
	}{
		{"value too long", []string{"__name__", "bad", "v", tooLong}, "err-argus-label-value-too-long"},
		{"no metric name", []string{"job", "nameless"}, "err-argus-missing-metric-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
				series([]string{"__name__", "good", "job", tc.name}, 1, ms(0)),
				series(tc.invalid, 1, ms(0)),
			}}
			code, body := pushReq(t, d, req)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, body, tc.want)
			for range 2 {
				code2, body2 := pushReq(t, d, req)
				require.Equal(t, code, code2)
				require.Equal(t, body, body2, "refused again, the same way")
			}
			_, ok := entryOf(d, dictKey(t, testTenant, tc.invalid...))
			require.False(t, ok, "the invalid series is not in the dictionary")
			e, ok := entryOf(d, dictKey(t, testTenant, "__name__", "good", "job", tc.name))
			require.True(t, ok && e.checked, "the valid one is, checked")
		})
	}
	for _, p := range f.seen() {
		for _, s := range p.series {
			require.NotContains(t, s, "bad")
			require.NotContains(t, s, "nameless")
		}
	}
}

// TestStreamRefs_LimitsChangeRevalidates checks that a known series is
// checked again under new limits: a lower MaxLabelValueLength refuses it,
// and the old limits take it again.
func TestStreamRefs_LimitsChangeRevalidates(t *testing.T) {
	d, f, lims := refsTestDistributor(t)
	old := lims.tenants[testTenant]
	value := strings.Repeat("v", 100)
	req := &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "m", "v", value}, 1, ms(0))}}
	for range 2 {
		code, body := pushReq(t, d, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}
	key := dictKey(t, testTenant, "__name__", "m", "v", value)
	e, ok := entryOf(d, key)
	oldKey, _ := labelLimitsOf(old)
	require.True(t, ok && e.checked && e.lim == oldKey, "known under the old limits: %+v", e)

	lower := *old // A reload of the runtime overrides: a new *Limits.
	lower.MaxLabelValueLength = 50
	lims.tenants[testTenant] = &lower
	code, body := pushReq(t, d, req)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "err-argus-label-value-too-long")
	require.Len(t, f.seen(), 4, "nothing pushed under the lower limit")

	same := *old // Equal limits in another object: still known.
	lims.tenants[testTenant] = &same
	wc := validated(t, d, req, &same)
	require.NotZero(t, wc.series[0].ref)
	putWriteCtx(wc)
	code, body = pushReq(t, d, req)
	require.Equal(t, http.StatusNoContent, code, body)
	require.Len(t, f.seen(), 5)
}

// TestStreamRefs_FutureSampleOfKnownSeries checks that a known series'
// samples are still checked against the grace period: a sample at its end
// is taken, one a millisecond later refused as without the dictionary.
func TestStreamRefs_FutureSampleOfKnownSeries(t *testing.T) {
	d, f, _ := refsTestDistributor(t)
	slow, _ := newSingleIngester(t, testConfig(t), nil)
	at := func(ts time.Duration) *arguspb.WriteRequest {
		return &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "m", "job", "j"}, 1, ms(ts))}}
	}
	for i := range 2 {
		code, body := pushReq(t, d, at(time.Duration(i)*time.Second))
		require.Equal(t, http.StatusNoContent, code, body)
	}
	_, ok := entryOf(d, dictKey(t, testTenant, "__name__", "m", "job", "j"))
	require.True(t, ok)

	code, body := pushReq(t, d, at(10*time.Minute))
	require.Equal(t, http.StatusNoContent, code, body)
	late := at(10*time.Minute + time.Millisecond)
	code, body = pushReq(t, d, late)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "too far in the future")
	wantCode, wantBody := pushReq(t, slow, late)
	require.Equal(t, wantCode, code)
	require.Equal(t, wantBody, body)
	got := f.seen()
	require.Len(t, got, 5, "two warm-ups, three pushes of m, the late one not sent")
	require.Equal(t, []string{fmt.Sprintf(`{__name__="m", job="j"} 1@%d`, int64(ms(10*time.Minute)))}, got[4].series)
	wc := validated(t, d, late, defaultLimits(t))
	defer putWriteCtx(wc)
	require.Empty(t, wc.series, "the late series is not pushed")
	require.Empty(t, wc.streamRefs.refs)
}
