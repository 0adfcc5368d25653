package ingester

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestSeries_RankSortedRead checks the reads of more than rankMinSeries
// series, which sort the head's series by their label ranks (order.go)
// rather than by labels, for exact results: the series, their order and
// their samples, through Series and SelectSeries, over series in the head
// only, in the chunk store only and in both. The series are created in an
// order unlike their label order (refs follow creation), so that sorting by
// ref would be caught.
func TestSeries_RankSortedRead(t *testing.T) {
	const n = 2*rankMinSeries + 100
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	lbls := func(k int) []string {
		return []string{"__name__", "m" + strconv.Itoa(k%3), "i", strconv.Itoa(k), "job", "j" + strconv.Itoa(k%2)}
	}
	want := map[string][]sample{}
	created := n
	pushAll := func(keep func(k int) bool, samples ...sample) {
		var tss []*arguspb.TimeSeries
		for j := range n {
			k := (j * 7919) % n // Not label order, nor its reverse.
			if !keep(k) {
				continue
			}
			tss = append(tss, ts(lbls(k), samples...))
			want[lstr(lbls(k)...)] = append(want[lstr(lbls(k)...)], samples...)
			if len(tss) == 500 {
				push(t, ing, "t1", tss...)
				tss = nil
			}
		}
		push(t, ing, "t1", tss...)
	}
	all := func(int) bool { return true }
	pushAll(all, seq(0, 1000, 3)...)
	// Every fifth series goes idle, and its chunk to the store only; the
	// others' first chunks are persisted and stay in the head too.
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	pushAll(func(k int) bool { return k%5 != 0 }, seq(200_000, 1000, 3)...)
	flushTenants(t, ing, cutIdleChunks)
	flushTenants(t, ing, keepOpenChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))
	pushAll(func(k int) bool { return k%5 != 0 }, seq(400_000, 1000, 2)...)

	everything := []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "__name__", ".+")}
	oneJob := []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "job", "j1")}
	check := func(t *testing.T, ms []*arguspb.LabelMatcher, keep func(lset labels.Labels) bool) {
		t.Helper()
		wantHere := map[string][]sample{}
		var order []labels.Labels
		for k := range created {
			lset := labels.FromStrings(lbls(k)...)
			if keep(lset) {
				wantHere[lset.String()] = want[lset.String()]
				order = append(order, lset)
			}
		}
		slices.SortFunc(order, labels.Compare)
		req := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: ms}
		got := querySeries(t, ing, "t1", req)
		require.Len(t, got, len(order))
		for k := range got {
			require.Equal(t, order[k].String(), labelsString(got[k].Labels), "series %d", k)
		}
		requireSamples(t, wantHere, decodeSeries(t, got))
		requireSelectLikeSeries(t, ing, "t1", req)
	}
	allSeries := func(labels.Labels) bool { return true }
	inJob1 := func(l labels.Labels) bool { return l.Get("job") == "j1" }

	h := ing.getTenant("t1")
	require.Nil(t, h.series.ranks.cur.Load(), "no ranks before a read of many series")
	t.Run("every series, ranks built", func(t *testing.T) { check(t, everything, allSeries) })
	require.NotNil(t, h.series.ranks.cur.Load(), "the read did not build ranks")
	t.Run("half the series, ranked", func(t *testing.T) { check(t, oneJob, inJob1) })

	// A few series created since the build have no rank: the read sorts
	// by labels and must still be exact.
	for k := n; k < n+10; k++ {
		push(t, ing, "t1", ts(lbls(k), sample{500_000, float64(k)}))
		want[lstr(lbls(k)...)] = []sample{{500_000, float64(k)}}
	}
	created = n + 10
	t.Run("some unranked", func(t *testing.T) { check(t, everything, allSeries) })
}
