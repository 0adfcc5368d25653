package ingester

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// splitReads makes inParts split every read of at least 2*minItems items
// over 4 parts for the rest of the test.
func splitReads(t *testing.T, minItems int) {
	prevMin, prevProcs := partMinItems, runtime.GOMAXPROCS(4)
	partMinItems = minItems
	t.Cleanup(func() { partMinItems = prevMin; runtime.GOMAXPROCS(prevProcs) })
}

// TestInParts checks that the parts' results end contiguous and in order,
// whatever each part keeps, and that a part's error is returned.
func TestInParts(t *testing.T) {
	splitReads(t, 10)
	for _, n := range []int{0, 5, 19, 20, 21, 39, 40, 97, 1000} {
		in := make([]int, n)
		for i := range in {
			in[i] = i
		}
		want := []int{}
		for _, v := range in {
			if v%3 != 1 {
				want = append(want, v)
			}
		}
		out := slices.Clone(in)
		got, err := inParts(out, func(lo, hi int) (int, error) {
			k := lo
			for _, v := range in[lo:hi] {
				if v%3 != 1 {
					out[k] = v
					k++
				}
			}
			return k - lo, nil
		})
		require.NoError(t, err)
		require.Equal(t, want, out[:got], "n=%d", n)
	}
	boom := errors.New("boom")
	_, err := inParts(make([]int, 100), func(lo, _ int) (int, error) {
		if lo >= 50 {
			return 0, boom
		}
		return 0, nil
	})
	require.ErrorIs(t, err, boom)
}

// TestSeries_ReadInParts checks that a read split over parts answers
// exactly as one in a single part: Series and SelectSeries, over series
// with chunks in and out of the range, persisted ones and a deletion.
func TestSeries_ReadInParts(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	var early, late []*arguspb.TimeSeries
	for i := range 300 {
		lset := []string{"__name__", fmt.Sprintf("m_%d", i%7), "instance", fmt.Sprintf("host-%03d", i), "job", "app"}
		early = append(early, ts(lset, seq(int64(i), 1000, 20)...))
		if i%4 != 0 {
			late = append(late, ts(lset, seq(100_000+int64(i), 1000, 10)...))
		}
	}
	push(t, ing, "t1", early...)
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	flushTenants(t, ing, cutIdleChunks)
	push(t, ing, "t1", late...)

	all := []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "job", "app")}
	reqs := map[string]*arguspb.SeriesRequest{
		"everything":    {MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64, Matchers: all},
		"late only":     {MinTimeMs: 100_000, MaxTimeMs: 200_000, Matchers: all},
		"some metrics":  {MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "__name__", "m_[135]")}},
		"skip chunks":   {MinTimeMs: 100_000, MaxTimeMs: 200_000, Matchers: all, SkipChunks: true},
		"nothing there": {MinTimeMs: 50_000, MaxTimeMs: 60_000, Matchers: all},
	}
	read := func(req *arguspb.SeriesRequest) map[string][]sample {
		return decodeSeries(t, querySeries(t, ing, "t1", req))
	}
	check := func(t *testing.T) {
		whole := map[string]map[string][]sample{}
		for name, req := range reqs {
			whole[name] = read(req)
		}
		splitReads(t, 16)
		for name, req := range reqs {
			require.Equal(t, whole[name], read(req), name)
			if len(whole[name]) > 0 { // Else it refuses a vacuous comparison.
				requireSelectLikeSeries(t, ing, "t1", req)
			}
		}
		require.Len(t, whole["everything"], 300)
		require.Empty(t, whole["nothing there"])
	}
	t.Run("head and store", check)
	_, err := ing.AdminServer().DeleteSeries(tenantCtx("t1"), &arguspb.DeleteSeriesRequest{MinTimeMs: 100_000, MaxTimeMs: 150_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "m_2")}})
	require.NoError(t, err)
	t.Run("with tombstones", check)
}
