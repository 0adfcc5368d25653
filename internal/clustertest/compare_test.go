package clustertest

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// The checkers the end-to-end tests rely on must be able to fail: these run
// without processes, also in -short mode.
func TestDiffSamples(t *testing.T) {
	m := map[string]string{"__name__": "x"}
	ser := func(metric map[string]string, ts ...int64) Series {
		s := Series{Metric: metric}
		for _, t := range ts {
			s.Samples = append(s.Samples, Sample{T: t, V: float64(t)})
		}
		return s
	}
	want := []Series{ser(m, 1, 2, 3)}
	require.Empty(t, DiffSamples(want, []Series{ser(m, 1, 2, 3)}))
	nan := func() []Series {
		s := ser(m, 1, 2, 3)
		s.Samples[2].V = math.NaN()
		return []Series{s}
	}
	require.Empty(t, DiffSamples(nan(), nan()), "NaN equals NaN")
	require.NotEmpty(t, DiffSamples(want, nan()))
	require.NotEmpty(t, DiffSamples(want, []Series{ser(map[string]string{"__name__": "x", "a": "b"}, 1, 2, 3)}), "another label set")

	f := func(got []Series, wantMsg string) {
		t.Helper()
		d := DiffSamples(want, got)
		require.Contains(t, d, wantMsg)
	}
	f([]Series{ser(m, 1, 2, 2, 3)}, "0 missing, 1 duplicated, 0 unexpected, 0 wrong value")
	f([]Series{ser(m, 1, 3)}, "1 missing, 0 duplicated, 0 unexpected, 0 wrong value")
	f([]Series{ser(m, 1, 2, 3, 4)}, "0 missing, 0 duplicated, 1 unexpected, 0 wrong value")
	wrong := ser(m, 1, 2, 3)
	wrong.Samples[1].V = 2.5
	f([]Series{wrong}, "0 missing, 0 duplicated, 0 unexpected, 1 wrong value")
	f(nil, `series {__name__="x"}: missing entirely (3 samples)`)
	f([]Series{ser(m, 1, 2, 3), ser(map[string]string{"__name__": "y"}, 1)}, `series {__name__="y"}: unexpected`)
}

func TestResultCount(t *testing.T) {
	f := func(data string, want int) {
		t.Helper()
		require.Equal(t, want, ResultCount(DecodeJSON(t, []byte(data))))
	}
	f(`{"resultType":"vector","result":[]}`, 0)
	f(`{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}`, 1)
	f(`{"resultType":"matrix","result":[{"metric":{},"values":[]},{"metric":{},"values":[]}]}`, 2)
	f(`{"resultType":"scalar","result":[1,"1"]}`, 1)
	f(`["a","b"]`, 2)
	f(`[]`, 0)
	f(`{}`, 0)
}

func TestSortVector(t *testing.T) {
	got := SortVector(DecodeJSON(t, []byte(`{"resultType":"vector","result":[
		{"metric":{"job":"b"},"value":[1,"1"]},{"metric":{"job":"a","x":"1"},"value":[1,"2"]},{"metric":{"job":"a"},"value":[1,"3"]}]}`)))
	want := DecodeJSON(t, []byte(`{"resultType":"vector","result":[
		{"metric":{"job":"a"},"value":[1,"3"]},{"metric":{"job":"a","x":"1"},"value":[1,"2"]},{"metric":{"job":"b"},"value":[1,"1"]}]}`))
	require.Empty(t, cmp.Diff(want, got))
}

// TestDiffJSON checks diffJSON's fast path against cmp.Diff: key order does
// not matter, every difference of value, number literal or type does.
func TestDiffJSON(t *testing.T) {
	decode := func(s string) any { return DecodeJSON(t, []byte(s)) }
	base := `{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1,"1"],[2,"NaN"]]}]}`
	same := `{"result":[{"values":[[1,"1"],[2,"NaN"]],"metric":{"b":"2","a":"1"}}],"resultType":"matrix"}`
	require.Empty(t, diffJSON(decode(base), decode(same)))
	require.Empty(t, diffJSON(Answer{Code: 200, Data: decode(base)}, Answer{Code: 200, Data: decode(same)}))
	for _, other := range []string{
		`{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1,"1"],[2,"+Inf"]]}]}`,
		`{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1.0,"1"],[2,"NaN"]]}]}`,
		`{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[[1,"1"],[2,"NaN"]]}]}`,
		`{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1,"1"]]}]}`,
		`{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1,1],[2,"NaN"]]}]}`,
		`{"resultType":"matrix","result":null}`,
	} {
		d := diffJSON(decode(base), decode(other))
		require.NotEmpty(t, d, other)
		require.Equal(t, cmp.Diff(decode(base), decode(other)), d, other)
	}
	require.NotEmpty(t, diffJSON(Answer{Code: 200, Data: decode(base)}, Answer{Code: 503, Data: decode(base)}))
}
