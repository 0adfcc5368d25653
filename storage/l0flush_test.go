package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// TestBoltPartition_NewSeriesIndex checks the index entries that flushes of
// new series write into a level-0 file, bucket by bucket, against the ones
// derived from its series bucket: series_by_labels, postings and
// label_values hold exactly the expected keys and values. The series share
// pairs, come out of label order, and include values holding 0xff bytes,
// one of which extends another ("v" and "v\xff\x00"), so that a pair's
// postings prefix is a prefix of another's.
func TestBoltPartition_NewSeriesIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l0.db")
	require.NoError(t, createBoltPartition(path, true))
	f, err := openBoltPartition(path, false, true)
	require.NoError(t, err)
	defer f.Close()

	values := []string{"v", "v\xff\x00", "v\xff", "\xff", "a", "zz"}
	batch := func(first int, lbls ...labels.Labels) []Series {
		var out []Series
		for _, l := range lbls {
			out = append(out, Series{Labels: l, Chunks: []Chunk{{
				MinTime: int64(first), MaxTime: int64(first + 10), Encoding: chunkenc.EncXOR, Data: []byte{1, 2}}}})
		}
		return out
	}
	var first, second []labels.Labels
	for i := range 40 {
		l := labels.FromStrings("__name__", fmt.Sprintf("m%d", i%3), "job", values[i%len(values)],
			"pod", fmt.Sprintf("p%02d", 39-i), "zone", values[(i/3)%len(values)])
		if i%2 == 0 {
			first = append(first, l)
		} else {
			second = append(second, l)
		}
	}
	require.NoError(t, f.Append("t", batch(0, first...)))
	// The second flush extends the first series and creates the others.
	require.NoError(t, f.Append("t", batch(100, append(second, first...)...)))

	wantByLabels, wantLV := map[string]string{}, map[string]string{}
	gotByLabels, gotLV := map[string]string{}, map[string]string{}
	wantPostings, gotPostings := map[string][]uint64{}, map[string][]uint64{}
	require.NoError(t, f.db.View(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bucketTenants).Bucket([]byte("t"))
		require.NoError(t, tb.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
			id := binary.BigEndian.Uint64(k)
			wantByLabels[string(v)] = string(k)
			return rangeLabels(v, func(name, value []byte) bool {
				pair := string(appendValuePrefix(nil, string(name), string(value)))
				wantPostings[pair] = append(wantPostings[pair], id)
				wantLV[string(append(append(append([]byte(nil), name...), sep), value...))] = ""
				return true
			})
		}))
		var err error
		gotPostings, err = readPostings(tb.Bucket(bucketPostings))
		require.NoError(t, err)
		// One entry per pair and flush: both flushes create series of
		// most pairs.
		require.Less(t, tb.Bucket(bucketPostings).Stats().KeyN, 2*len(gotPostings)+1)
		for b, m := range map[string]map[string]string{string(bucketByLabels): gotByLabels,
			string(bucketLabelValues): gotLV} {
			require.NoError(t, tb.Bucket([]byte(b)).ForEach(func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			}))
		}
		return nil
	}))
	require.Len(t, wantByLabels, 40)
	require.Equal(t, wantByLabels, gotByLabels)
	require.Equal(t, wantPostings, gotPostings)
	require.Equal(t, wantLV, gotLV)
	require.Len(t, gotLV, 3+len(values)+40+len(values))
	require.NoError(t, f.Close())
	require.NoError(t, checkBoltPartition(path))

	f, err = openBoltPartition(path, true, true)
	require.NoError(t, err)
	got, err := f.Select("t", 0, 200, SelectOptions{SkipChunks: true},
		[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "v\xff")})
	require.NoError(t, err)
	require.Len(t, got, 7) // i%6 == 2 for i < 40
	for _, s := range got {
		require.Equal(t, "v\xff", s.Labels.Get("job"))
	}
}

// readPostings decodes a postings bucket into the IDs of each pair (name
// 0xff value 0xff), in order, whatever the entries that hold them.
func readPostings(b *bbolt.Bucket) (map[string][]uint64, error) {
	out := map[string][]uint64{}
	err := b.ForEach(func(k, v []byte) error {
		_, _, first, err := parsePostingKey(k)
		if err != nil {
			return err
		}
		pair := string(k[:len(k)-idLen])
		out[pair], err = appendPostingIDs(out[pair], first, v)
		return err
	})
	return out, err
}
