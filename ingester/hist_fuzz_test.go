package ingester

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeHistogram feeds arbitrary bytes to the ingester's histogram
// decoder: it must never panic, and a histogram it accepts must append to
// a series' chunks (twice, the second one later) and read back with the
// same count, sum and buckets (its String: what the HTTP API shows).
func FuzzDecodeHistogram(f *testing.F) {
	for _, ph := range []prompb.Histogram{
		prompb.FromIntHistogram(1000, expHistogram(60)),
		prompb.FromFloatHistogram(1000, expHistogram(3).ToFloat(nil)),
		prompb.FromIntHistogram(1000, nhcb(4)),
		prompb.FromFloatHistogram(1000, nhcb(2).ToFloat(nil)),
		prompb.FromIntHistogram(1000, &histogram.Histogram{Schema: 12, Count: 3, Sum: 1,
			PositiveSpans: []histogram.Span{{Offset: 5, Length: 2}}, PositiveBuckets: []int64{1, 1}}),
	} {
		b, err := ph.Marshal()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		hs, err := decodeHistogram(raw)
		if err != nil {
			return
		}
		s := &memSeries{}
		want := hs
		if hs.h != nil {
			want.h = hs.h.Copy()
		} else {
			want.fh = hs.fh.Copy()
		}
		s.appendAnyLocked(hs.t, 0, hs.h, hs.fh, 0)
		s.appendAnyLocked(hs.t+1, 0, want.h, want.fh, 0) // The same value again: appended to the chunk.
		var n int
		for _, c := range s.hist.appendChunks(nil, new([]byte), hs.t, hs.t+1) {
			ch, err := chunkenc.FromData(c.Encoding, c.Data)
			require.NoError(t, err)
			it := ch.Iterator(nil)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				switch vt {
				case chunkenc.ValHistogram:
					_, h := it.AtHistogram(nil)
					require.Equal(t, want.h.String(), h.String())
				case chunkenc.ValFloatHistogram:
					_, fh := it.AtFloatHistogram(nil)
					require.Equal(t, want.fh.String(), fh.String())
				default:
					t.Fatalf("a %s sample", vt)
				}
				n++
			}
			require.NoError(t, it.Err())
		}
		require.Equal(t, 2, n)
	})
}
