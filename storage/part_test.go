package storage

import (
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// memSource is the in-memory model of a part: series per tenant, sorted.
type memSource map[string][]Series

func (m memSource) Tenants() []string {
	var out []string
	for t, ss := range m {
		if len(ss) > 0 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func (m memSource) Series(tenant string, fn func(Series) error) error {
	for _, s := range m[tenant] {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// sortSeries sorts ss by labels, in place.
func sortSeries(ss []Series) {
	slices.SortFunc(ss, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
}

// matches reports whether lbls match all ms.
func matches(lbls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lbls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// modelSelect is what Select must return.
func (m memSource) modelSelect(tenant string, mint, maxt int64, skip bool, ms []*labels.Matcher) []Series {
	var out []Series
	for _, s := range m[tenant] {
		if mint > maxt || !matches(s.Labels, ms) {
			continue
		}
		var chunks []Chunk
		for _, c := range s.Chunks {
			if c.MaxTime >= mint && c.MinTime <= maxt {
				chunks = append(chunks, c)
			}
		}
		if len(chunks) == 0 {
			continue
		}
		if skip {
			chunks = nil
		}
		out = append(out, Series{Labels: s.Labels, Chunks: chunks})
	}
	return out
}

func (m memSource) modelLabelNames(tenant string, ms []*labels.Matcher) []string {
	seen := map[string]bool{}
	for _, s := range m[tenant] {
		if matches(s.Labels, ms) {
			s.Labels.Range(func(l labels.Label) { seen[l.Name] = true })
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (m memSource) modelLabelValues(tenant, name string, ms []*labels.Matcher) []string {
	seen := map[string]bool{}
	for _, s := range m[tenant] {
		if v := s.Labels.Get(name); v != "" && matches(s.Labels, ms) {
			seen[v] = true
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// randomSeries returns n series of tenant-specific random shapes: names
// that extend each other, optional labels, 1 to 4 chunks each.
func randomSeries(t testing.TB, rng *rand.Rand, n int, tag string) []Series {
	names := []string{"up", "http_requests_total", "http_requests", "node_load1", "a", "ab", "b"}
	seen := map[string]bool{}
	var out []Series
	for len(out) < n {
		b := labels.NewScratchBuilder(6)
		b.Add("__name__", names[rng.IntN(len(names))])
		b.Add("instance", fmt.Sprintf("10.0.%d.%d:9090", rng.IntN(3), rng.IntN(20)))
		b.Add("job", []string{"api", "db", "web", "api-" + tag}[rng.IntN(4)])
		if rng.IntN(3) == 0 {
			b.Add("env", []string{"prod", "dev", ""}[rng.IntN(3)])
		}
		if rng.IntN(4) == 0 {
			b.Add("code", fmt.Sprint(200+100*rng.IntN(4)))
		}
		if rng.IntN(5) == 0 {
			b.Add("e", "x\xffy") // a value with byte 0xff
		}
		b.Sort()
		lbls := b.Labels()
		key := labels.NewBuilder(lbls).Labels().String()
		if seen[key] {
			continue
		}
		seen[key] = true
		// Drop empty values as the part does, so the model compares equal.
		lbls = labels.NewBuilder(lbls).Labels()
		var chunks []Chunk
		ts := int64(rng.IntN(1000)) - 500
		for range 1 + rng.IntN(4) {
			var ss []sample
			v := rng.Float64()*100 - 50 // values cross zero
			for range 1 + rng.IntN(150) {
				ss = append(ss, sample{ts, v})
				ts += 1 + int64(rng.IntN(30))
				v += float64(rng.IntN(10)) - 4.5
			}
			chunks = append(chunks, xorChunk(t, ss))
			ts += int64(rng.IntN(100))
		}
		out = append(out, Series{Labels: lbls, Chunks: chunks})
	}
	sortSeries(out)
	return out
}

// testMatchers are the matcher sets the round-trip tests query with.
func testMatchers() [][]*labels.Matcher {
	m := labels.MustNewMatcher
	return [][]*labels.Matcher{
		nil,
		{m(labels.MatchEqual, "__name__", "up")},
		{m(labels.MatchEqual, "__name__", "nope")},
		{m(labels.MatchEqual, "job", "api"), m(labels.MatchEqual, "__name__", "http_requests_total")},
		{m(labels.MatchNotEqual, "job", "api")},
		{m(labels.MatchNotEqual, "env", "prod")},
		{m(labels.MatchEqual, "env", "")},
		{m(labels.MatchNotEqual, "env", "")},
		{m(labels.MatchRegexp, "__name__", "http_.*")},
		{m(labels.MatchRegexp, "__name__", "http_requests(_total)?")},
		{m(labels.MatchRegexp, "__name__", "a|ab|zz")},
		{m(labels.MatchRegexp, "__name__", ".*b.*")},
		{m(labels.MatchRegexp, "env", "")},
		{m(labels.MatchRegexp, "env", "p.*|")},
		{m(labels.MatchRegexp, "env", ".+")},
		{m(labels.MatchNotRegexp, "env", ".+")},
		{m(labels.MatchNotRegexp, "instance", "10\\.0\\.1\\..*")},
		{m(labels.MatchRegexp, "code", "[23]00"), m(labels.MatchNotEqual, "job", "db")},
		{m(labels.MatchEqual, "absent", "")},
		{m(labels.MatchEqual, "absent", "x")},
		{m(labels.MatchNotEqual, "absent", "x")},
		{m(labels.MatchRegexp, "absent", ".*")},
		{m(labels.MatchEqual, "e", "x\xffy")},
		{m(labels.MatchRegexp, "e", "x.*")},
		{m(labels.MatchRegexp, "job", ".*"), m(labels.MatchNotRegexp, "__name__", "up|a")},
	}
}

// writeTestPart writes src to a part in a temporary directory and opens it.
// Cleanup closes it and checks it.
func writeTestPart(t testing.TB, src partSource, meta partMeta, compress bool) *part {
	t.Helper()
	return writeTestPartOpts(t, src, meta, partWriteOptions{Compress: compress})
}

func writeTestPartOpts(t testing.TB, src partSource, meta partMeta, opts partWriteOptions) *part {
	t.Helper()
	path := filepath.Join(t.TempDir(), "part")
	opts.NoSync = true
	require.NoError(t, writePart(path, meta, src, opts))
	p, err := openPart(path)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		require.NoError(t, checkPart(path))
	})
	return p
}

// smallBlobs makes blobs hold a few chunks for the test, so that series span
// blobs.
func smallBlobs(t testing.TB, n int) {
	old := partBlobTarget
	partBlobTarget = n
	t.Cleanup(func() { partBlobTarget = old })
}

func newTestModel(t testing.TB) memSource {
	rng := rand.New(rand.NewPCG(7, 8))
	return memSource{
		"team-a": randomSeries(t, rng, 300, "a"),
		"team-b": randomSeries(t, rng, 50, "b"),
		"t":      randomSeries(t, rng, 1, "t"),
	}
}

func TestPartRoundTrip(t *testing.T) {
	for name, opts := range map[string]partWriteOptions{
		"raw":                  {},
		"compress":             {Compress: true},
		"compress/notranscode": {Compress: true, NoTranscode: true},
	} {
		t.Run(name, func(t *testing.T) {
			smallBlobs(t, 1000)
			model := newTestModel(t)
			meta := partMeta{MinTime: -1000, MaxTime: 9000, Level: 2, Sources: []string{"a", "b"}}
			p := writeTestPartOpts(t, model, meta, opts)
			require.Equal(t, meta, p.Meta())
			require.Equal(t, []string{"t", "team-a", "team-b"}, p.Tenants())
			for _, tenant := range p.Tenants() {
				requirePartMatchesModel(t, p, model, tenant)
			}
			requirePartMatchesModel(t, p, model, "unknown")
		})
	}
}

// requirePartMatchesModel compares every read of tenant with the model.
func requirePartMatchesModel(t *testing.T, p *part, model memSource, tenant string) {
	var streamed []Series
	require.NoError(t, p.Series(tenant, func(s Series) error {
		streamed = append(streamed, cloneSeries(s))
		return nil
	}))
	require.Equal(t, summarize(model[tenant]), summarize(streamed))

	ranges := [][2]int64{{math.MinInt64, math.MaxInt64}, {0, 100}, {-1000, -400}, {2000, 2000}, {5000, 4000}}
	for _, ms := range testMatchers() {
		for _, r := range ranges {
			for _, skip := range []bool{false, true} {
				got, err := p.Select(tenant, r[0], r[1], SelectOptions{SkipChunks: skip}, ms)
				require.NoError(t, err)
				want := model.modelSelect(tenant, r[0], r[1], skip, ms)
				require.Equal(t, summarize(want), summarize(got), "select %v %v skip=%v", ms, r, skip)
				require.Equal(t, want, got)
			}
		}
		names, err := p.LabelNames(tenant, ms)
		require.NoError(t, err)
		require.Equal(t, model.modelLabelNames(tenant, ms), names, "label names %v", ms)
		for _, name := range []string{"__name__", "job", "env", "e", "code", "absent", ""} {
			// Both ways: from the matching series' entries, and from the
			// postings of each value.
			for _, bySeries := range []int{512, 0} {
				labelValuesBySeries = bySeries
				values, err := p.LabelValues(tenant, name, ms)
				labelValuesBySeries = 512
				require.NoError(t, err)
				require.Equal(t, model.modelLabelValues(tenant, name, ms), values, "label values %s %v", name, ms)
			}
		}
	}
	for _, s := range model[tenant] {
		last, ok, err := p.LastTime(tenant, s.Labels)
		require.NoError(t, err)
		require.True(t, ok, "%s", s.Labels)
		require.Equal(t, s.Chunks[len(s.Chunks)-1].MaxTime, last)
		// A label with an empty value is absent.
		b := labels.NewBuilder(s.Labels)
		_, ok, err = p.LastTime(tenant, b.Set("zz", "1").Labels())
		require.NoError(t, err)
		require.False(t, ok)
	}
	_, ok, err := p.LastTime(tenant, labels.FromStrings("__name__", "zzz"))
	require.NoError(t, err)
	require.False(t, ok)

	st, err := p.Stats(tenant)
	require.NoError(t, err)
	want := TenantPartitionStats{Partition: PartitionInfo{
		Path: p.path, MinTime: p.meta.MinTime, MaxTime: p.meta.MaxTime, Level: p.meta.Level,
		Bytes: p.size, Tenants: len(p.tenants),
	}}
	if len(model[tenant]) > 0 {
		want.MinTime, want.MaxTime = math.MaxInt64, math.MinInt64
		for _, s := range model[tenant] {
			want.Series++
			for _, c := range s.Chunks {
				want.Chunks++
				want.Samples += int64(len(chunkSamples(t, c)))
				want.MinTime = min(want.MinTime, c.MinTime)
				want.MaxTime = max(want.MaxTime, c.MaxTime)
			}
		}
		require.Positive(t, st.Bytes)
		want.Bytes = st.Bytes
	}
	require.Equal(t, want, st)
}

// summarize renders series compactly for readable failures: labels, then
// each chunk's range, encoding, length and CRC.
func summarize(ss []Series) []string {
	var out []string
	for _, s := range ss {
		line := s.Labels.String()
		if s.Chunks == nil {
			line += " nil"
		}
		for _, c := range s.Chunks {
			line += fmt.Sprintf(" [%d,%d]e%d/%d/%08x", c.MinTime, c.MaxTime, c.Encoding, len(c.Data), crc32.ChecksumIEEE(c.Data))
		}
		out = append(out, line)
	}
	return out
}

// cloneSeries copies the chunk data of s, which Series hands out only for
// the duration of its callback.
func cloneSeries(s Series) Series {
	out := Series{Labels: s.Labels, Chunks: slices.Clone(s.Chunks)}
	for i := range out.Chunks {
		out.Chunks[i].Data = slices.Clone(out.Chunks[i].Data)
	}
	return out
}

// TestPartSymbolCache reads a part twice, the second time from its symbol
// cache, with the cache bounded to one block so that most reads go past
// it: every read must match the model either way.
func TestPartSymbolCache(t *testing.T) {
	old := symbolCacheBlocks
	symbolCacheBlocks = 1
	t.Cleanup(func() { symbolCacheBlocks = old })
	model := newTestModel(t)
	p := writeTestPartOpts(t, model, partMeta{MinTime: -1000, MaxTime: 9000, Level: 1}, partWriteOptions{Compress: true})
	for range 2 {
		requirePartMatchesModel(t, p, model, "team-a")
	}
	c := p.symbolCacheOf("team-a")
	require.Len(t, c.blocks, 1)
}
