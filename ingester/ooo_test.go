package ingester

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// windowLimits gives every tenant the out-of-order window w and no series
// limits.
type windowLimits struct{ l limits.Limits }

func (w *windowLimits) For(string) *limits.Limits { return &w.l }

func oooIngester(t *testing.T, cfg Config, window time.Duration, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	return startIngesterDeps(t, cfg, Deps{Limits: &windowLimits{limits.Limits{OutOfOrderTimeWindow: window}}, Registerer: prometheus.NewRegistry()}, opts...)
}

func oooRestart(t *testing.T, ing *Ingester, window time.Duration, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	cfg := ing.cfg
	cfg.Dir = crash(t, ing)
	return oooIngester(t, cfg, window, opts...)
}

// requireSeriesInvariants checks the chunks of s in memory: sorted, not
// overlapping, within one 2h range and samplesPerChunk each, their bounds
// exact, and returns their samples.
func requireSeriesInvariants(t *testing.T, s *memSeries) []oooSample {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []oooSample
	check := func(data []byte, minT, maxT int64) {
		smps := decodeXOR(nil, data)
		require.NotEmpty(t, smps)
		require.LessOrEqual(t, len(smps), samplesPerChunk)
		require.Equal(t, minT, smps[0].t)
		require.Equal(t, maxT, smps[len(smps)-1].t)
		require.Equal(t, chunkIndex(minT), chunkIndex(maxT), "chunk crosses a 2h range")
		if len(all) > 0 {
			require.Greater(t, minT, all[len(all)-1].t, "chunks overlap")
		}
		for k := 1; k < len(smps); k++ {
			require.Greater(t, smps[k].t, smps[k-1].t)
		}
		all = append(all, smps...)
	}
	for c := s.finished; c != nil; c = c.next {
		require.Equal(t, len(c.data), cap(c.data), "finished chunk with spare capacity")
		check(c.data, c.minT, c.maxT)
	}
	if s.open != nil {
		require.Equal(t, int(binary.BigEndian.Uint16(s.open)), len(decodeXOR(nil, s.open)))
		check(s.open, s.openMinTLocked(), s.xor.t)
	}
	return all
}

// TestMergeLocked merges shuffled samples into a series one push at a time
// (some in order, most not) and checks the chunks against a sorted model
// after each, and that appending in order still works afterwards.
func TestMergeLocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		s := newMemSeries(1, "", math.MinInt64, 0)
		model := map[int64]float64{}
		// Timestamps over 5 hours, spanning 2h ranges, some sparse some dense.
		var ts []int64
		for t := int64(0); t < 5*3600_000; t += 15_000 + int64(rng.IntN(3))*1000 {
			ts = append(ts, t)
		}
		if round%3 != 1 {
			rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		} else { // Nearly sorted: samples a few scrapes late, merged into the open chunk.
			for i := range ts {
				j := min(i+rng.IntN(4), len(ts)-1)
				ts[i], ts[j] = ts[j], ts[i]
			}
		}
		var buf []oooSample
		for len(ts) > 0 {
			n := min(len(ts), 1+rng.IntN(40))
			if round%3 == 1 {
				n = min(len(ts), 1+rng.IntN(3))
			}
			if round%3 == 2 && len(model) > 200 {
				n = 1 // Single samples into whatever chunk holds them.
			}
			batch := ts[:n]
			ts = ts[n:]
			var smps []record.RefSample
			for _, t := range batch {
				v := rng.Float64()
				model[t] = v
				smps = append(smps, record.RefSample{Ref: 1, T: t, V: v})
			}
			s.mu.Lock()
			s.appendMixedLocked(smps, 0, &buf)
			s.mu.Unlock()
		}
		got := requireSeriesInvariants(t, s)
		require.Len(t, got, len(model), "round %d", round)
		for _, x := range got {
			require.Equal(t, math.Float64bits(model[x.t]), math.Float64bits(x.v))
		}
		// In-order appends continue the open chunk.
		last := got[len(got)-1].t
		s.mu.Lock()
		for k := range 200 {
			s.appendLocked(last+int64(k+1)*1000, float64(k), 0)
		}
		s.mu.Unlock()
		require.Len(t, requireSeriesInvariants(t, s), len(model)+200)
	}
}

// TestSplitChunks checks the cut of merged samples: balanced, at most
// samplesPerChunk, never across a 2h range.
func TestSplitChunks(t *testing.T) {
	mk := func(start, n int64) []oooSample {
		var out []oooSample
		for k := range n {
			out = append(out, oooSample{start + k, 0})
		}
		return out
	}
	sizes := func(ps [][]oooSample) []int {
		var out []int
		for _, p := range ps {
			out = append(out, len(p))
		}
		return out
	}
	require.Equal(t, []int{120}, sizes(splitChunks(nil, mk(0, 120))))
	require.Equal(t, []int{60, 61}, sizes(splitChunks(nil, mk(0, 121))))
	require.Equal(t, []int{80, 80, 81}, sizes(splitChunks(nil, mk(0, 241))))
	// Across a 2h boundary: two groups.
	require.Equal(t, []int{10, 5}, sizes(splitChunks(nil, mk(chunkRangeMs-10, 15))))
}

// TestOOO_AcceptedInsideWindow pushes in-order samples, then shuffled older
// ones inside and outside the window, exact duplicates and conflicting
// values, and checks the answers and that every read sees one sorted series:
// in memory, after flushes, after a crash and replay, after a clean stop.
func TestOOO_AcceptedInsideWindow(t *testing.T) {
	const minute = int64(60_000)
	clock := &testClock{ms: 10 * 3600_000}
	withClock := func(i *Ingester) { i.now = clock.now }
	cfg := testConfig(t, t.TempDir())
	ing := oooIngester(t, cfg, 30*time.Minute, withClock)
	a := []string{"__name__", "a"}
	base := int64(10 * 3600_000)

	want := map[int64]float64{}
	var inOrder []sample
	for k := int64(0); k <= 60; k++ { // One sample a minute for an hour, the even minutes only.
		if k%2 == 0 {
			inOrder = append(inOrder, sample{base + k*minute, float64(k)})
			want[base+k*minute] = float64(k)
		}
	}
	require.Zero(t, push(t, ing, "t1", ts(a, inOrder...)).RejectedSamples)
	maxT := base + 60*minute

	// The odd minutes, shuffled: inside the window (>= maxT-30m) accepted,
	// outside it too old.
	var odd []sample
	for k := int64(1); k < 60; k += 2 {
		odd = append(odd, sample{base + k*minute, float64(k)})
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(odd), func(i, j int) { odd[i], odd[j] = odd[j], odd[i] })
	resp := push(t, ing, "t1", ts(a, odd...))
	outside := 0
	for _, s := range odd {
		if s.t >= maxT-30*minute {
			want[s.t] = s.v
		} else {
			outside++
		}
	}
	require.Equal(t, int64(outside), resp.RejectedSamples)
	require.Len(t, resp.Rejected, 1)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)
	require.Contains(t, resp.Rejected[0].Message, "out-of-order time window")

	// The same push again: the accepted ones are exact duplicates now.
	resp = push(t, ing, "t1", ts(a, odd...))
	require.Equal(t, int64(outside), resp.RejectedSamples)
	// Another value at a stored time, old or new.
	resp = push(t, ing, "t1", ts(a, sample{base + 45*minute, -1}, sample{base + 44*minute, -1}))
	require.Equal(t, int64(2), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)

	check := func(ing *Ingester, stage string) {
		t.Helper()
		var w []sample
		for t, v := range want {
			w = append(w, sample{t, v})
		}
		slices.SortFunc(w, func(x, y sample) int { return int(x.t - y.t) })
		requireSamples(t, map[string][]sample{lstr(a...): w}, queryAll(t, ing, "t1", 0, math.MaxInt64))
		h := ing.getTenant("t1")
		requireSeriesInvariants(t, h.series.getByLabels(labelsOf(a...)))
		_ = stage
	}
	check(ing, "memory")

	// Advance: chunks older than the window are flushed; the rest stays.
	var later []sample
	for k := int64(61); k <= 200; k++ {
		later = append(later, sample{base + k*minute, float64(k)})
		want[base+k*minute] = float64(k)
	}
	push(t, ing, "t1", ts(a, later...))
	flushTenants(t, ing, keepOpenChunks)
	require.Positive(t, storedChunks(t, ing, "t1"))
	h := ing.getTenant("t1")
	s := h.series.getByLabels(labelsOf(a...))
	s.mu.Lock()
	require.GreaterOrEqual(t, s.firstInMemoryLocked(), base+200*minute-30*minute-120*minute, "only the window (and its chunk) in memory")
	for c := s.finished; c != nil; c = c.next {
		require.Greater(t, c.maxT, h.oooFloor.Load())
	}
	s.mu.Unlock()
	check(ing, "flushed")

	// Out of order again, into chunks in memory, around the flushed ones.
	resp = push(t, ing, "t1", ts(a, sample{base + 170*minute + 30_000, 0.5}, sample{base + 199*minute + 1, 0.25}))
	require.Zero(t, resp.RejectedSamples)
	want[base+170*minute+30_000], want[base+199*minute+1] = 0.5, 0.25
	check(ing, "merged after flush")

	ing2 := oooRestart(t, ing, 30*time.Minute, withClock)
	check(ing2, "replayed")
	// Retries after the restart are still duplicates.
	require.Zero(t, push(t, ing2, "t1", ts(a, sample{base + 170*minute + 30_000, 0.5})).RejectedSamples)

	// Replay with the window turned off keeps what was accepted.
	ing3 := oooRestart(t, ing2, 0, withClock)
	check(ing3, "replayed without window")
	require.NoError(t, ing3.Stopping(t.Context()))
	ing4 := oooIngester(t, ing3.cfg, 30*time.Minute, withClock)
	check(ing4, "after a clean stop")
}

// TestOOO_WindowZero checks retries without a window: exact duplicates of
// samples in memory are accepted (in the open chunk and in finished ones),
// a new older sample is out of order, and so is one among the persisted
// samples, whose exact duplicates are accepted too.
func TestOOO_WindowZero(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := oooIngester(t, cfg, 0)
	a := []string{"__name__", "a"}
	first := seq(0, 1000, 200) // 120 in a finished chunk, 80 open.
	require.Zero(t, push(t, ing, "t1", ts(a, first...)).RejectedSamples)
	// The whole push again: every sample is a duplicate.
	require.Zero(t, push(t, ing, "t1", ts(a, first...)).RejectedSamples)
	// A partly landed push retried with more samples.
	more := append(slices.Clone(first[150:]), seq(200_000, 1000, 10)...)
	for k := range more[50:] {
		more[50+k].v = float64(200 + k)
	}
	require.Zero(t, push(t, ing, "t1", ts(a, more...)).RejectedSamples)
	// A new sample between two stored ones: out of order.
	resp := push(t, ing, "t1", ts(a, sample{500, 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)

	flushTenants(t, ing, keepOpenChunks) // The finished chunk leaves memory.
	require.Zero(t, push(t, ing, "t1", ts(a, first[:10]...)).RejectedSamples, "persisted samples are looked up (retry.go)")
	require.Zero(t, push(t, ing, "t1", ts(a, first[120:]...)).RejectedSamples, "the open chunk is still in memory")
	resp = push(t, ing, "t1", ts(a, sample{500, 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason, "a new sample among persisted ones")

	want := append(slices.Clone(first), more[50:]...)
	requireSamples(t, map[string][]sample{lstr(a...): want}, queryAll(t, ing, "t1", 0, math.MaxInt64))
}

// TestOOO_NewSeriesAndPersistedFloor checks that a sample of a recreated
// series is never merged at or before what it persisted.
func TestOOO_NewSeriesAndPersistedFloor(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ing := oooIngester(t, cfg, 2*time.Hour)
	a := []string{"__name__", "a"}
	b := []string{"__name__", "b"}
	// b's first push is out of order inside itself.
	resp := push(t, ing, "t1", ts(a, seq(0, 1000, 10)...), ts(b, sample{9000, 9}, sample{5000, 5}, sample{7000, 7}, sample{5000, 5}))
	require.Zero(t, resp.RejectedSamples)
	requireSamples(t, map[string][]sample{
		lstr(a...): seq(0, 1000, 10),
		lstr(b...): {{5000, 5}, {7000, 7}, {9000, 9}},
	}, queryAll(t, ing, "t1", 0, math.MaxInt64))
	// The same push with a conflicting value inside it.
	resp = push(t, ing, "t1", ts(b, sample{3000, 3}, sample{3000, 4}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, resp.Rejected[0].Reason)
	h := ing.getTenant("t1")
	floor := h.raiseFloorForFlush()
	require.Equal(t, int64(9000-2*3600_000-1), floor)
	h.oooFloor.Store(6000) // As if chunks up to 6000 were persisted.
	resp = push(t, ing, "t1", ts(b, sample{6000, 6}, sample{6500, 6.5}))
	require.Equal(t, int64(1), resp.RejectedSamples)
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, resp.Rejected[0].Reason)
}

// TestOOO_ConcurrentPushFlushQuery pushes out-of-order samples (every
// writer its own timestamps of the same series, shuffled, each push also
// moving the head forward) while other goroutines flush, truncate the WAL
// and query: reads never see overlapping chunks, flushes never persist a
// chunk a push still merges into (the DB refuses overlapping chunks, and
// the final read would show a lost or doubled sample), and the head, and a
// restart from a crash, hold exactly the acknowledged samples.
func TestOOO_ConcurrentPushFlushQuery(t *testing.T) {
	const (
		writers = 4
		rounds  = 150
		window  = 10 * time.Minute
	)
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = 2 * walPageSize
	ing := oooIngester(t, cfg, window)
	series := [][]string{{"__name__", "a"}, {"__name__", "b"}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	background, bctx := errgroup.WithContext(ctx)
	background.Go(func() error { return queryLoop(bctx, ing) })
	background.Go(func() error {
		for bctx.Err() == nil {
			if err := ing.truncateWAL(bctx); err != nil && bctx.Err() == nil {
				return err
			}
		}
		return nil
	})

	var mu sync.Mutex
	acked := map[string][]sample{}
	var writersGroup errgroup.Group
	for w := range writers {
		writersGroup.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for r := range rounds {
				// Round r moves time to r minutes; writer w's samples fall at
				// w, w+writers, ... seconds, spread back over the window.
				now := int64(r) * 60_000
				var tss []*arguspb.TimeSeries
				var smps []sample
				for range 3 {
					back := int64(rng.IntN(int(window.Seconds())-60)) / writers * writers
					t := now - (back+int64(w))*1000
					if t < 0 {
						continue
					}
					smps = append(smps, sample{t, float64(t)/1000 + float64(w)})
				}
				smps = append(smps, sample{now + int64(w)*1000 + 1, float64(r)})
				for _, lbls := range series {
					tss = append(tss, ts(lbls, smps...))
				}
				resp, err := ing.Push(tenantCtx("t1"), &arguspb.WriteRequest{Timeseries: tss})
				if err != nil {
					return err
				}
				// A sample of a round may fall behind the window the other
				// writers moved on, or repeat one of this writer's: refused
				// or a duplicate. Acknowledge exactly what is stored.
				for _, rej := range resp.Rejected {
					if rej.Reason != arguspb.RejectReason_REJECT_REASON_TOO_OLD {
						return fmt.Errorf("unexpected rejection: %v", rej)
					}
				}
				if resp.RejectedSamples > 0 {
					continue // Which samples were refused is not said: read them back at the end.
				}
				mu.Lock()
				for _, lbls := range series {
					acked[lstr(lbls...)] = append(acked[lstr(lbls...)], smps...)
				}
				mu.Unlock()
			}
			return nil
		})
	}
	require.NoError(t, writersGroup.Wait())
	cancel()
	require.NoError(t, background.Wait())
	flushTenants(t, ing, cutIdleChunks) // However few flushes ran meanwhile, some chunks are persisted.

	got := queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64)
	for k, want := range acked {
		have := map[int64]float64{}
		for _, s := range got[k] {
			have[s.t] = s.v
		}
		for _, s := range want {
			v, ok := have[s.t]
			require.True(t, ok, "acknowledged sample %d of %s lost", s.t, k)
			require.Equal(t, s.v, v)
		}
	}
	require.Equal(t, got[lstr(series[0]...)], got[lstr(series[1]...)], "both series took the same samples")
	require.Positive(t, storedChunks(t, ing, "t1"))
	ing2 := oooRestart(t, ing, window)
	requireSamples(t, got, queryAll(t, ing2, "t1", math.MinInt64, math.MaxInt64))
}

// TestOOO_LongWindowAcrossPartitions: with a 3 h window (longer than the
// head's usual hour, and than a 2 h partition), samples 2.5 h late land in
// a partition window before the newest; flushes and compactions (which seal
// the windows that can take no more samples) run in between, and every read
// is the model, before and after a restart.
func TestOOO_LongWindowAcrossPartitions(t *testing.T) {
	const minute = int64(60_000)
	cfg := testConfig(t, t.TempDir())
	ing := oooIngester(t, cfg, 3*time.Hour)
	names := [][]string{{"__name__", "a"}, {"__name__", "b"}, {"__name__", "c"}}
	model := map[string]map[int64]float64{}
	add := func(k int, smps ...sample) *arguspb.TimeSeries {
		key := lstr(names[k]...)
		if model[key] == nil {
			model[key] = map[int64]float64{}
		}
		for _, s := range smps {
			model[key][s.t] = s.v
		}
		return ts(names[k], smps...)
	}
	maintain := func() {
		flushTenants(t, ing, cutIdleChunks)
		require.NoError(t, ing.compactDB(t.Context()))
	}
	// 8 h in order, the odd minutes left out, maintained every hour.
	for hour := int64(0); hour < 8; hour++ {
		var tss []*arguspb.TimeSeries
		for k := range names {
			var smps []sample
			for m := hour * 60; m < (hour+1)*60; m += 2 {
				smps = append(smps, sample{m * minute, float64(k*100000) + float64(m)})
			}
			tss = append(tss, add(k, smps...))
		}
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
		maintain()
	}
	maxT := int64(8*60-2) * minute
	sealed := ing.sealed.Load()
	require.LessOrEqual(t, sealed, maxT-3*time.Hour.Milliseconds(), "no window the out-of-order samples may reach is sealed")
	require.GreaterOrEqual(t, sealed, 2*time.Hour.Milliseconds(), "the older windows are sealed")
	// The odd minutes of the last 3 h (those of the first 5 h are too old),
	// newest first, a few per push, maintaining in between.
	var late []sample
	for m := int64(8*60 - 1); m*minute >= maxT-3*time.Hour.Milliseconds(); m -= 2 {
		late = append(late, sample{m * minute, float64(m) + 0.5})
	}
	for len(late) > 0 {
		n := min(len(late), 7)
		var tss []*arguspb.TimeSeries
		for k := range names {
			tss = append(tss, add(k, late[:n]...))
		}
		require.Zero(t, push(t, ing, "t1", tss...).RejectedSamples)
		late = late[n:]
		maintain()
	}
	resp := push(t, ing, "t1", ts(names[0], sample{maxT - 3*time.Hour.Milliseconds() - minute, 1}))
	require.Equal(t, arguspb.RejectReason_REJECT_REASON_TOO_OLD, resp.Rejected[0].Reason)

	want := map[string][]sample{}
	for key, m := range model {
		for t, v := range m {
			want[key] = append(want[key], sample{t, v})
		}
		slices.SortFunc(want[key], func(x, y sample) int { return int(x.t - y.t) })
	}
	requireSamples(t, want, queryAll(t, ing, "t1", math.MinInt64, math.MaxInt64))
	require.Positive(t, storedChunks(t, ing, "t1"))
	ing2 := oooRestart(t, ing, 3*time.Hour)
	requireSamples(t, want, queryAll(t, ing2, "t1", math.MinInt64, math.MaxInt64))
}

// TestXORResumeAt checks the encoder state xorResumeAt rebuilds at every
// insertion point of chunks of varied samples against xorAppend's own: the
// same bits, state and sample count, and the samples after it.
func TestXORResumeAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		n := 1 + rng.IntN(samplesPerChunk)
		smps := make([]oooSample, n)
		ts := int64(rng.IntN(1 << 20))
		for k := range smps {
			switch rng.IntN(5) {
			case 0:
				ts += 15_000
			case 1:
				ts += 1 + int64(rng.IntN(100))
			case 2:
				ts += int64(rng.IntN(1 << 30))
			default:
				ts += 15_000 + int64(rng.IntN(2000)) - 1000
			}
			var v float64
			switch rng.IntN(5) {
			case 0:
				if k > 0 {
					v = smps[k-1].v
				}
			case 1:
				v = float64(rng.IntN(1000))
			case 2:
				v = math.Float64frombits(0x7ff0000000000001 + uint64(rng.IntN(1000)))
			default:
				v = rng.NormFloat64() * 1e6
			}
			smps[k] = oooSample{ts, v}
		}
		data := make([]byte, xorHeaderSize, chunkInitialCap)
		var st xorState
		for _, x := range smps {
			xorAppend(&data, &st, x.t, x.v)
		}
		for at := range n + 1 {
			cut := smps[len(smps)-1].t + 1
			if at < n {
				cut = smps[at].t
				if at > 0 && rng.IntN(2) == 0 {
					cut = smps[at-1].t + 1 // Between two samples.
				}
			}
			res, tail, ok := xorResumeAt(data, cut, nil)
			require.True(t, ok)
			require.Equal(t, at, res.n, "round %d", round)
			require.Len(t, tail, n-at)
			for k, x := range tail {
				require.Equal(t, smps[at+k].t, x.t)
				require.Equal(t, math.Float64bits(smps[at+k].v), math.Float64bits(x.v))
			}
			want := make([]byte, xorHeaderSize, chunkInitialCap)
			var wst xorState
			for _, x := range smps[:at] {
				xorAppend(&want, &wst, x.t, x.v)
			}
			if at == 0 {
				wst = xorState{}
			}
			require.Equal(t, math.Float64bits(wst.v), math.Float64bits(res.st.v))
			gst := res.st
			wst.v, gst.v = 0, 0 // NaN payloads compared as bits above.
			require.Equal(t, wst, gst, "round %d, state after %d samples", round, at)
			require.Equal(t, len(want)*8-int(wst.free), res.bits)
			got := slices.Clone(data[:len(want)])
			if res.st.free > 0 {
				got[len(got)-1] &^= byte(1<<res.st.free - 1)
			}
			binary.BigEndian.PutUint16(got, uint16(at))
			require.Equal(t, want, got)
		}
	}
}
