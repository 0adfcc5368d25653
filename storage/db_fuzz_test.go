package storage

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// FuzzChunkRefs decodes arbitrary chunk lists of a level-0 file: no panic,
// and what decodes re-encodes to the same bytes.
func FuzzChunkRefs(f *testing.F) {
	var enc []byte
	prev := int64(0)
	for _, r := range []chunkRef{{1, -5, 10}, {7, 11, 11}, {8, 100, math.MaxInt64}} {
		enc = appendChunkRef(enc, r, prev)
		prev = r.maxT
	}
	f.Add(enc)
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		var refs []chunkRef
		_, err := rangeChunkRefs(v, func(r chunkRef) bool {
			require.LessOrEqual(t, r.minT, r.maxT)
			refs = append(refs, r)
			return true
		})
		if err != nil {
			return
		}
		var out []byte
		prev := int64(0)
		for _, r := range refs {
			out = appendChunkRef(out, r, prev)
			prev = r.maxT
		}
		again, err := rangeChunkRefs(out, func(chunkRef) bool { return true })
		require.NoError(t, err)
		require.Equal(t, prev, again)
	})
}

// FuzzTombstone decodes arbitrary meta.db tombstone values: no panic, and a
// decoded tombstone round-trips.
func FuzzTombstone(f *testing.F) {
	f.Add(appendTombstone(nil, Tombstone{MinTime: -1, MaxTime: 5, Matchers: []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchRegexp, "job", "a|b"), labels.MustNewMatcher(labels.MatchNotEqual, "x", ""),
	}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		ts, err := decodeTombstone(v)
		if err != nil {
			return
		}
		require.LessOrEqual(t, ts.MinTime, ts.MaxTime)
		require.NotEmpty(t, ts.Matchers)
		again, err := decodeTombstone(appendTombstone(nil, ts))
		require.NoError(t, err)
		require.Equal(t, ts.MinTime, again.MinTime)
		require.Equal(t, ts.MaxTime, again.MaxTime)
		require.Len(t, again.Matchers, len(ts.Matchers))
		for i, m := range ts.Matchers {
			require.Equal(t, m.String(), again.Matchers[i].String())
		}
	})
}

func TestMergeSeriesListsDeduplicatesChunks(t *testing.T) {
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b")
	c1 := xorChunk(t, []sample{{1, 1}, {2, 2}})
	c2 := xorChunk(t, []sample{{3, 3}})
	c3 := xorChunk(t, []sample{{5, 5}})
	got := mergeSeriesLists([][]Series{
		{{Labels: a, Chunks: []Chunk{c2}}, {Labels: b, Chunks: []Chunk{c1}}},
		{{Labels: a, Chunks: []Chunk{c1, c2}}},
		{{Labels: a, Chunks: []Chunk{c3}}, {Labels: b, Chunks: []Chunk{c1}}},
	})
	require.Equal(t, []Series{{Labels: a, Chunks: []Chunk{c1, c2, c3}}, {Labels: b, Chunks: []Chunk{c1}}}, got)
}

func TestMergeStrings(t *testing.T) {
	require.Nil(t, mergeStrings(nil))
	require.Equal(t, []string{"a", "ab", "b", "c", "d"}, mergeStrings([][]string{{"a", "c"}, {"ab", "c", "d"}, {"a", "b"}}))
	require.Equal(t, []string{"x"}, mergeStrings([][]string{{"x", "x"}}))
}
