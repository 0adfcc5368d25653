package ingester

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// A series with native histograms keeps its samples in chunkenc chunks,
// which out-of-order merges do not rewrite: with a window, an older sample
// of such a series is still refused as out of order, a retry of its newest
// is accepted, and flushes up to the out-of-order floor persist both its
// XOR and its histogram chunks (dropFinishedLocked counts them apart).
func TestHistograms_OutOfOrderWindow(t *testing.T) {
	ing := oooIngester(t, testConfig(t, t.TempDir()), time.Hour)
	lbls := []string{"__name__", "h"}
	floats := []anySample{{t: 1000, f: 1}, {t: 2000, f: 2}}
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, floats...)).RejectedSamples)
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 3000, h: expHistogram(1)}, anySample{t: 4000, h: expHistogram(2)})).RejectedSamples)
	want, _ := queryAny(t, ing, "t1")

	resp := push(t, ing, "t1", histTS(t, lbls, anySample{t: 2500, f: 7}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	resp = push(t, ing, "t1", histTS(t, lbls, anySample{t: 3500, h: expHistogram(3)}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 4000, h: expHistogram(2)})).RejectedSamples)
	got, _ := queryAny(t, ing, "t1")
	require.Equal(t, want, got)

	// Far newer samples move the floor past every chunk: all are persisted once.
	late := int64(5 * 3600_000)
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: late, h: expHistogram(4)})).RejectedSamples)
	want, _ = queryAny(t, ing, "t1")
	flushTenants(t, ing, cutIdleChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)
	ing = restart(t, ing)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)
}
