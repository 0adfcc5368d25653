package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// histChunk returns a chunk of encoding enc (XOR, histogram or float
// histogram) with a sample every step ms in [from, to), values derived
// from the time and seed.
func histChunk(t testing.TB, enc chunkenc.Encoding, from, to, step int64, seed int) Chunk {
	t.Helper()
	c, err := chunkenc.NewEmptyChunk(enc)
	require.NoError(t, err)
	app, err := c.Appender()
	require.NoError(t, err)
	for ts := from; ts < to; ts += step {
		n := uint64(ts/step) + uint64(seed)
		h := &histogram.Histogram{
			Schema: 1, ZeroThreshold: 0.001, ZeroCount: n, Count: 4 * n, Sum: float64(n) * 1.5,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}},
			PositiveBuckets: []int64{int64(n), 0, int64(n)}, // n, n, 2n: a new chunk never needed
		}
		h.Count = h.ZeroCount + 4*n
		switch enc {
		case chunkenc.EncHistogram:
			_, _, app, err = app.AppendHistogram(nil, 0, ts, h, true)
		case chunkenc.EncFloatHistogram:
			_, _, app, err = app.AppendFloatHistogram(nil, 0, ts, h.ToFloat(nil).Mul(0.5), true)
		default:
			app.Append(0, ts, float64(n))
		}
		require.NoError(t, err)
	}
	return Chunk{MinTime: from, MaxTime: to - step, Encoding: enc, Data: c.Bytes()}
}

// TestDBHistogramChunks stores native histogram chunks, integer and float,
// and a series whose chunks change encoding, through level-0 flushes,
// sealing into compressed level-1 parts (which transcode XOR chunks only)
// and the day's merge into level 2, and reads every chunk back with its
// encoding and exact bytes, before and after reopening. CheckDB (at
// cleanup) decodes every histogram chunk against its meta.
func TestDBHistogramChunks(t *testing.T) {
	db, dir := newTestDB(t, DBOptions{})
	ctx := context.Background()
	encs := []chunkenc.Encoding{chunkenc.EncHistogram, chunkenc.EncFloatHistogram, chunkenc.EncXOR}
	want := map[string][]Chunk{}
	for h := int64(0); h < 50; h++ {
		var batch []Series
		for i := range 4 {
			lset := labels.FromStrings("__name__", "hist", "i", fmt.Sprint(i))
			s := Series{Labels: lset}
			for half := int64(0); half < 2; half++ {
				from := h*hourMs + half*hourMs/2
				enc := encs[i%3]
				if i == 3 { // Mixed: the encoding changes every half hour.
					enc = encs[(h*2+half)%3]
				}
				s.Chunks = append(s.Chunks, histChunk(t, enc, from, from+hourMs/2, 60_000, i))
			}
			want[lset.String()] = append(want[lset.String()], s.Chunks...)
			batch = append(batch, s)
		}
		require.NoError(t, db.Append("a", batch))
		require.NoError(t, db.Compact(ctx, h*hourMs))
	}
	require.NoError(t, db.Compact(ctx, 50*hourMs))
	levels := map[int]int{}
	for _, p := range db.Partitions() {
		levels[p.Level]++
	}
	require.Equal(t, map[int]int{1: 1, 2: 2}, levels)
	check := func(db *DB) {
		t.Helper()
		got, err := db.Select("a", all[0], all[1], SelectOptions{}, labels.MustNewMatcher(labels.MatchEqual, "__name__", "hist"))
		require.NoError(t, err)
		require.Len(t, got, 4)
		for _, s := range got {
			w := want[s.Labels.String()]
			require.Len(t, s.Chunks, len(w), "%s", s.Labels)
			for k := range w {
				require.Equal(t, w[k], s.Chunks[k], "%s chunk %d", s.Labels, k)
			}
		}
	}
	check(db)
	require.NoError(t, db.Close())
	check(openTestDB(t, dir, DBOptions{}))
}

// samplesOf formats the samples of chunks, for comparisons.
func samplesOf(t testing.TB, chks ...Chunk) []string {
	t.Helper()
	var out []string
	for _, c := range chks {
		ss, err := appendAnySamples(nil, c)
		require.NoError(t, err)
		for _, s := range ss {
			switch {
			case s.h != nil:
				out = append(out, fmt.Sprintf("%d h %s", s.t, s.h))
			case s.fh != nil:
				out = append(out, fmt.Sprintf("%d fh %s", s.t, s.fh))
			default:
				out = append(out, fmt.Sprintf("%d f %g", s.t, s.v))
			}
		}
	}
	return out
}

// TestHistogramChunkRewrites deletes samples inside histogram chunks and
// merges overlapping chunks of mixed encodings: the samples left are
// exactly the expected ones, in chunks of their own encoding.
func TestHistogramChunkRewrites(t *testing.T) {
	for _, enc := range []chunkenc.Encoding{chunkenc.EncHistogram, chunkenc.EncFloatHistogram} {
		c := histChunk(t, enc, 0, 600_000, 60_000, 1) // 10 samples
		all := samplesOf(t, c)
		out, n, dropped, err := ChunkWithout(c, func(ts int64) bool { return ts == 120_000 || ts == 540_000 })
		require.NoError(t, err)
		require.Equal(t, 8, n)
		require.True(t, dropped)
		require.Equal(t, enc, out.Encoding)
		require.Equal(t, int64(0), out.MinTime)
		require.Equal(t, int64(480_000), out.MaxTime)
		want := append(append([]string{}, all[:2]...), all[3:9]...)
		require.Equal(t, want, samplesOf(t, out))

		kept, res, err := trimChunk(c, intervals{{mint: 0, maxt: 60_000}})
		require.NoError(t, err)
		require.Equal(t, chunkTrimmed, res)
		require.Equal(t, all[2:], samplesOf(t, kept))
	}

	// Two sources overlap: floats then histograms in one, histograms in the
	// other; on equal times the later source wins.
	a := []taggedChunk{
		{Chunk: histChunk(t, chunkenc.EncXOR, 0, 300_000, 60_000, 0), src: 0},
		{Chunk: histChunk(t, chunkenc.EncHistogram, 300_000, 600_000, 60_000, 0), src: 0},
		{Chunk: histChunk(t, chunkenc.EncHistogram, 240_000, 420_000, 60_000, 5), src: 1},
	}
	var want []string
	want = append(want, samplesOf(t, a[0].Chunk)[:4]...) // 0..180s floats
	want = append(want, samplesOf(t, a[2].Chunk)...)     // 240..360s from source 1
	want = append(want, samplesOf(t, a[1].Chunk)[2:]...) // 420..540s
	got, err := mergeChunks(a, true)
	require.NoError(t, err)
	require.Equal(t, want, samplesOf(t, got...))
	require.Equal(t, chunkenc.EncXOR, got[0].Encoding)
	for k := 1; k < len(got); k++ {
		require.Greater(t, got[k].MinTime, got[k-1].MaxTime)
		require.Equal(t, chunkenc.EncHistogram, got[k].Encoding)
	}
}
