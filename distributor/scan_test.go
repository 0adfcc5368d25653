package distributor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// requireScannedLikeGenerated checks the fast-path series i of wc against w,
// the generated decoding of the same request: its bytes decode to w, w has
// no exemplar or histogram, and the labels, sample count and latest
// timestamp the scan found are w's.
func requireScannedLikeGenerated(t testing.TB, wc *writeCtx, i int, w *arguspb.TimeSeries) {
	t.Helper()
	s := &wc.series[i]
	var fromRaw arguspb.TimeSeries
	require.NoError(t, fromRaw.UnmarshalVT(s.raw))
	require.True(t, w.EqualVT(&fromRaw), "series %d: its bytes decode to %v, want %v", i, &fromRaw, w)
	require.Empty(t, w.Exemplars, "series %d taken by the fast path", i)
	require.Empty(t, w.Histograms, "series %d taken by the fast path", i)
	got := wc.labelsOf(i)
	require.Len(t, got, len(w.Labels), "series %d", i)
	for j, l := range w.Labels {
		require.Equal(t, l.Name, got[j].Name, "series %d label %d", i, j)
		require.Equal(t, l.Value, got[j].Value, "series %d label %d", i, j)
	}
	require.Equal(t, len(w.Samples), int(s.samples), "series %d", i)
	maxT := int64(math.MinInt64)
	for _, smp := range w.Samples {
		maxT = max(maxT, smp.TimestampMs)
	}
	require.Equal(t, maxT, s.maxT, "series %d", i)
}

// checkFastPath decodes the series encoded in b both ways and checks that
// the fast path is sound: whatever scanSeries takes the generated code
// decodes to the same series, and seriesValidator.valid passes exactly the
// series that seriesValidator.validate passes unchanged (labels, samples)
// and without exemplars. It returns whether the fast path took the series
// and whether valid passed it.
func checkFastPath(t testing.TB, b []byte, v seriesValidator) (scanned, valid bool) {
	t.Helper()
	var want arguspb.TimeSeries
	wantErr := want.UnmarshalVT(b)
	wc := &writeCtx{decoded: b, lbuf: b}
	ls, s, ok := scanSeries(b, 0, nil)
	if !ok {
		require.Empty(t, ls, "a refused series leaves no label behind")
		return false, false
	}
	require.NoError(t, wantErr, "the fast path took a series the generated code refuses: %x", b)
	wc.labels, wc.series = ls, []seriesRef{s}
	requireScannedLikeGenerated(t, wc, 0, &want)

	before := want.CloneVT()
	serr := v.validate(&want)
	unchanged := serr == nil && want.EqualVT(before)
	key, valid := v.valid(b, ls, &wc.series[0], []byte("t\xff"))
	if valid {
		require.Equal(t, appendProtoLabels([]byte("t\xff"), want.Labels), key, "the key valid appends")
	}
	require.Equal(t, unchanged, valid, "valid() against validate (%v) on %v", serr, before)
	return true, valid
}

// labelField builds the encoding of one label from its fields, for cases the
// generated marshaller never produces.
func labelField(fields ...[]byte) []byte {
	var l []byte
	for _, f := range fields {
		l = append(l, f...)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), l)
}

func strField(num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
}

func sampleField(fields ...[]byte) []byte {
	var s []byte
	for _, f := range fields {
		s = append(s, f...)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), s)
}

func valueField(v float64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), math.Float64bits(v))
}

func timeField(ts int64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), uint64(ts))
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestScanSeries_LikeGenerated runs the fast path on hand-made encodings,
// valid and not, and checks which it takes, and that it agrees with the
// generated decoder and with validate on each (checkFastPath).
func TestScanSeries_LikeGenerated(t *testing.T) {
	name := labelField(strField(1, "__name__"), strField(2, "up"))
	job := labelField(strField(1, "job"), strField(2, "x"))
	smp := sampleField(valueField(1), timeField(int64(ms(0))))
	tenByteVarint := []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01} // timestamp field, 10 bytes
	v := newSeriesValidator(testNow, defaultLimits(t))
	for _, c := range []struct {
		name           string
		b              []byte
		scanned, valid bool
	}{
		{"plain", cat(name, job, smp), true, true},
		{"no samples", cat(name, job), true, true},
		{"samples first", cat(smp, name, job, smp), true, true},
		{"zero value left out", cat(name, sampleField(timeField(int64(ms(0))))), true, true},
		{"zero timestamp left out", cat(name, sampleField(valueField(2))), true, true},
		{"empty sample", cat(name, sampleField()), true, true},
		{"timestamp before value", cat(name, sampleField(timeField(int64(ms(0))), valueField(2))), true, true},
		{"negative timestamp", cat(name, sampleField(timeField(-5))), true, true},
		{"ten-byte timestamp", cat(name, sampleField(tenByteVarint)), true, true},
		{"future sample", cat(name, smp, sampleField(valueField(1), timeField(int64(ms(1e12))))), true, false},
		{"unsorted", cat(job, name, smp), true, false},
		{"duplicate name", cat(name, job, job, smp), true, false},
		{"no metric name", cat(job, smp), true, false},
		{"empty value", cat(name, labelField(strField(1, "a"), strField(2, "")), smp), true, false},
		{"empty name", cat(labelField(strField(1, ""), strField(2, "a")), name, smp), true, false},
		{"invalid UTF-8 value", cat(name, labelField(strField(1, "job"), strField(2, "\xff")), smp), true, false},
		{"non-ASCII UTF-8", cat(name, labelField(strField(1, "job"), strField(2, "zürich")), smp), true, true},
		{"long value", cat(name, labelField(strField(1, "job"), strField(2, strings.Repeat("v", 300))), smp), true, true},
		{"value left out", cat(name, labelField(strField(1, "a")), smp), false, false},
		{"value before name", cat(name, labelField(strField(2, "x"), strField(1, "a")), smp), false, false},
		{"name twice", cat(name, labelField(strField(1, "a"), strField(1, "b"), strField(2, "x")), smp), false, false},
		{"unknown label field", cat(name, labelField(strField(1, "a"), strField(2, "x"), strField(3, "y")), smp), false, false},
		{"value twice", cat(name, sampleField(valueField(1), valueField(2))), false, false},
		{"exemplar", cat(name, smp, strField(3, "e")), false, false},
		{"histogram", cat(name, smp, strField(4, "h")), false, false},
		{"unknown field", cat(name, smp, protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1)), false, false},
		{"truncated", cat(name, smp)[:len(name)+3], false, false},
		{"truncated value", cat(name, sampleField(valueField(1)[:5])), false, false},
		{"sample of the wrong wire type", cat(name, []byte{0x10, 0x01}), false, false},
		{"non-minimal tag", cat([]byte{0x8a, 0x00}, name[1:]), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scanned, valid := checkFastPath(t, c.b, v)
			require.Equal(t, c.scanned, scanned, "taken by the fast path")
			require.Equal(t, c.valid, valid, "valid as it came")
		})
	}
}

// TestValid_Limits checks that the fast path leaves a series over a limit to
// validate, so that its rejection names the limit.
func TestValid_Limits(t *testing.T) {
	lim := defaultLimits(t)
	lim.MaxLabelNamesPerSeries, lim.MaxLabelNameLength, lim.MaxLabelValueLength = 3, 8, 6
	v := newSeriesValidator(testNow, lim)
	enc := func(ls ...string) []byte {
		b, err := series(ls, 1, ms(0)).MarshalVT()
		require.NoError(t, err)
		return b
	}
	for _, c := range []struct {
		name  string
		b     []byte
		valid bool
	}{
		{"within", enc("__name__", "up", "a", "123456", "b", "x"), true},
		{"too many labels", enc("__name__", "up", "a", "1", "b", "x", "c", "y"), false},
		{"name too long", enc("__name__", "up", "abcdefghi", "1"), false},
		{"value too long", enc("__name__", "up", "a", "1234567"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scanned, valid := checkFastPath(t, c.b, v)
			require.True(t, scanned)
			require.Equal(t, c.valid, valid)
		})
	}
}

// TestValid_RandomSeries checks checkFastPath's equivalence on random
// series, and that the fast path takes every series of the benchmark's
// request, as Prometheus encodes them.
func TestValid_RandomSeries(t *testing.T) {
	v := newSeriesValidator(testNow, defaultLimits(t))
	for _, ts := range randomRequest(rand.New(rand.NewPCG(3, 4)), 500).Timeseries {
		b, err := ts.MarshalVT()
		require.NoError(t, err)
		checkFastPath(t, b, v)
	}
	for i, ts := range benchRequest(200).Timeseries {
		b, err := ts.MarshalVT()
		require.NoError(t, err)
		scanned, valid := checkFastPath(t, b, v)
		require.True(t, scanned && valid, "series %d: %v", i, ts)
	}
}

// TestShardToken_MatchesRing checks that the token shard computes, from the
// key appendLabels builds, is ring.ShardTokenProto's, the sharding contract.
func TestShardToken_MatchesRing(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range 1000 {
		tenant := fmt.Sprintf("tenant-%d", rnd.IntN(10))
		var ls []*arguspb.Label
		for j := range rnd.IntN(12) {
			ls = append(ls, &arguspb.Label{Name: fmt.Sprintf("l%02d", j), Value: strings.Repeat("v", rnd.IntN(40))})
		}
		key := appendProtoLabels(append([]byte(tenant), 0xff), ls)
		require.Equal(t, ring.ShardTokenProto(tenant, ls), shardToken(key), "case %d", i)
	}
}

// FuzzScanSeries feeds single encoded series to the fast path: whatever it
// takes must decode the same with the generated code, and valid must agree
// with validate (see checkFastPath). Run it with:
//
//	go test -run=^$ -fuzz=FuzzScanSeries -fuzztime=20s ./distributor/
func FuzzScanSeries(f *testing.F) {
	for _, ts := range randomRequest(rand.New(rand.NewPCG(1, 1)), 20).Timeseries {
		b, err := ts.MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	lim := defaultLimits(f)
	lim.MaxLabelNamesPerSeries, lim.MaxLabelNameLength, lim.MaxLabelValueLength = 4, 8, 8
	v := newSeriesValidator(testNow, lim)
	f.Fuzz(func(t *testing.T, b []byte) { checkFastPath(t, b, v) })
}
