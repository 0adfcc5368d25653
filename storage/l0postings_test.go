package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// The tests of this file cover the postings entries of level-0 and
// ChunkStore files that list several series (one entry per label pair per
// transaction), next to the entries of one series each that every file
// written before held.

// postingsFixture is 30 series written in two flushes: the first creates
// series 0-19, the second creates 20-29 and extends the odd ones of the
// first. The series share pairs (so entries list several IDs), "tier" is on
// series 0 (never extended) and 7 (extended), so that the first ID of its
// first entry is out of a later range while another is in, and job values
// "v" and "v\xff" make one pair's key prefix a prefix of another's.
type postingsFixture struct {
	lbls     []labels.Labels
	min, max []int64 // time span of each series
}

func newPostingsFixture() *postingsFixture {
	f := &postingsFixture{}
	jobs := []string{"a", "b", "v", "v\xff"}
	for i := range 30 {
		b := labels.NewScratchBuilder(6)
		b.Add("__name__", fmt.Sprintf("m%d", i%3))
		b.Add("job", jobs[i%len(jobs)])
		b.Add("pod", fmt.Sprintf("p%02d", i))
		if i%7 == 0 {
			b.Add("tier", "x")
		}
		b.Add("zone", fmt.Sprintf("z%d", i%5))
		b.Sort()
		f.lbls = append(f.lbls, b.Labels())
		switch {
		case i >= 20:
			f.min, f.max = append(f.min, 100), append(f.max, 110)
		case i%2 == 1:
			f.min, f.max = append(f.min, 0), append(f.max, 110)
		default:
			f.min, f.max = append(f.min, 0), append(f.max, 10)
		}
	}
	return f
}

func seriesChunkAt(lbls labels.Labels, t int64) Series {
	return Series{Labels: lbls, Chunks: []Chunk{{MinTime: t, MaxTime: t + 10, Encoding: chunkenc.EncXOR, Data: []byte{1, 2}}}}
}

func (f *postingsFixture) flush1() []Series {
	var out []Series
	for i := range 20 {
		out = append(out, seriesChunkAt(f.lbls[i], 0))
	}
	return out
}

func (f *postingsFixture) flush2() []Series {
	var out []Series
	for i := range 30 {
		if i >= 20 || i%2 == 1 {
			out = append(out, seriesChunkAt(f.lbls[i], 100))
		}
	}
	return out
}

// postingsQuery is one read, and its result computed from the fixture.
type postingsQuery struct {
	kind       string // "select", "names" or "values"
	name       string // of "values"
	mint, maxt int64
	ms         []*labels.Matcher
}

func postingsQueries() []postingsQuery {
	eq := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	var out []postingsQuery
	for _, r := range [][2]int64{{0, 200}, {50, 200}, {0, 20}, {math.MinInt64, math.MaxInt64}} {
		for _, ms := range [][]*labels.Matcher{
			nil,
			{eq("job", "a")},
			{eq("job", "v")},
			{eq("tier", "x")},
			{eq("job", "b"), eq("zone", "z1")},
			{labels.MustNewMatcher(labels.MatchNotEqual, "job", "a")},
			{labels.MustNewMatcher(labels.MatchRegexp, "zone", "z[12]")},
			{labels.MustNewMatcher(labels.MatchNotRegexp, "pod", "p1.*")},
			{eq("tier", "")},
		} {
			if len(ms) > 0 {
				out = append(out, postingsQuery{kind: "select", mint: r[0], maxt: r[1], ms: ms})
			}
			out = append(out, postingsQuery{kind: "names", mint: r[0], maxt: r[1], ms: ms})
			for _, name := range []string{"job", "tier", "zone"} {
				out = append(out, postingsQuery{kind: "values", name: name, mint: r[0], maxt: r[1], ms: ms})
			}
		}
	}
	return out
}

// want computes the result of q over the fixture's series, as strings.
func (f *postingsFixture) want(q postingsQuery) []string {
	var out []string
	for i, l := range f.lbls {
		if f.max[i] < q.mint || f.min[i] > q.maxt || !matchesAll(l, q.ms) {
			continue
		}
		switch q.kind {
		case "select":
			out = append(out, l.String())
		case "names":
			l.Range(func(l labels.Label) { out = append(out, l.Name) })
		case "values":
			if v := l.Get(q.name); v != "" {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// storeResult runs q on a ChunkStore.
func storeResult(t *testing.T, s *ChunkStore, q postingsQuery) []string {
	t.Helper()
	var (
		out []string
		err error
	)
	switch q.kind {
	case "select":
		var got []Series
		got, err = s.Select(q.mint, q.maxt, SelectOptions{SkipChunks: true}, q.ms...)
		for _, sr := range got {
			out = append(out, sr.Labels.String())
		}
		slices.Sort(out)
	case "names":
		out, err = s.LabelNames(q.mint, q.maxt, q.ms...)
	case "values":
		out, err = s.LabelValues(q.name, q.mint, q.maxt, q.ms...)
	}
	require.NoError(t, err)
	return out
}

// toOldPostings rewrites a postings bucket as files written before entries
// listed several series: one key per pair and series, with an empty value.
func toOldPostings(t *testing.T, b *bbolt.Bucket) {
	t.Helper()
	old := map[string][]byte{}
	var keys [][]byte
	require.NoError(t, b.ForEach(func(k, v []byte) error {
		_, _, first, err := parsePostingKey(k)
		require.NoError(t, err)
		ids, err := appendPostingIDs(nil, first, v)
		require.NoError(t, err)
		for _, id := range ids {
			old[string(appendID(bytes.Clone(k[:len(k)-idLen]), id))] = nil
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	}))
	for _, k := range keys {
		require.NoError(t, b.Delete(k))
	}
	for k := range old {
		require.NoError(t, b.Put([]byte(k), emptyValue))
	}
}

// TestChunkStore_PostingsOldNewMixed reads the same series from a store
// written with entries of several series, one whose first flush was
// rewritten in the old one-key-per-series form before the second flush
// (mixed), and one rewritten wholly in the old form: every Select,
// LabelNames and LabelValues matches the result computed from the labels,
// and each file passes Check.
func TestChunkStore_PostingsOldNewMixed(t *testing.T) {
	fx := newPostingsFixture()
	stores := map[string]*ChunkStore{}
	toOld := func(s *ChunkStore) {
		require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
			toOldPostings(t, tx.Bucket(bucketPostings))
			return nil
		}))
	}
	for _, name := range []string{"new", "mixed", "old"} {
		s, _ := newTestStore(t)
		require.NoError(t, s.Append(fx.flush1()))
		if name == "mixed" {
			toOld(s)
		}
		require.NoError(t, s.Append(fx.flush2()))
		if name == "old" {
			toOld(s)
		}
		stores[name] = s
	}
	countKeys := func(s *ChunkStore) (n int) {
		require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
			n = tx.Bucket(bucketPostings).Stats().KeyN
			return nil
		}))
		return n
	}
	// 30 series of 4 labels, 5 of them with a fifth: 125 keys in the old form.
	require.Equal(t, 125, countKeys(stores["old"]))
	require.Less(t, countKeys(stores["new"]), countKeys(stores["mixed"]))
	require.Less(t, countKeys(stores["mixed"]), 125)

	for _, q := range postingsQueries() {
		want := fx.want(q)
		for name, s := range stores {
			require.Equal(t, want, storeResult(t, s, q), "%s store, %+v", name, q)
		}
	}
	// The case the entries' first IDs alone would get wrong.
	require.Contains(t, fx.want(postingsQuery{kind: "names", mint: 50, maxt: 200}), "tier")
}

// newPostingsPartition writes the fixture's two flushes into a level-0
// file for tenant "t", the first rewritten in the old form if old.
func newPostingsPartition(t *testing.T, fx *postingsFixture, old bool) (*boltPartition, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "l0.db")
	require.NoError(t, createBoltPartition(path, true))
	f, err := openBoltPartition(path, false, true)
	require.NoError(t, err)
	require.NoError(t, f.Append("t", fx.flush1()))
	if old {
		require.NoError(t, f.db.Update(func(tx *bbolt.Tx) error {
			toOldPostings(t, tx.Bucket(bucketTenants).Bucket([]byte("t")).Bucket(bucketPostings))
			return nil
		}))
	}
	require.NoError(t, f.Append("t", fx.flush2()))
	return f, path
}

// TestBoltPartition_PurgeSharedEntry removes series from entries that list
// several: a series in the middle of an entry, the first one (whose ID is
// in the key), and every series of a pair, whose label_values entry must
// go too; in a new file and in a mixed one. After each purge the postings
// hold exactly the pairs of the remaining series, reads agree, and the
// file passes the check.
func TestBoltPartition_PurgeSharedEntry(t *testing.T) {
	eq := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	for _, old := range []bool{false, true} {
		t.Run(fmt.Sprintf("old=%v", old), func(t *testing.T) {
			fx := newPostingsFixture()
			f, path := newPostingsPartition(t, fx, old)
			gone := map[string]bool{}
			for _, ms := range [][]*labels.Matcher{
				{eq("pod", "p04")},   // job="a" in the middle of its first entry
				{eq("pod", "p00")},   // the first ID of several entries
				{eq("job", "v\xff")}, // every series of a pair
			} {
				flt := &tenantFilter{cutoff: math.MinInt64, tombstones: []Tombstone{{MinTime: math.MinInt64, MaxTime: math.MaxInt64, Matchers: ms}}}
				require.NoError(t, f.purge("t", flt))
				for _, l := range fx.lbls {
					if matchesAll(l, ms) {
						gone[l.String()] = true
					}
				}
				requirePostingsOf(t, f, fx, gone)
			}
			got, err := f.Select("t", 0, 200, SelectOptions{SkipChunks: true}, []*labels.Matcher{eq("job", "a")})
			require.NoError(t, err)
			require.Len(t, got, 6) // pods 08, 12, ..., 28
			values, err := f.LabelValues("t", "job", nil)
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b", "v"}, values)
			require.NoError(t, f.Close())
			require.NoError(t, checkBoltPartition(path))
		})
	}
}

// requirePostingsOf checks that the postings of tenant "t" in f list
// exactly the pairs of the fixture's series not in gone, by their IDs.
func requirePostingsOf(t *testing.T, f *boltPartition, fx *postingsFixture, gone map[string]bool) {
	t.Helper()
	require.NoError(t, f.db.View(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte("t"))
		want := map[string][]uint64{}
		ids := map[string]uint64{}
		require.NoError(t, tb.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
			ids[string(v)] = binary.BigEndian.Uint64(k)
			return nil
		}))
		for _, l := range fx.lbls {
			if gone[l.String()] {
				continue
			}
			enc, err := appendLabels(nil, l)
			require.NoError(t, err)
			id, ok := ids[string(enc)]
			require.True(t, ok, "series %s missing", l)
			l.Range(func(l labels.Label) {
				pair := string(appendValuePrefix(nil, l.Name, l.Value))
				want[pair] = append(want[pair], id)
			})
		}
		for _, v := range want {
			slices.Sort(v)
		}
		got, err := readPostings(tb.Bucket(bucketPostings))
		require.NoError(t, err)
		require.Equal(t, want, got)
		return nil
	}))
}

// TestCheck_MalformedPostingsValue damages the value of one postings entry
// in each way a value can be malformed: Check reports corruption (and does
// not panic), and so do the reads that decode the entry.
func TestCheck_MalformedPostingsValue(t *testing.T) {
	for name, v := range map[string][]byte{
		"truncated uvarint": {0x80},
		"zero gap":          {0x01, 0x00},
		"overlong uvarint":  bytes.Repeat([]byte{0xff}, 11),
		"past 2^64-1":       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"unknown series":    {0x01, 0x7f},
	} {
		t.Run(name, func(t *testing.T) {
			fx := newPostingsFixture()
			path := filepath.Join(t.TempDir(), "chunks.db")
			s, err := Open(path, Options{NoSync: true})
			require.NoError(t, err)
			require.NoError(t, s.Append(fx.flush1()))
			require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(bucketPostings)
				k, _ := b.Cursor().Seek(appendValuePrefix(nil, "job", "a"))
				return b.Put(bytes.Clone(k), v)
			}))
			_, err = s.Select(0, 200, SelectOptions{SkipChunks: true}, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
			if name != "unknown series" { // decodes; Check finds the series missing
				require.ErrorIs(t, err, ErrCorrupt)
				_, err = s.LabelValues("job", 0, 200)
				require.ErrorIs(t, err, ErrCorrupt)
				_, err = s.LabelNames(50, 200)
				require.ErrorIs(t, err, ErrCorrupt)
			}
			require.NoError(t, s.Close())
			require.ErrorIs(t, Check(path), ErrCorrupt)
		})
	}
}

// TestChunkStore_FailedAppendWritesNoPostings checks that an Append
// rejected after creating series leaves no postings entry behind: the
// entries of a transaction are written in it, at its end, so they commit
// with the series they list or not at all.
func TestChunkStore_FailedAppendWritesNoPostings(t *testing.T) {
	fx := newPostingsFixture()
	s, _ := newTestStore(t)
	batch := fx.flush1()
	batch = append(batch, seriesChunkAt(labels.FromStrings("a", ""), 0)) // no label with a value
	require.ErrorIs(t, s.Append(batch), ErrInvalidLabels)
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		require.Zero(t, tx.Bucket(bucketPostings).Stats().KeyN)
		require.Zero(t, tx.Bucket(bucketSeries).Stats().KeyN)
		return nil
	}))
}

// TestOpen_UpgradesOneIDListVersion checks that files of the versions
// before postings entries listed several series still open, read-only
// without a write, and that a writable open raises their version, so that
// binaries of those versions refuse them afterwards.
func TestOpen_UpgradesOneIDListVersion(t *testing.T) {
	version := func(db *bbolt.DB, parent func(*bbolt.Tx) *bbolt.Bucket) (v uint64) {
		require.NoError(t, db.View(func(tx *bbolt.Tx) error {
			v = binary.BigEndian.Uint64(parent(tx).Get(keyFormatVersion))
			return nil
		}))
		return v
	}
	meta := func(tx *bbolt.Tx) *bbolt.Bucket { return tx.Bucket(bucketMeta) }
	setVersion := func(db *bbolt.DB, v uint64) {
		require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
			return meta(tx).Put(keyFormatVersion, binary.BigEndian.AppendUint64(nil, v))
		}))
	}

	path := filepath.Join(t.TempDir(), "chunks.db")
	s, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	setVersion(s.db, formatVersionOneIDList)
	require.NoError(t, s.Close())
	require.NoError(t, Check(path)) // read-only: accepted as is
	s, err = Open(path, Options{NoSync: true})
	require.NoError(t, err)
	require.Equal(t, uint64(formatVersion), version(s.db, meta))
	require.NoError(t, s.Close())

	path = filepath.Join(t.TempDir(), "l0.db")
	require.NoError(t, createBoltPartition(path, true))
	f, err := openBoltPartition(path, false, true)
	require.NoError(t, err)
	require.Equal(t, uint64(dbFormatVersion), version(f.db, meta))
	setVersion(f.db, dbFormatVersionOneIDList)
	require.NoError(t, f.Close())
	f, err = openBoltPartition(path, true, true)
	require.NoError(t, err)
	require.Equal(t, uint64(dbFormatVersionOneIDList), version(f.db, meta))
	require.NoError(t, f.Close())
	f, err = openBoltPartition(path, false, true)
	require.NoError(t, err)
	require.Equal(t, uint64(dbFormatVersion), version(f.db, meta))
	require.NoError(t, f.Close())
}
