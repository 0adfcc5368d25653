package storage

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// chunkAt returns a one-sample-per-10ms XOR chunk spanning [minT, maxT].
func chunkAt(t testing.TB, minT, maxT int64) Chunk {
	t.Helper()
	var ss []sample
	for ts := minT; ts < maxT; ts += 10 {
		ss = append(ss, sample{ts, float64(ts)})
	}
	ss = append(ss, sample{maxT, 1})
	return xorChunk(t, ss)
}

func TestAppend_RejectsBatchAtomically(t *testing.T) {
	newSeries := labels.FromStrings("__name__", "new")
	e := labels.FromStrings("__name__", "e")
	cases := []struct {
		name    string
		batch   func(f *fixture) []Series
		wantErr error
	}{
		{"overlaps last stored chunk", func(f *fixture) []Series {
			return []Series{{Labels: f.labels["a"], Chunks: []Chunk{chunkAt(t, 280, 300)}}}
		}, ErrOutOfOrderChunk},
		{"starts at last stored max time", func(f *fixture) []Series {
			return []Series{{Labels: f.labels["a"], Chunks: []Chunk{chunkAt(t, 290, 300)}}}
		}, ErrOutOfOrderChunk},
		{"before stored chunks", func(f *fixture) []Series {
			return []Series{{Labels: f.labels["b"], Chunks: []Chunk{chunkAt(t, -100, -50)}}}
		}, ErrOutOfOrderChunk},
		{"overlapping chunks in batch", func(*fixture) []Series {
			return []Series{{Labels: e, Chunks: []Chunk{chunkAt(t, 0, 10), chunkAt(t, 10, 20)}}}
		}, ErrOutOfOrderChunk},
		{"same series twice in batch", func(*fixture) []Series {
			return []Series{{Labels: e, Chunks: []Chunk{chunkAt(t, 0, 10)}}, {Labels: e, Chunks: []Chunk{chunkAt(t, 5, 15)}}}
		}, ErrOutOfOrderChunk},
		{"min time after max time", func(*fixture) []Series {
			return []Series{{Labels: e, Chunks: []Chunk{{MinTime: 10, MaxTime: 0, Encoding: 1, Data: []byte{0, 0}}}}}
		}, ErrInvalidChunk},
		{"unknown encoding", func(*fixture) []Series {
			return []Series{{Labels: e, Chunks: []Chunk{{MinTime: 0, MaxTime: 0, Encoding: 99, Data: []byte{0, 0}}}}}
		}, ErrInvalidChunk},
		{"no data", func(*fixture) []Series {
			return []Series{{Labels: e, Chunks: []Chunk{{MinTime: 0, MaxTime: 0, Encoding: 1}}}}
		}, ErrInvalidChunk},
		{"empty labels", func(*fixture) []Series {
			return []Series{{Labels: labels.EmptyLabels(), Chunks: []Chunk{chunkAt(t, 0, 10)}}}
		}, ErrInvalidLabels},
		{"only empty values", func(*fixture) []Series {
			return []Series{{Labels: labels.FromStrings("a", ""), Chunks: []Chunk{chunkAt(t, 0, 10)}}}
		}, ErrInvalidLabels},
		{"duplicate names", func(*fixture) []Series {
			return []Series{{Labels: labels.New(labels.Label{Name: "a", Value: "1"}, labels.Label{Name: "a", Value: "2"}), Chunks: []Chunk{chunkAt(t, 0, 10)}}}
		}, ErrInvalidLabels},
		{"labels too large", func(*fixture) []Series {
			return []Series{{Labels: labels.FromStrings("a", strings.Repeat("x", 40_000)), Chunks: []Chunk{chunkAt(t, 0, 10)}}}
		}, ErrInvalidLabels},
		{"name with byte 0xff", func(*fixture) []Series {
			return []Series{{Labels: labels.FromStrings("a\xff", "1"), Chunks: []Chunk{chunkAt(t, 0, 10)}}}
		}, ErrInvalidLabels},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			s, _ := newTestStore(t)
			f.appendAll(t, s)
			before, err := s.Select(minT, maxT, SelectOptions{})
			require.NoError(t, err)

			// A valid new series first: it must not be stored either.
			batch := append([]Series{{Labels: newSeries, Chunks: []Chunk{chunkAt(t, 0, 10)}}}, c.batch(f)...)
			err = s.Append(batch)
			require.ErrorIs(t, err, c.wantErr)
			t.Log(err)

			after, err := s.Select(minT, maxT, SelectOptions{})
			require.NoError(t, err)
			require.Equal(t, before, after)
			_, ok, err := s.LastTime(newSeries)
			require.NoError(t, err)
			require.False(t, ok)
		})
	}
}

func TestAppend_EmptyValuesAndEmptySeries(t *testing.T) {
	s, _ := newTestStore(t)
	c0, c1 := chunkAt(t, 0, 10), chunkAt(t, 20, 30)
	require.NoError(t, s.Append([]Series{
		{Labels: labels.FromStrings("a", "1", "b", "")},
		{Labels: labels.FromStrings("a", "1", "b", ""), Chunks: []Chunk{c0}},
	}))
	// Without the empty label it is the same series.
	require.NoError(t, s.Append([]Series{{Labels: labels.FromStrings("a", "1"), Chunks: []Chunk{c1}}}))

	got, err := s.Select(minT, maxT, SelectOptions{})
	require.NoError(t, err)
	require.Equal(t, []Series{{Labels: labels.FromStrings("a", "1"), Chunks: []Chunk{c0, c1}}}, got)
	last, ok, err := s.LastTime(labels.FromStrings("a", "1", "b", ""))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(30), last)
	names, err := s.LabelNames(minT, maxT)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, names)
}

func TestChunkStore_ValuesWithSeparatorByte(t *testing.T) {
	s, _ := newTestStore(t)
	x := labels.FromStrings("v", "x")
	xff := labels.FromStrings("v", "x\xffy")
	xffLong := labels.FromStrings("v", "x\xff\x00\x00\x00\x00\x00\x00\x00\x01")
	c := chunkAt(t, 0, 10)
	require.NoError(t, s.Append([]Series{{Labels: x, Chunks: []Chunk{c}}, {Labels: xff, Chunks: []Chunk{c}}, {Labels: xffLong, Chunks: []Chunk{c}}}))

	cases := []struct {
		m    *labels.Matcher
		want []labels.Labels
	}{
		{eq("v", "x"), []labels.Labels{x}},
		{eq("v", "x\xffy"), []labels.Labels{xff}},
		{neq("v", "x"), []labels.Labels{xffLong, xff}},
		{re("v", "x.*"), []labels.Labels{x, xffLong, xff}},
	}
	for _, tc := range cases {
		got, err := s.Select(minT, maxT, SelectOptions{SkipChunks: true}, tc.m)
		require.NoError(t, err)
		var gotLabels []labels.Labels
		for _, sr := range got {
			gotLabels = append(gotLabels, sr.Labels)
		}
		require.Equal(t, tc.want, gotLabels, tc.m.String())
	}
	values, err := s.LabelValues("v", minT, maxT)
	require.NoError(t, err)
	require.Equal(t, []string{"x", "x\xff\x00\x00\x00\x00\x00\x00\x00\x01", "x\xffy"}, values)
}

func TestChunkStore_Close(t *testing.T) {
	f := newFixture(t)
	s, _ := newTestStore(t)
	f.appendAll(t, s)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())

	require.ErrorIs(t, s.Append(f.batches[0]), ErrClosed)
	_, err := s.Select(minT, maxT, SelectOptions{})
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.LabelNames(minT, maxT)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.LabelValues("job", minT, maxT)
	require.ErrorIs(t, err, ErrClosed)
	_, _, err = s.LastTime(f.labels["a"])
	require.ErrorIs(t, err, ErrClosed)
}

func TestOpen_LockedFailsFast(t *testing.T) {
	_, path := newTestStore(t)
	start := time.Now()
	_, err := Open(path, Options{})
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorIs(t, Check(path), ErrLocked)
	require.Less(t, time.Since(start), 10*openTimeout)
}

func TestOpen_UnsupportedFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks.db")
	s, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, 99))
	})
	_, err = Open(path, Options{})
	require.ErrorIs(t, err, ErrUnsupportedFormat)
}

// rawUpdate runs fn in a write transaction on the bbolt file at path.
func rawUpdate(t testing.TB, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.Update(fn))
	require.NoError(t, db.Close())
}

func TestCheck_DetectsCorruption(t *testing.T) {
	idKey := func(id uint64) []byte { return appendID(nil, id) }
	cases := []struct {
		name    string
		corrupt func(tx *bbolt.Tx) error
		want    string
	}{
		{"dangling postings entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketPostings).Put(appendPostingKey(nil, []byte("job"), []byte("x"), 999), nil)
		}, "postings refers to missing series 999"},
		{"missing postings entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketPostings).Delete(appendPostingKey(nil, []byte("job"), []byte("db"), 2))
		}, "series 2 has 1 labels without postings"},
		{"chunk of missing series", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketChunks).Put(appendChunkKey(nil, 999, 5), []byte{0, 1, 0, 0})
		}, "chunk refers to missing series 999"},
		{"overlapping chunks", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketChunks).Put(appendChunkKey(nil, 1, 95), []byte{10, 1, 0, 0})
		}, "not after the previous chunk's end 90"},
		{"time range disagrees with chunks", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketSeriesTime).Put(idKey(2), appendSeriesTime(nil, 0, 1000))
		}, "series 2 has time range [0, 1000] but chunks span [0, 90]"},
		{"series without labels index", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketByLabels).Delete(tx.Bucket(bucketSeries).Get(idKey(2)))
		}, "series_by_labels has 3 entries for 4 series"},
		{"malformed chunk value", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketChunks).Put(appendChunkKey(nil, 2, 90), []byte{0xff})
		}, "malformed chunk value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chunks.db")
			s, err := Open(path, Options{NoSync: true})
			require.NoError(t, err)
			newFixture(t).appendAll(t, s)
			require.NoError(t, s.Close())
			require.NoError(t, Check(path))

			rawUpdate(t, path, c.corrupt)
			err = Check(path)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestChunkStore_ConcurrentAppendAndRead(t *testing.T) {
	s, _ := newTestStore(t)
	lbls := labels.FromStrings("__name__", "x")
	const n = 50
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range int64(n) {
			if err := s.Append([]Series{{Labels: lbls, Chunks: []Chunk{chunkAt(t, i*100, i*100+50)}}}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			prev := 0
			for prev < n {
				got, err := s.Select(minT, maxT, SelectOptions{}, eq("__name__", "x"))
				if err != nil {
					t.Error(err)
					return
				}
				cur := 0
				if len(got) == 1 {
					cur = len(got[0].Chunks)
				}
				if cur < prev {
					t.Errorf("chunks went from %d to %d", prev, cur)
					return
				}
				prev = cur
			}
		})
	}
	wg.Wait()
	last, ok, err := s.LastTime(lbls)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64((n-1)*100+50), last)
}
