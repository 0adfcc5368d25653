package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// TestWritePartCrash stops writePart at each of its steps, as a crash
// there would, and checks that nothing is left at the part's path, that an
// incomplete temporary file never opens as a part, and that writing again
// succeeds.
func TestWritePartCrash(t *testing.T) {
	smallBlobs(t, 2000)
	old := partCommitBytes
	partCommitBytes = 5000 // several commits per tenant
	t.Cleanup(func() { partCommitBytes = old })
	model := newTestModel(t)
	crash := errors.New("crash")
	cases := []struct {
		step     string
		nth      int
		complete bool // the temporary file holds the whole part
	}{
		{"tenant", 1, false},
		{"commit", 1, false},
		{"tenant", 2, false},
		{"commit", 7, false},
		{"tenant", 3, false},
		{"sync", 1, true},
		{"rename", 1, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s#%d", c.step, c.nth), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part")
			n := 0
			hook := func(step string) error {
				if step == c.step {
					if n++; n == c.nth {
						return crash
					}
				}
				return nil
			}
			err := writePart(path, partMeta{}, model, partWriteOptions{NoSync: true, hook: hook})
			require.ErrorIs(t, err, crash)
			require.NoFileExists(t, path)
			require.FileExists(t, path+".tmp")
			p, err := openPart(path + ".tmp")
			if c.complete {
				require.NoError(t, err)
				require.NoError(t, p.Close())
			} else {
				require.ErrorIs(t, err, ErrCorrupt)
				require.Nil(t, p)
			}
			require.NoError(t, writePart(path, partMeta{Level: 1}, model, partWriteOptions{NoSync: true}))
			require.NoFileExists(t, path+".tmp")
			require.NoError(t, checkPart(path))
		})
	}
}

// TestWritePartRejects checks that bad sources fail the write and leave no
// file.
func TestWritePartRejects(t *testing.T) {
	x := xorChunk(t, []sample{{1, 1}, {2, 2}})
	y := xorChunk(t, []sample{{2, 1}, {3, 2}})
	a, b := labels.FromStrings("a", "1"), labels.FromStrings("b", "1")
	cases := map[string]struct {
		src  memSource
		want error
	}{
		"unsorted series":  {memSource{"t": {{Labels: b, Chunks: []Chunk{x}}, {Labels: a, Chunks: []Chunk{x}}}}, ErrOutOfOrderSeries},
		"duplicate series": {memSource{"t": {{Labels: a, Chunks: []Chunk{x}}, {Labels: a, Chunks: []Chunk{y}}}}, ErrOutOfOrderSeries},
		"same after dropping empty values": {memSource{"t": {
			{Labels: a, Chunks: []Chunk{x}}, {Labels: labels.FromStrings("a", "1", "b", ""), Chunks: []Chunk{y}},
		}}, ErrOutOfOrderSeries},
		"overlapping chunks": {memSource{"t": {{Labels: a, Chunks: []Chunk{x, y}}}}, ErrOutOfOrderChunk},
		"no labels":          {memSource{"t": {{Labels: labels.FromStrings("a", ""), Chunks: []Chunk{x}}}}, ErrInvalidLabels},
		"name with 0xff":     {memSource{"t": {{Labels: labels.FromStrings("a\xff", "1"), Chunks: []Chunk{x}}}}, ErrInvalidLabels},
		"one-byte chunk":     {memSource{"t": {{Labels: a, Chunks: []Chunk{{MinTime: 1, MaxTime: 1, Encoding: 1, Data: []byte{0}}}}}}, ErrInvalidChunk},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part")
			err := writePart(path, partMeta{}, c.src, partWriteOptions{NoSync: true})
			require.ErrorIs(t, err, c.want)
			require.NoFileExists(t, path)
			require.NoFileExists(t, path+".tmp")
		})
	}
}

// TestWritePartSynced writes a part with fsyncs, as DB does.
func TestWritePartSynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "part")
	require.NoError(t, writePart(path, partMeta{Level: 1}, newTestModel(t), partWriteOptions{Compress: true}))
	require.NoError(t, checkPart(path))
}

// TestPartEmpty writes parts without series: tenants without series are
// left out.
func TestPartEmpty(t *testing.T) {
	p := writeTestPart(t, memSource{"t": {{Labels: labels.FromStrings("a", "1")}}}, partMeta{MinTime: 5, MaxTime: 6}, false)
	require.Empty(t, p.Tenants())
	got, err := p.Select("t", math.MinInt64, math.MaxInt64, SelectOptions{}, nil)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, partMeta{MinTime: 5, MaxTime: 6}, p.Meta())
}

// TestPartTenantIsolation checks that tenants with the same series see only
// their own data.
func TestPartTenantIsolation(t *testing.T) {
	lbls := labels.FromStrings("__name__", "up", "job", "x")
	ca := xorChunk(t, []sample{{10, 1}, {20, 1}})
	cb := xorChunk(t, []sample{{10, 2}, {30, 2}})
	p := writeTestPart(t, memSource{
		"a": {{Labels: lbls, Chunks: []Chunk{ca}}},
		"b": {{Labels: labels.FromStrings("__name__", "only_b"), Chunks: []Chunk{cb}}, {Labels: lbls, Chunks: []Chunk{cb}}},
	}, partMeta{}, true)
	for tenant, want := range map[string][]Series{
		"a": {{Labels: lbls, Chunks: []Chunk{ca}}},
		"b": {{Labels: lbls, Chunks: []Chunk{cb}}},
		"c": nil,
	} {
		got, err := p.Select(tenant, 0, 100, SelectOptions{}, []*labels.Matcher{eq("job", "x")})
		require.NoError(t, err)
		require.Equal(t, want, got, tenant)
		last, ok, err := p.LastTime(tenant, lbls)
		require.NoError(t, err)
		require.Equal(t, want != nil, ok)
		if ok {
			require.Equal(t, want[0].Chunks[0].MaxTime, last)
		}
	}
	values, err := p.LabelValues("a", "__name__", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"up"}, values)
	st, err := p.Stats("a")
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Series)
	require.Equal(t, 2, st.Partition.Tenants)
}

// TestCheckPartDetectsCorruption flips bytes of a copy of a part, in chunk
// data, in a symbol, in a postings key, in a series entry and in the meta,
// and expects checkPart to find each.
func TestCheckPartDetectsCorruption(t *testing.T) {
	chunk := xorChunk(t, []sample{{1, 1.5}, {2, 2.25}, {3, -7.125}, {4, 1e300}})
	src := memSource{"tenant-x": {
		{Labels: labels.FromStrings("__name__", "up", "job", "job-with-a-unique-value"), Chunks: []Chunk{chunk}},
		{Labels: labels.FromStrings("__name__", "up", "job", "other-job"), Chunks: []Chunk{xorChunk(t, []sample{{5, 5}})}},
	}}
	dir := t.TempDir()
	path := filepath.Join(dir, "part")
	require.NoError(t, writePart(path, partMeta{MinTime: 1, MaxTime: 9}, src, partWriteOptions{NoSync: true}))
	require.NoError(t, checkPart(path))
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	var group []byte
	p, err := openPart(path)
	require.NoError(t, err)
	require.NoError(t, p.db.View(func(tx *bbolt.Tx) error {
		group = bytes.Clone(tx.Bucket(bucketTenants).Bucket([]byte("tenant-x")).Get(appendKindKey(nil, kindSeries, 0)))
		return nil
	}))
	require.NoError(t, p.Close())
	cases := map[string]func() int{
		"chunk data": func() int { return bytes.Index(orig, chunk.Data) + len(chunk.Data)/2 },
		"symbol": func() int {
			// The symbol block follows the postings keys in the file.
			return bytes.LastIndex(orig, []byte("job-with-a-unique-value")) + 3
		},
		"postings key": func() int { return bytes.Index(orig, []byte("pjob\xffjob-with-a-unique-value")) + 10 },
		"series entry": func() int { return bytes.Index(orig, group) + len(group) - 3 },
		"meta": func() int {
			return bytes.Index(orig, encodePartMeta(partMeta{MinTime: 1, MaxTime: 9}))
		},
	}
	for name, at := range cases {
		t.Run(name, func(t *testing.T) {
			i := at()
			require.Positive(t, i, "located in the file")
			bad := bytes.Clone(orig)
			bad[i] ^= 0x5a
			p := filepath.Join(t.TempDir(), "part")
			require.NoError(t, os.WriteFile(p, bad, 0o600))
			err := checkPart(p)
			require.ErrorIs(t, err, ErrCorrupt, "flip at %d", i)
			t.Log(err)
		})
	}
}

// TestPartManyTenants writes many small tenants into one part: they share
// transactions, and each reads back its own series only.
func TestPartManyTenants(t *testing.T) {
	const tenants = 2000
	src := memSource{}
	for i := range tenants {
		name := fmt.Sprintf("tenant-%05d", i)
		for j := range 3 {
			lbls := labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("i-%d", j), "tenant", name)
			src[name] = append(src[name], Series{Labels: lbls, Chunks: []Chunk{xorChunk(t, []sample{{int64(i), float64(j)}, {int64(i) + 15, 1}})}})
		}
	}
	p := writeTestPart(t, src, partMeta{}, true)
	require.Len(t, p.Tenants(), tenants)
	for _, i := range []int{0, 1, tenants / 2, tenants - 1} {
		name := fmt.Sprintf("tenant-%05d", i)
		got, err := p.Select(name, math.MinInt64, math.MaxInt64, SelectOptions{}, []*labels.Matcher{eq("__name__", "up")})
		require.NoError(t, err)
		require.Equal(t, src[name], got)
		values, err := p.LabelValues(name, "tenant", nil)
		require.NoError(t, err)
		require.Equal(t, []string{name}, values)
	}
	st, err := os.Stat(p.path)
	require.NoError(t, err)
	t.Logf("%d tenants of 3 series: %d bytes, %d per tenant", tenants, st.Size(), st.Size()/tenants)
}

// TestPartConcurrentReads runs every read at once from several goroutines
// (meant for -race).
func TestPartConcurrentReads(t *testing.T) {
	model := newTestModel(t)
	p := writeTestPart(t, model, partMeta{}, true)
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				s := model["team-a"][(g*20+i)%len(model["team-a"])]
				switch i % 4 {
				case 0:
					_, err = p.Select("team-a", 0, 3000, SelectOptions{}, []*labels.Matcher{re("__name__", "http.*")})
				case 1:
					_, err = p.LabelValues("team-a", "instance", []*labels.Matcher{neq("job", "db")})
				case 2:
					_, _, err = p.LastTime("team-a", s.Labels)
				case 3:
					err = p.Series("team-b", func(Series) error { return nil })
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}

// failingSource fails after giving n series of src's tenant "t".
type failingSource struct {
	memSource
	n   int
	err error
}

func (f failingSource) Series(tenant string, fn func(Series) error) error {
	for i, s := range f.memSource[tenant] {
		if i == f.n {
			return f.err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// TestWritePartSourceError checks that a source's error fails the write,
// directly and through a merge, and leaves no file.
func TestWritePartSourceError(t *testing.T) {
	model := newTestModel(t)
	boom := errors.New("boom")
	for name, src := range map[string]partSource{
		"direct": failingSource{model, 10, boom},
		"merged": mergeSources(model, failingSource{model, 10, boom}),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part")
			err := writePart(path, partMeta{}, src, partWriteOptions{NoSync: true, Compress: true})
			require.ErrorIs(t, err, boom)
			require.NoFileExists(t, path)
			require.NoFileExists(t, path+".tmp")
		})
	}
}
