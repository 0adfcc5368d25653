package storage

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// mergeModel builds sources whose series overlap in every way mergeSources
// handles, and the samples each merged series must have (later sources win
// on equal times).
type mergeModel struct {
	srcs []memSource
	want map[string]map[string]map[int64]float64 // tenant -> series -> t -> v
}

func newMergeModel(t testing.TB) *mergeModel {
	rng := rand.New(rand.NewPCG(3, 4))
	m := &mergeModel{want: map[string]map[string]map[int64]float64{}}
	m.srcs = make([]memSource, 3)
	for i := range m.srcs {
		m.srcs[i] = memSource{}
	}
	// add gives series lbls of tenant in source src the samples at times
	// from, from+step... up to to, values depending on the source.
	add := func(src int, tenant string, lbls labels.Labels, ranges ...[3]int64) {
		var chunks []Chunk
		for _, r := range ranges {
			var ss []sample
			for ts := r[0]; ts <= r[1]; ts += r[2] {
				ss = append(ss, sample{ts, float64(src*1000) + float64(ts) + rng.Float64()})
			}
			chunks = append(chunks, xorChunk(t, ss))
		}
		m.addChunks(t, src, tenant, lbls, chunks)
	}
	a := labels.FromStrings("__name__", "only_a")
	add(0, "x", a, [3]int64{0, 100, 10}, [3]int64{200, 300, 10})
	interleaved := labels.FromStrings("__name__", "interleaved")
	add(0, "x", interleaved, [3]int64{0, 90, 10}, [3]int64{200, 290, 10})
	add(1, "x", interleaved, [3]int64{100, 190, 10}, [3]int64{300, 390, 10})
	overlap := labels.FromStrings("__name__", "overlap", "job", "j")
	add(0, "x", overlap, [3]int64{0, 100, 10}, [3]int64{500, 600, 7})
	add(1, "x", overlap, [3]int64{50, 150, 10}, [3]int64{160, 170, 5})
	add(2, "x", overlap, [3]int64{95, 400, 5}) // bridges everything up to 400
	add(2, "y", a, [3]int64{0, 10, 1})
	add(1, "y", labels.FromStrings("__name__", "b"), [3]int64{-50, -10, 20})
	// A duplicated chunk: the same bytes in sources 0 and 2, next to other
	// chunks of each.
	dup := labels.FromStrings("__name__", "dup")
	var ss []sample
	for ts := int64(0); ts < 50; ts += 5 {
		ss = append(ss, sample{ts, float64(ts)})
	}
	d := xorChunk(t, ss)
	m.addChunks(t, 0, "x", dup, []Chunk{d})
	m.addChunks(t, 2, "x", dup, []Chunk{d, xorChunk(t, []sample{{100, 1}, {110, 2}})})
	for _, s := range m.srcs {
		for _, ss := range s {
			sortSeries(ss)
		}
	}
	return m
}

func (m *mergeModel) addChunks(t testing.TB, src int, tenant string, lbls labels.Labels, chunks []Chunk) {
	m.srcs[src][tenant] = append(m.srcs[src][tenant], Series{Labels: lbls, Chunks: chunks})
	if m.want[tenant] == nil {
		m.want[tenant] = map[string]map[int64]float64{}
	}
	w := m.want[tenant][lbls.String()]
	if w == nil {
		w = map[int64]float64{}
		m.want[tenant][lbls.String()] = w
	}
	for _, c := range chunks {
		for _, s := range chunkSamples(t, c) {
			w[s.t] = s.v
		}
	}
}

// requireMerged checks that the series of src are the model's merge.
func (m *mergeModel) requireMerged(t *testing.T, src partSource) {
	require.Equal(t, []string{"x", "y"}, src.Tenants())
	for _, tenant := range src.Tenants() {
		var got []string
		var prev labels.Labels
		require.NoError(t, src.Series(tenant, func(s Series) error {
			if len(got) > 0 {
				require.Negative(t, labels.Compare(prev, s.Labels))
			}
			prev = s.Labels
			got = append(got, s.Labels.String())
			samples := map[int64]float64{}
			for i, c := range s.Chunks {
				if i > 0 {
					require.Greater(t, c.MinTime, s.Chunks[i-1].MaxTime, "chunks overlap in %s", s.Labels)
				}
				cs := chunkSamples(t, c)
				require.Equal(t, c.MinTime, cs[0].t)
				require.Equal(t, c.MaxTime, cs[len(cs)-1].t)
				for _, smp := range cs {
					samples[smp.t] = smp.v
				}
			}
			require.Equal(t, m.want[tenant][s.Labels.String()], samples, "series %s", s.Labels)
			return nil
		}))
		want := slices.Sorted(maps.Keys(m.want[tenant]))
		slices.Sort(got)
		require.Equal(t, want, got)
	}
}

func TestMergeSources(t *testing.T) {
	m := newMergeModel(t)
	merged := mergeSources(m.srcs[0], m.srcs[1], m.srcs[2])
	m.requireMerged(t, merged)

	// The duplicated chunk is kept once, as is.
	var dup Series
	require.NoError(t, merged.Series("x", func(s Series) error {
		if s.Labels.Get("__name__") == "dup" {
			dup = cloneSeries(s)
		}
		return nil
	}))
	require.Equal(t, []Chunk{m.srcs[0]["x"][0].Chunks[0], m.srcs[2]["x"][0].Chunks[1]}, dup.Chunks)
}

// TestMergeParts merges opened parts (whose Series hand out chunk data that
// alias the parts' memory) into a new part, as compaction does, with blobs
// small enough that series span them.
func TestMergeParts(t *testing.T) {
	smallBlobs(t, 200)
	m := newMergeModel(t)
	var parts []partSource
	for i, s := range m.srcs {
		parts = append(parts, writeTestPart(t, s, partMeta{Level: 0, MinTime: int64(i)}, i == 1))
	}
	out := writeTestPart(t, mergeSources(parts...), partMeta{Level: 1, Sources: []string{"a", "b", "c"}}, true)
	m.requireMerged(t, out)
	got, err := out.Select("x", math.MinInt64, math.MaxInt64, SelectOptions{}, []*labels.Matcher{eq("__name__", "overlap")})
	require.NoError(t, err)
	require.Len(t, got, 1)
	// [0,100], [50,150], [160,170] and [95,400] overlap,
	// one chunk of 72; [500,600] stays as it was.
	require.Len(t, got[0].Chunks, 2)
	require.Equal(t, [2]int64{0, 400}, [2]int64{got[0].Chunks[0].MinTime, got[0].Chunks[0].MaxTime})
	require.Len(t, chunkSamples(t, got[0].Chunks[0]), 72)
	require.Equal(t, m.srcs[0]["x"][3].Chunks[1], got[0].Chunks[1]) // dup, interleaved, only_a, overlap
}

// TestMergeSourcesStopsEarly checks that an error from fn ends the merge and
// is returned.
func TestMergeSourcesStopsEarly(t *testing.T) {
	m := newMergeModel(t)
	stop := fmt.Errorf("stop")
	n := 0
	err := mergeSources(m.srcs[0], m.srcs[1], m.srcs[2]).Series("x", func(Series) error {
		n++
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
}
