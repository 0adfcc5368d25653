package storage

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"
)

// fixture is a small data set appended in three batches:
//
//	series                                         chunks (time ranges)
//	a {__name__="up", instance="a:1", job="api"}    [0,90] [100,190] [200,290]
//	b {__name__="up", instance="b:1", job="db"}     [0,90]
//	c {__name__="http_requests_total", code="200", job="api"}
//	                                                [50,140] [150,240]
//	d {__name__="http_requests_total", code="500", env="prod", job="api"}
//	                                                [300,390]
//
// Sorted by labels the series are c, d, a, b.
type fixture struct {
	labels  map[string]labels.Labels
	samples map[string][][]sample
	chunks  map[string][]Chunk
	batches [][]Series
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{labels: map[string]labels.Labels{}, samples: map[string][][]sample{}, chunks: map[string][]Chunk{}}
	f.add(t, "a", labels.FromStrings("__name__", "up", "instance", "a:1", "job", "api"), 0, 100, 200)
	f.add(t, "b", labels.FromStrings("__name__", "up", "instance", "b:1", "job", "db"), 0)
	f.add(t, "c", labels.FromStrings("__name__", "http_requests_total", "code", "200", "job", "api"), 50, 150)
	f.add(t, "d", labels.FromStrings("__name__", "http_requests_total", "code", "500", "env", "prod", "job", "api"), 300)
	f.batches = [][]Series{
		{f.series("a", 0), f.series("b", 0), f.series("c", 0)},
		{f.series("a", 1), f.series("c", 1), f.series("d", 0)},
		{f.series("a", 2)},
	}
	return f
}

// add defines series name with one chunk of 10 samples, 10ms apart, from
// each start. Values include a stale marker and a NaN.
func (f *fixture) add(t testing.TB, name string, lbls labels.Labels, starts ...int64) {
	f.labels[name] = lbls
	for ci, start := range starts {
		var ss []sample
		for i := range int64(10) {
			v := float64(start+i) * 1.5
			switch {
			case ci == 0 && i == 3:
				v = math.Float64frombits(value.StaleNaN)
			case ci == 0 && i == 4:
				v = math.NaN()
			}
			ss = append(ss, sample{start + 10*i, v})
		}
		f.samples[name] = append(f.samples[name], ss)
		f.chunks[name] = append(f.chunks[name], xorChunk(t, ss))
	}
}

// series returns series name with its chunks at the given indexes.
func (f *fixture) series(name string, idx ...int) Series {
	s := Series{Labels: f.labels[name]}
	for _, i := range idx {
		s.Chunks = append(s.Chunks, f.chunks[name][i])
	}
	return s
}

func (f *fixture) appendAll(t testing.TB, s *ChunkStore) {
	t.Helper()
	for _, b := range f.batches {
		require.NoError(t, s.Append(b))
	}
}

// ref names a fixture series and the indexes of its expected chunks.
type ref struct {
	name   string
	chunks []int
}

// want builds the expected Select result.
func (f *fixture) want(refs []ref, skipChunks bool) []Series {
	var out []Series
	for _, r := range refs {
		if skipChunks {
			out = append(out, Series{Labels: f.labels[r.name]})
			continue
		}
		out = append(out, f.series(r.name, r.chunks...))
	}
	return out
}

func eq(n, v string) *labels.Matcher  { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
func neq(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchNotEqual, n, v) }
func re(n, v string) *labels.Matcher  { return labels.MustNewMatcher(labels.MatchRegexp, n, v) }
func nre(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchNotRegexp, n, v) }

const (
	minT = math.MinInt64
	maxT = math.MaxInt64
)

var selectCases = []struct {
	name       string
	mint, maxt int64
	ms         []*labels.Matcher
	skipChunks bool
	want       []ref
}{
	{"equal", minT, maxT, []*labels.Matcher{eq("__name__", "up")}, false, []ref{{"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"no matchers", minT, maxT, nil, false, []ref{{"c", []int{0, 1}}, {"d", []int{0}}, {"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"chunk boundaries inclusive", 90, 100, []*labels.Matcher{eq("job", "api")}, false, []ref{{"c", []int{0}}, {"a", []int{0, 1}}}},
	{"gap between chunks", 91, 99, []*labels.Matcher{eq("__name__", "up")}, false, nil},
	{"point at chunk end", 290, 290, []*labels.Matcher{eq("__name__", "up")}, false, []ref{{"a", []int{2}}}},
	{"point at chunk start", 200, 200, []*labels.Matcher{eq("__name__", "up")}, false, []ref{{"a", []int{2}}}},
	{"after last chunk", 291, maxT, []*labels.Matcher{eq("__name__", "up")}, false, nil},
	{"before first chunk", minT, -1, nil, false, nil},
	{"mint after maxt", 100, 0, nil, false, nil},
	{"not equal", minT, maxT, []*labels.Matcher{neq("job", "api")}, false, []ref{{"b", []int{0}}}},
	{"not equal on missing label", minT, maxT, []*labels.Matcher{neq("env", "prod")}, false, []ref{{"c", []int{0, 1}}, {"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"equal empty", minT, maxT, []*labels.Matcher{eq("env", "")}, false, []ref{{"c", []int{0, 1}}, {"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"regexp dot star", 300, 300, []*labels.Matcher{re("env", ".*")}, false, []ref{{"d", []int{0}}}},
	{"regexp dot plus", minT, maxT, []*labels.Matcher{re("env", ".+")}, false, []ref{{"d", []int{0}}}},
	{"not regexp on missing label", minT, maxT, []*labels.Matcher{nre("env", "pro.")}, false, []ref{{"c", []int{0, 1}}, {"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"regexp prefix", minT, maxT, []*labels.Matcher{re("instance", "a.*")}, false, []ref{{"a", []int{0, 1, 2}}}},
	{"regexp set", minT, maxT, []*labels.Matcher{re("__name__", "up|nope")}, false, []ref{{"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"regexp scan", minT, maxT, []*labels.Matcher{re("code", "2..")}, false, []ref{{"c", []int{0, 1}}}},
	{"not regexp", minT, maxT, []*labels.Matcher{nre("code", "2..")}, false, []ref{{"d", []int{0}}, {"a", []int{0, 1, 2}}, {"b", []int{0}}}},
	{"regexp matching empty", minT, maxT, []*labels.Matcher{re("job", "db|")}, false, []ref{{"b", []int{0}}}},
	{"equal and not equal", minT, maxT, []*labels.Matcher{eq("__name__", "up"), neq("job", "db")}, false, []ref{{"a", []int{0, 1, 2}}}},
	{"two regexps and time", 150, 300, []*labels.Matcher{eq("job", "api"), re("code", ".+")}, false, []ref{{"c", []int{1}}, {"d", []int{0}}}},
	{"negatives exclude all", minT, maxT, []*labels.Matcher{neq("__name__", "up"), neq("__name__", "http_requests_total")}, false, nil},
	{"unknown value", minT, maxT, []*labels.Matcher{eq("__name__", "nope")}, false, nil},
	{"unknown label", minT, maxT, []*labels.Matcher{eq("foo", "bar")}, false, nil},
	{"skip chunks", 95, 150, []*labels.Matcher{eq("__name__", "up")}, true, []ref{{"a", nil}}},
	{"skip chunks all", minT, maxT, nil, true, []ref{{"c", nil}, {"d", nil}, {"a", nil}, {"b", nil}}},
}

var labelNamesCases = []struct {
	name       string
	mint, maxt int64
	ms         []*labels.Matcher
	want       []string
}{
	{"all", minT, maxT, nil, []string{"__name__", "code", "env", "instance", "job"}},
	{"time range", 300, 400, nil, []string{"__name__", "code", "env", "job"}},
	{"empty time range", 291, 299, nil, nil},
	{"matcher", minT, maxT, []*labels.Matcher{eq("job", "db")}, []string{"__name__", "instance", "job"}},
	{"regexp matcher", minT, maxT, []*labels.Matcher{re("env", ".+")}, []string{"__name__", "code", "env", "job"}},
	{"matcher and time", 0, 50, []*labels.Matcher{eq("__name__", "http_requests_total")}, []string{"__name__", "code", "job"}},
	{"no match", minT, maxT, []*labels.Matcher{eq("job", "nope")}, nil},
}

var labelValuesCases = []struct {
	name       string
	label      string
	mint, maxt int64
	ms         []*labels.Matcher
	want       []string
}{
	{"all", "job", minT, maxT, nil, []string{"api", "db"}},
	{"time range", "job", 300, 400, nil, []string{"api"}},
	{"matcher", "__name__", minT, maxT, []*labels.Matcher{eq("job", "db")}, []string{"up"}},
	{"two values", "code", minT, maxT, nil, []string{"200", "500"}},
	{"time at chunk end", "code", 0, 50, nil, []string{"200"}},
	{"one value", "env", minT, maxT, nil, []string{"prod"}},
	{"unknown label", "nope", minT, maxT, nil, nil},
	{"label absent from matching series", "instance", minT, maxT, []*labels.Matcher{eq("__name__", "http_requests_total")}, nil},
	{"negative matcher and time", "__name__", 250, 400, []*labels.Matcher{neq("env", "prod")}, []string{"up"}},
	{"empty name", "", minT, maxT, nil, nil},
}

// checkQueries asserts the answers of every query over the fixture.
func checkQueries(t *testing.T, s *ChunkStore, f *fixture) {
	for _, c := range selectCases {
		t.Run("select/"+c.name, func(t *testing.T) {
			got, err := s.Select(c.mint, c.maxt, SelectOptions{SkipChunks: c.skipChunks}, c.ms...)
			require.NoError(t, err)
			require.Equal(t, f.want(c.want, c.skipChunks), got)
			for i, r := range c.want {
				for j, ci := range r.chunks {
					requireSameSamples(t, f.samples[r.name][ci], chunkSamples(t, got[i].Chunks[j]), "series %s chunk %d", r.name, ci)
				}
			}
		})
	}
	for _, c := range labelNamesCases {
		t.Run("label_names/"+c.name, func(t *testing.T) {
			got, err := s.LabelNames(c.mint, c.maxt, c.ms...)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	for _, c := range labelValuesCases {
		t.Run("label_values/"+c.name, func(t *testing.T) {
			got, err := s.LabelValues(c.label, c.mint, c.maxt, c.ms...)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	t.Run("last_time", func(t *testing.T) {
		for name, want := range map[string]int64{"a": 290, "b": 90, "c": 240, "d": 390} {
			got, ok, err := s.LastTime(f.labels[name])
			require.NoError(t, err)
			require.True(t, ok, name)
			require.Equal(t, want, got, name)
		}
		_, ok, err := s.LastTime(labels.FromStrings("__name__", "up"))
		require.NoError(t, err)
		require.False(t, ok)
	})
}

func TestChunkStore_RoundTrip(t *testing.T) {
	f := newFixture(t)
	s, path := newTestStore(t)
	f.appendAll(t, s)
	checkQueries(t, s, f)

	require.NoError(t, s.Close())
	require.NoError(t, Check(path))
	t.Run("reopened", func(t *testing.T) {
		checkQueries(t, openTestStore(t, path), f)
	})
}

func TestChunkStore_SelectResultOwnedByCaller(t *testing.T) {
	f := newFixture(t)
	s, _ := newTestStore(t)
	f.appendAll(t, s)
	got, err := s.Select(minT, maxT, SelectOptions{}, eq("__name__", "up"))
	require.NoError(t, err)
	// Later writes must not change a returned result (it is copied out of
	// bbolt's memory map, which these writes remap).
	for i := range 200 {
		lbls := labels.FromStrings("__name__", "filler", "i", string(rune('a'+i%26))+string(rune('a'+i/26)))
		require.NoError(t, s.Append([]Series{{Labels: lbls, Chunks: []Chunk{f.chunks["a"][0]}}}))
	}
	require.Equal(t, f.want([]ref{{"a", []int{0, 1, 2}}, {"b", []int{0}}}, false), got)
}
