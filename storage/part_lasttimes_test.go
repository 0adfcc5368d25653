package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestPartLastTimesMatchesLastTime checks, over random batches, that
// LastTimes returns for every series what LastTime returns: present and
// absent series, before the first and after the last, duplicates, empty
// values (not stored, so ignored), an unknown tenant; with the symbol
// cache bounded to one block (symbols past it come from the reader's last
// block) or not, with the blob cache or not.
func TestPartLastTimesMatchesLastTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	model := memSource{"a": randomSeries(t, rng, 3000, "a"), "b": randomSeries(t, rng, 20, "b")}
	absent := randomSeries(t, rng, 300, "x") // many also in "a", the rest absent
	p := writeTestPartOpts(t, model, partMeta{MinTime: -1000, MaxTime: 9000, Level: 1}, partWriteOptions{Compress: true})
	pick := func() labels.Labels {
		var s []Series
		switch rng.IntN(3) {
		case 0, 1:
			s = model["a"]
		default:
			s = absent
		}
		lbls := s[rng.IntN(len(s))].Labels
		switch rng.IntN(8) {
		case 0: // empty values, which LastTime ignores
			return withEmptyValues(lbls, "aa", "zz")
		case 1: // a value changed: absent unless it meets another series
			return labels.NewBuilder(lbls).Set("job", "api-"+fmt.Sprint(rng.IntN(3))).Labels()
		case 2: // a label more: absent
			return labels.NewBuilder(lbls).Set("zz", "1").Labels()
		}
		return lbls
	}
	edges := []labels.Labels{
		labels.FromStrings("A", "before-all"), labels.FromStrings("__name__", ""),
		labels.EmptyLabels(), labels.FromStrings("~", "after-all"), labels.FromStrings("__name__", "zzz"),
		model["a"][0].Labels, model["a"][len(model["a"])-1].Labels,
	}
	for _, cfg := range []struct {
		name      string
		symBlocks int
		blobs     *BlobCache
	}{{"default", symbolCacheBlocks, nil}, {"symcache=1", 1, nil}, {"blobcache", symbolCacheBlocks, NewBlobCache(1 << 20)}} {
		t.Run(cfg.name, func(t *testing.T) {
			old := symbolCacheBlocks
			symbolCacheBlocks, p.blobs = cfg.symBlocks, cfg.blobs
			t.Cleanup(func() { symbolCacheBlocks, p.blobs = old, nil })
			p.symbols.Clear()
			for round := range 60 {
				var batch []labels.Labels
				for range rng.IntN(200) {
					batch = append(batch, pick())
				}
				if round%3 == 0 {
					batch = append(batch, edges...)
				}
				if n := len(batch); n > 0 && round%2 == 0 {
					batch = append(batch, batch[rng.IntN(n)], batch[rng.IntN(n)]) // duplicates
				}
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				if round%5 == 0 {
					slices.SortFunc(batch, labels.Compare) // already sorted: the sort is skipped
				}
				for _, tenant := range []string{"a", "b", "none"} {
					requireLastTimesEqual(t, p, tenant, batch)
				}
			}
		})
	}
}

// withEmptyValues returns lbls with the labels names added, empty-valued
// (labels.Builder would drop them).
func withEmptyValues(lbls labels.Labels, names ...string) labels.Labels {
	b := labels.NewScratchBuilder(lbls.Len() + len(names))
	lbls.Range(func(l labels.Label) { b.Add(l.Name, l.Value) })
	for _, n := range names {
		b.Add(n, "")
	}
	b.Sort()
	return b.Labels()
}

// requireLastTimesEqual checks LastTimes against LastTime for each series.
func requireLastTimesEqual(t *testing.T, p *part, tenant string, batch []labels.Labels) {
	t.Helper()
	out, found := make([]int64, len(batch)), make([]bool, len(batch))
	for i := range out { // LastTimes must overwrite them
		out[i], found[i] = -7, true
	}
	require.NoError(t, p.LastTimes(tenant, batch, out, found))
	var hits int
	for i, lbls := range batch {
		want, ok, err := p.LastTime(tenant, lbls)
		require.NoError(t, err)
		require.Equal(t, ok, found[i], "tenant %s series %s", tenant, lbls)
		require.Equal(t, want, out[i], "tenant %s series %s", tenant, lbls)
		if ok {
			hits++
		}
	}
	if tenant == "a" && len(batch) > 50 {
		require.Positive(t, hits, "a batch of that size finds some series")
	}
}

// TestPartLastTimesLengths checks that mismatched result slices are an
// error, not a panic or a partial answer.
func TestPartLastTimesLengths(t *testing.T) {
	p := writeTestPart(t, newTestModel(t), partMeta{MinTime: -1000, MaxTime: 9000, Level: 1}, true)
	err := p.LastTimes("team-a", []labels.Labels{labels.FromStrings("a", "b")}, nil, nil)
	require.Error(t, err)
}

// TestDBPrecheckFirstOutOfOrder appends, into a window with two parts and
// a level-0 file, batches in which several series (not first, and not in
// label order) are out of order, some against both parts, one with an
// empty-valued label, some with invalid labels: the error must be the one
// the per-series check returned (oldPrecheck), exactly, naming the first
// offending series in batch order, against the first partition holding a
// newer chunk.
func TestDBPrecheckFirstOutOfOrder(t *testing.T) {
	const minute = 60_000
	clock := time.UnixMilli(0)
	db, _ := newTestDB(t, DBOptions{Now: func() time.Time { return clock }, SealStep: 20 * time.Minute})
	ctx := t.Context()
	const n = 60
	require.NoError(t, db.Append("a", genBatch(t, "a", n, 0, 40*minute, 15_000, 20*minute)))
	require.NoError(t, db.Compact(ctx, 40*minute))
	require.NoError(t, db.Append("a", genBatch(t, "a", n/2, 40*minute, 60*minute, 15_000, 20*minute)))
	require.NoError(t, db.Compact(ctx, 60*minute)) // a second part, written alone
	require.NoError(t, db.Append("a", genBatch(t, "a", n/4, 60*minute, 70*minute, 15_000, 10*minute)))
	db.mu.RLock()
	levels := map[int]int{}
	for _, p := range db.overlapping(0, 2*60*minute-1) {
		levels[p.level]++
	}
	db.mu.RUnlock()
	require.Equal(t, map[int]int{0: 1, 1: 2}, levels)

	rng := rand.New(rand.NewPCG(3, 4))
	var errs int
	for round := range 40 {
		batch := genBatch(t, "a", n, 70*minute, 80*minute, 15_000, 10*minute)
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		for range 1 + rng.IntN(4) {
			i := rng.IntN(n)
			from := []int64{30, 50, 65, 0}[rng.IntN(4)] * minute // older than one part, both, the level-0 file
			batch[i] = genBatch(t, "a", n, from, from+5*minute, 15_000, 5*minute)[seriesNo(t, batch[i])]
			if rng.IntN(3) == 0 {
				batch[i].Labels = withEmptyValues(batch[i].Labels, "aa")
			}
		}
		if round%4 == 0 { // names out of order: invalid
			b := labels.NewScratchBuilder(2)
			b.Add("job", "a")
			b.Add("__name__", "x")
			batch[rng.IntN(n)].Labels = b.Labels()
		}
		for _, multi := range []bool{false, true} {
			windows := map[int64][]Series{0: batch}
			want := oldPrecheck(db, "a", windows, multi)
			if want != nil {
				errs++
			}
			db.appendMu.Lock()
			got := db.precheck("a", windows, multi)
			db.appendMu.Unlock()
			require.Equal(t, want, got, "round %d multi=%v", round, multi)
		}
	}
	require.Greater(t, errs, 60, "most batches are refused")

	// In the middle of an in-order batch, host-40 (only in the first part)
	// and, later in the batch but first in label order, host-1.
	batch := genBatch(t, "a", n, 70*minute, 80*minute, 15_000, 10*minute)
	batch[30] = genBatch(t, "a", 41, 30*minute, 35*minute, 15_000, 5*minute)[40]
	batch[50] = genBatch(t, "a", 2, 30*minute, 35*minute, 15_000, 5*minute)[1]
	err := db.Append("a", batch)
	require.ErrorIs(t, err, ErrOutOfOrderChunk)
	require.Equal(t, outOfOrderChunkError{series: `{__name__="metric_1", instance="host-40", job="a"}`,
		minTime: 30 * minute, prevMaxTime: 40*minute - 15_000, stored: true}, err)
}

// seriesNo returns i of genBatch's series host-i.
func seriesNo(t *testing.T, s Series) int {
	var i int
	_, err := fmt.Sscanf(s.Labels.Get("instance"), "host-%d", &i)
	require.NoError(t, err)
	return i
}

// oldPrecheck is DB.precheck as it was before part.LastTimes: series by
// series, partition by partition, one LastTime each.
func oldPrecheck(db *DB, tenant string, windows map[int64][]Series, multi bool) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	r := db.opts.PartitionRange.Milliseconds()
	for w, series := range windows {
		ps := db.overlapping(w, w+r-1)
		sealed := slices.ContainsFunc(ps, func(p *partition) bool { return p.level > 0 })
		if !multi && !sealed {
			continue
		}
		var scratch []byte
		for _, sr := range series {
			var err error
			if scratch, err = appendLabels(scratch[:0], sr.Labels); err != nil {
				return err
			}
			for _, p := range ps {
				if db.hidden(p, tenant) || (!multi && p == db.writable[w]) {
					continue
				}
				if sp, ok := p.r.(*part); ok && sp.newerThanTenant(tenant, sr.Chunks[0].MinTime) {
					continue
				}
				t, ok, err := p.r.LastTime(tenant, sr.Labels)
				if err != nil {
					return err
				}
				if ok && sr.Chunks[0].MinTime <= t {
					return outOfOrderChunkError{series: sr.Labels.String(), minTime: sr.Chunks[0].MinTime, prevMaxTime: t, stored: true}
				}
			}
		}
	}
	return nil
}

// BenchmarkPartLastTimes looks up a batch of 2,000 series (in random
// order, as a flush's) in a compressed part of 200K benchmark-shaped
// series (40K pods, five metrics each), through a 64 MiB blob cache as in
// the ingester: in one LastTimes, and with one LastTime per series as
// DB.precheck did. ns/series is the CPU-bound wall time per series.
func BenchmarkPartLastTimes(b *testing.B) {
	const pods, batchSize = 40_000, 2_000
	rng := rand.New(rand.NewPCG(1, 2))
	var ss []Series
	c := xorChunk(b, []sample{{0, 1}, {15_000, 2}, {30_000, 3}})
	for p := range pods {
		pairs := benchPodLabels(p, rng)
		for _, m := range benchMetrics {
			ss = append(ss, Series{Labels: labels.FromStrings(append([]string{"__name__", m}, pairs...)...), Chunks: []Chunk{c}})
		}
	}
	sortSeries(ss)
	p := writeTestPartOpts(b, memSource{"bench": ss}, partMeta{MinTime: 0, MaxTime: 30_000, Level: 1}, partWriteOptions{Compress: true})
	p.blobs = NewBlobCache(64 << 20)
	if os.Getenv("SYMCACHE") != "" {
		old := symbolCacheBlocks
		symbolCacheBlocks, _ = strconv.Atoi(os.Getenv("SYMCACHE"))
		b.Cleanup(func() { symbolCacheBlocks = old })
	}
	batch := make([]labels.Labels, batchSize)
	for i := range batch {
		batch[i] = ss[rng.IntN(len(ss))].Labels
	}
	out, found := make([]int64, batchSize), make([]bool, batchSize)
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, p.LastTimes("bench", batch, out, found))
		}
		require.NotContains(b, found, false)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/series")
	})
	b.Run("each", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, lbls := range batch {
				_, ok, err := p.LastTime("bench", lbls)
				require.NoError(b, err)
				require.True(b, ok)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/series")
	})
}
