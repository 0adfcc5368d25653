package ingester

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// anySample is a sample of any type for the histogram tests: f, h or fh.
type anySample struct {
	t  int64
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// String formats s with its histogram compacted: a chunk may hold a
// histogram with extra empty buckets (recoded), which is the same value.
func (s anySample) String() string {
	switch {
	case s.h != nil:
		return fmt.Sprintf("%d h %s hint=%d", s.t, s.h.Copy().Compact(0), s.h.CounterResetHint)
	case s.fh != nil:
		return fmt.Sprintf("%d fh %s", s.t, s.fh.Copy().Compact(0))
	}
	return fmt.Sprintf("%d f %g", s.t, s.f)
}

// expHistogram returns a growing counter histogram: observation i of an
// exponential histogram of schema 0, with buckets appearing over time.
func expHistogram(i int) *histogram.Histogram {
	n := uint64(i + 1)
	h := &histogram.Histogram{Schema: 0, ZeroThreshold: 0.001, ZeroCount: n, Count: 2 * n, Sum: float64(3 * i)}
	h.PositiveSpans = []histogram.Span{{Offset: 0, Length: 1}}
	h.PositiveBuckets = []int64{int64(n)}
	if i >= 50 { // A new bucket: the chunk is recoded.
		h.PositiveSpans = []histogram.Span{{Offset: 0, Length: 1}, {Offset: 2, Length: 1}}
		h.PositiveBuckets = []int64{int64(n), int64(i-49) - int64(n)}
		h.Count = 2*n + uint64(i-49)
	}
	return h
}

// nhcb returns a custom-buckets histogram with 3 bounds.
func nhcb(i int) *histogram.Histogram {
	n := uint64(i)
	return &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 3 * n, Sum: float64(i) * 1.5,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []int64{int64(n), 0, 0},
		CustomValues:    []float64{0.1, 1, 10},
	}
}

// histTS returns a series of lbls with the samples smps (floats in
// Samples, histograms marshalled in Histograms).
func histTS(t testing.TB, lbls []string, smps ...anySample) *arguspb.TimeSeries {
	out := ts(lbls)
	for _, s := range smps {
		var ph prompb.Histogram
		switch {
		case s.h != nil:
			ph = prompb.FromIntHistogram(s.t, s.h)
		case s.fh != nil:
			ph = prompb.FromFloatHistogram(s.t, s.fh)
		default:
			out.Samples = append(out.Samples, &arguspb.Sample{TimestampMs: s.t, Value: s.f})
			continue
		}
		b, err := ph.Marshal()
		require.NoError(t, err)
		out.Histograms = append(out.Histograms, b)
	}
	return out
}

// queryAny returns every sample of tenant, of any type, formatted, by
// label string, and the chunk encodings seen.
func queryAny(t testing.TB, ing *Ingester, tenantID string) (map[string][]string, map[arguspb.ChunkEncoding]int) {
	t.Helper()
	ss := querySeries(t, ing, tenantID, &arguspb.SeriesRequest{MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: ".+"}}})
	out, encs := map[string][]string{}, map[arguspb.ChunkEncoding]int{}
	for _, s := range ss {
		b := labels.NewScratchBuilder(len(s.Labels))
		for _, l := range s.Labels {
			b.Add(l.Name, l.Value)
		}
		key := b.Labels().String()
		lastMax := int64(math.MinInt64)
		for _, c := range s.Chunks {
			encs[c.Encoding]++
			require.Greater(t, c.MinTimeMs, lastMax, "chunks overlap in %s", key)
			lastMax = c.MaxTimeMs
			e := map[arguspb.ChunkEncoding]chunkenc.Encoding{
				arguspb.ChunkEncoding_CHUNK_ENCODING_XOR:             chunkenc.EncXOR,
				arguspb.ChunkEncoding_CHUNK_ENCODING_HISTOGRAM:       chunkenc.EncHistogram,
				arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM: chunkenc.EncFloatHistogram,
			}[c.Encoding]
			ch, err := chunkenc.FromData(e, c.Data)
			require.NoError(t, err)
			it := ch.Iterator(nil)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				var smp anySample
				switch vt {
				case chunkenc.ValFloat:
					smp.t, smp.f = it.At()
				case chunkenc.ValHistogram:
					smp.t, smp.h = it.AtHistogram(nil)
					smp.h.CounterResetHint = histogram.UnknownCounterReset // Depends on chunking; promql compares in e2e.
				case chunkenc.ValFloatHistogram:
					smp.t, smp.fh = it.AtFloatHistogram(nil)
				}
				require.GreaterOrEqual(t, smp.t, c.MinTimeMs)
				require.LessOrEqual(t, smp.t, c.MaxTimeMs)
				out[key] = append(out[key], smp.String())
			}
			require.NoError(t, it.Err())
		}
	}
	return out, encs
}

func TestHistograms_PushQueryRestartPersist(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	exp := []string{"__name__", "exp", "job", "test"}
	flt := []string{"__name__", "flt", "job", "test"}
	cb := []string{"__name__", "cb", "job", "test"}
	mixed := []string{"__name__", "mixed", "job", "test"}
	want := map[string][]string{}
	add := func(lbls []string, s anySample) anySample {
		k := labels.FromStrings(lbls...).String()
		c := s
		if c.h != nil {
			c.h = c.h.Copy()
			c.h.CounterResetHint = histogram.UnknownCounterReset
		}
		want[k] = append(want[k], c.String())
		return s
	}
	const step = 60_000    // 300 samples: 5 hours, so chunks cut on 2h ranges too
	for round := range 6 { // 50 minutes a round: within the head's 1h window
		var tss []*arguspb.TimeSeries
		var e, f, c, m []anySample
		for i := round * 50; i < (round+1)*50; i++ {
			tm := int64(i) * step
			h := expHistogram(i)
			if i == 150 { // A counter reset: a new chunk.
				h = expHistogram(0)
			}
			e = append(e, add(exp, anySample{t: tm, h: h}))
			f = append(f, add(flt, anySample{t: tm, fh: expHistogram(i).ToFloat(nil)}))
			c = append(c, add(cb, anySample{t: tm, h: nhcb(i)}))
			switch { // Floats, then histograms, then floats again.
			case i < 80 || i >= 220:
				m = append(m, add(mixed, anySample{t: tm, f: float64(i)}))
			default:
				m = append(m, add(mixed, anySample{t: tm, h: nhcb(i)}))
			}
		}
		// The mixed series sends its floats and its histograms apart, in
		// order: floats first in a push go before its histograms.
		var mf, mh []anySample
		for _, s := range m {
			if s.h == nil && len(mh) == 0 {
				mf = append(mf, s)
			} else {
				mh = append(mh, s)
			}
		}
		require.Zero(t, push(t, ing, "t1", histTS(t, mixed, mf...)).RejectedSamples)
		for _, s := range mh { // One by one: histograms then floats of one series.
			r := push(t, ing, "t1", histTS(t, mixed, s))
			require.Zero(t, r.RejectedSamples, "%v", r.Rejected)
		}
		tss = append(tss, histTS(t, exp, e...), histTS(t, flt, f...), histTS(t, cb, c...))
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
	}
	got, encs := queryAny(t, ing, "t1")
	require.Equal(t, want, got)
	require.Positive(t, encs[arguspb.ChunkEncoding_CHUNK_ENCODING_HISTOGRAM])
	require.Positive(t, encs[arguspb.ChunkEncoding_CHUNK_ENCODING_FLOAT_HISTOGRAM])
	require.Positive(t, encs[arguspb.ChunkEncoding_CHUNK_ENCODING_XOR])

	// kill -9: the WAL brings every sample back.
	ing = restart(t, ing)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)

	// Persisted (cut and flushed), then restarted: read back from the DB.
	flushTenants(t, ing, cutIdleChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)
	truncateTenants(t, ing)
	ing = restart(t, ing)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)
}

func TestHistograms_Rejections(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	lbls := []string{"__name__", "h"}
	h1, h2 := expHistogram(1), expHistogram(2)
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 1000, h: h1}, anySample{t: 2000, h: h2})).RejectedSamples)

	// A retry of the same histogram is accepted and stored once.
	require.Zero(t, push(t, ing, "t1", histTS(t, lbls, anySample{t: 2000, h: expHistogram(2)})).RejectedSamples)
	// Another histogram at the same time is a duplicate; an older one out of order.
	resp := push(t, ing, "t1", histTS(t, lbls, anySample{t: 2000, h: expHistogram(3)}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
	resp = push(t, ing, "t1", histTS(t, lbls, anySample{t: 1500, h: expHistogram(3)}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
	// A float at the time of the last histogram is a duplicate too.
	resp = push(t, ing, "t1", histTS(t, lbls, anySample{t: 2000, f: 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)

	// Histograms that do not decode or are inconsistent: refused, the rest kept.
	bad := expHistogram(4)
	bad.Count = 1
	in := histTS(t, lbls, anySample{t: 3000, h: bad}, anySample{t: 4000, h: expHistogram(4)})
	in.Histograms = append(in.Histograms, []byte{0xff, 0xff})
	resp = push(t, ing, "t1", in)
	require.Equal(t, int64(2), resp.RejectedSamples)
	require.Contains(t, resp.Rejected[0].Message, "invalid native histogram: 2 samples")

	got, _ := queryAny(t, ing, "t1")
	want := []string{
		anySample{t: 1000, h: h1}.String(),
		anySample{t: 2000, h: withHint(h2, histogram.UnknownCounterReset)}.String(),
		anySample{t: 4000, h: withHint(expHistogram(4), histogram.UnknownCounterReset)}.String(),
	}
	require.Equal(t, map[string][]string{`{__name__="h"}`: want}, got)
}

func withHint(h *histogram.Histogram, hint histogram.CounterResetHint) *histogram.Histogram {
	h.CounterResetHint = hint
	return h
}

// TestHistograms_CheckpointReplay truncates the WAL while histogram chunks
// are open (their samples only in memory and the WAL): the checkpoint keeps
// the histogram records, and a crash after more pushes brings every sample
// back once, histograms and floats of a series that switched types.
func TestHistograms_CheckpointReplay(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	lbls := []string{"__name__", "cp", "job", "test"}
	flt := []string{"__name__", "cpf", "job", "test"}
	want := map[string][]string{}
	push1 := func(from, to int) {
		var hs, fs []anySample
		for i := from; i < to; i++ {
			hs = append(hs, anySample{t: int64(i) * 15_000, h: expHistogram(i)})
			s := anySample{t: int64(i) * 15_000, fh: nhcb(i + 1).ToFloat(nil)}
			if i%40 >= 20 {
				s = anySample{t: s.t, f: float64(i)}
			}
			fs = append(fs, s)
		}
		// One series per push carries floats then histograms; here a
		// push per type run keeps time order.
		require.Zero(t, push(t, ing, "t1", histTS(t, lbls, hs...)).RejectedSamples)
		for k := 0; k < len(fs); {
			j := k
			for j < len(fs) && (fs[j].fh == nil) == (fs[k].fh == nil) {
				j++
			}
			require.Zero(t, push(t, ing, "t1", histTS(t, flt, fs[k:j]...)).RejectedSamples)
			k = j
		}
		for _, s := range hs {
			c := s
			c.h = s.h.Copy()
			c.h.CounterResetHint = histogram.UnknownCounterReset
			want[labels.FromStrings(lbls...).String()] = append(want[labels.FromStrings(lbls...).String()], c.String())
		}
		for _, s := range fs {
			want[labels.FromStrings(flt...).String()] = append(want[labels.FromStrings(flt...).String()], s.String())
		}
	}
	push1(0, 100)
	truncateTenants(t, ing) // Checkpoints the open chunks' samples.
	require.Positive(t, checkpointRecords(t, ing)[record.HistogramSamples])
	require.Positive(t, checkpointRecords(t, ing)[record.CustomBucketsFloatHistogramSamples])
	push1(100, 160)
	got, _ := queryAny(t, ing, "t1")
	require.Equal(t, want, got)
	ing = restart(t, ing)
	got, _ = queryAny(t, ing, "t1")
	require.Equal(t, want, got)
}

// checkpointRecords counts the records of the WAL's last checkpoint by type.
func checkpointRecords(t *testing.T, ing *Ingester) map[record.Type]int {
	t.Helper()
	dir, _, err := wlog.LastCheckpoint(filepath.Join(ing.cfg.Dir, walDirName))
	require.NoError(t, err)
	sr, err := wlog.NewSegmentsReader(dir)
	require.NoError(t, err)
	defer sr.Close()
	var dec record.Decoder
	out := map[record.Type]int{}
	for r := wlog.NewReader(sr); r.Next(); {
		out[dec.Type(r.Record())]++
	}
	return out
}

// TestHistograms_ConcurrentPushAndQuery reads histogram series while they
// are appended to, cut and flushed (run with -race): every read sees a
// prefix of the samples, in order.
func TestHistograms_ConcurrentPushAndQuery(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := startIngester(t, cfg)
	lbls := []string{"__name__", "conc"}
	const n = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if r := push(t, ing, "t1", histTS(t, lbls, anySample{t: int64(i) * 15_000, h: expHistogram(i)})); r.RejectedSamples != 0 {
				t.Errorf("rejected: %v", r.Rejected)
				return
			}
			if i%50 == 0 {
				flushTenants(t, ing, cutIdleChunks)
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		got, _ := queryAny(t, ing, "t1")
		for k, s := range got[`{__name__="conc"}`] {
			h := expHistogram(k)
			h.CounterResetHint = histogram.UnknownCounterReset
			require.Equal(t, anySample{t: int64(k) * 15_000, h: h}.String(), s)
		}
	}
	got, _ := queryAny(t, ing, "t1")
	require.Len(t, got[`{__name__="conc"}`], n)
}

// TestHistograms_TypeChangesWithinOnePush pushes, in one request, series
// whose samples change type against the order of the WAL's record types:
// a series' histograms then (in a later entry of the request) its floats,
// and float histograms then integer ones, custom buckets between. They are
// logged in acceptance order, and every sample comes back after a crash.
func TestHistograms_TypeChangesWithinOnePush(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	req := []*arguspb.TimeSeries{
		histTS(t, a, anySample{t: 1000, h: expHistogram(1)}, anySample{t: 2000, h: expHistogram(2)}),
		histTS(t, b, anySample{t: 1000, fh: expHistogram(1).ToFloat(nil)}, anySample{t: 2000, h: nhcb(2)},
			anySample{t: 3000, h: expHistogram(3)}, anySample{t: 4000, fh: nhcb(4).ToFloat(nil)}),
		histTS(t, a, anySample{t: 3000, f: 3}, anySample{t: 4000, f: 4}),
	}
	require.Zero(t, push(t, ing, "t1", req...).RejectedSamples)
	want, _ := queryAny(t, ing, "t1")
	require.Len(t, want[`{__name__="a"}`], 4)
	require.Len(t, want[`{__name__="b"}`], 4)
	ing = restart(t, ing)
	got, _ := queryAny(t, ing, "t1")
	require.Equal(t, want, got)
}
