package ingester

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestHistograms_OutOfOrderWindow: with a window, a series with native
// histograms takes older floats and histograms after its XOR chunks,
// merged by rebuilding its chunks (hist_ooo.go): it ends holding what an
// in-order push of the same samples holds, in memory, after kill -9 and
// replay, and once persisted. A sample among its XOR chunks (before its
// first histogram) is still refused as out of order; a retry is accepted
// and stored once; another histogram at a stored time is a duplicate.
func TestHistograms_OutOfOrderWindow(t *testing.T) {
	ing := oooIngester(t, testConfig(t, t.TempDir()), time.Hour)
	ref := oooIngester(t, testConfig(t, t.TempDir()), time.Hour)
	lbls := []string{"__name__", "h"}
	var inOrder, late []anySample
	for k := range 300 {
		smp := anySample{t: int64(3000 + 1000*k), h: expHistogram(k)}
		if k%3 == 1 {
			late = append(late, smp)
		} else {
			inOrder = append(inOrder, smp)
		}
	}
	floats := []anySample{{t: 1000, f: 1}, {t: 2000, f: 2}}
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, append(floats, inOrder...)...)).RejectedSamples)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(late), func(i, j int) { late[i], late[j] = late[j], late[i] })
	for k := 0; k < len(late); k += 7 {
		require.Zero(t, push(t, ing, "t1", histTS(t, lbls, late[k:min(k+7, len(late))]...)).RejectedSamples)
	}
	between := anySample{t: 2500, f: 7} // After the XOR chunks: merged.
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, between)).RejectedSamples)

	resp := push(t, ing, "t1", histTS(t, lbls, anySample{t: 1500, f: 7})) // Among the XOR chunks.
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, late[0], between)).RejectedSamples, "a retry")
	resp = push(t, ing, "t1", histTS(t, lbls, anySample{t: late[1].t, h: expHistogram(999)}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)

	all := append(append(append([]anySample{}, floats...), between), inOrder...)
	all = append(all, late...)
	slices.SortFunc(all, func(a, b anySample) int { return cmp.Compare(a.t, b.t) })
	for _, smp := range all {
		require.Zero(t, push(t, ref, "t1", histTS(t, lbls, smp)).RejectedSamples)
	}
	want, _ := queryAny(t, ref, "t1")
	got, _ := queryAny(t, ing, "t1")
	require.Equal(t, want, got)

	ing = oooRestart(t, ing, time.Hour)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got, "after kill -9 and replay")

	// Far newer samples move the floor past every chunk: all are persisted once.
	newer := anySample{t: 5 * 3600_000, h: expHistogram(400)}
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, newer)).RejectedSamples)
	require.Zero(t, push(t, ref, "t1", histTS(t, lbls, newer)).RejectedSamples)
	want, _ = queryAny(t, ref, "t1")
	flushTenants(t, ing, cutIdleChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got, "persisted")
	ing = oooRestart(t, ing, time.Hour)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got, "persisted, after kill -9")
}

// TestHistograms_OutOfOrderNoWindow: without a window an older histogram
// is refused as out of order, and a retry of one in memory is accepted.
func TestHistograms_OutOfOrderNoWindow(t *testing.T) {
	ing := oooIngester(t, testConfig(t, t.TempDir()), 0)
	lbls := []string{"__name__", "h"}
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 1000, h: expHistogram(1)}, anySample{t: 3000, h: expHistogram(3)})).RejectedSamples)
	resp := push(t, ing, "t1", histTS(t, lbls, anySample{t: 2000, h: expHistogram(2)}, anySample{t: 2500, f: 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	require.Equal(t, int64(2), resp.Rejected[0].RejectedSamples)
	require.Equal(t, int64(1), resp.Rejected[0].RejectedHistograms, "the distributor's written headers count with it")
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 1000, h: expHistogram(1)})).RejectedSamples, "a retry")
}
