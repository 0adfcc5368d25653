package ingester

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// fuzzSegment returns the bytes of the WAL segment of an ingester that took
// a few pushes of two tenants (an exemplar and a metadata entry included),
// and what each tenant holds.
func fuzzSegment(f *testing.F) ([]byte, map[string]map[string][]sample) {
	ing := startIngesterDeps(f, testConfig(f, f.TempDir()), Deps{Limits: exemplarLimits{100}})
	a := []string{"__name__", "a", "job", "x"}
	b := []string{"__name__", "b"}
	push(f, ing, "t1", ts(a, sample{1, 1}, sample{2, 2}), ts(b, sample{1, 5}), withExemplars(f, a, testExemplar{"x", 1, 2}))
	_, err := ing.Push(tenantCtx("t2"), &arguspb.WriteRequest{Metadata: marshalMetadata(f,
		prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "a", Help: "A."})})
	require.NoError(f, err)
	push(f, ing, "t2", ts(a, sample{3, 3}))
	push(f, ing, "t1", ts(a, sample{4, 4}))
	want := map[string]map[string][]sample{
		"t1": {lstr(a...): {{1, 1}, {2, 2}, {4, 4}}, lstr(b...): {{1, 5}}},
		"t2": {lstr(a...): {{3, 3}}},
	}
	walDir := filepath.Join(crash(f, ing), walDirName)
	_, last, err := wlog.Segments(walDir)
	require.NoError(f, err)
	seg, err := os.ReadFile(wlog.SegmentName(walDir, last))
	require.NoError(f, err)
	return seg, want
}

// FuzzWALReplay replays a WAL segment of arbitrary bytes, or a valid segment
// followed by arbitrary bytes (a torn tail): Starting never panics; a torn
// tail is repaired, keeping every sample before it; and whatever started
// takes a push and starts again.
func FuzzWALReplay(f *testing.F) {
	valid, want := fuzzSegment(f)
	f.Add([]byte{}, true)
	f.Add([]byte{2, 0, 50, 1, 2, 3, 4, 9, 9}, true) // A first fragment with a bad CRC.
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0}, true)
	f.Add(valid, false)
	f.Add(valid[:len(valid)/2], false)
	f.Add(valid[:len(valid)-3], false)
	f.Add(append(slices.Clone(valid[:20]), valid[30:]...), false)
	f.Fuzz(func(t *testing.T, data []byte, tail bool) {
		seg := data
		if tail {
			seg = append(slices.Clone(valid), data...)
		}
		cfg := testConfig(t, t.TempDir())
		require.NoError(t, os.MkdirAll(filepath.Join(cfg.Dir, walDirName), 0o777))
		require.NoError(t, os.WriteFile(wlog.SegmentName(filepath.Join(cfg.Dir, walDirName), 0), seg, 0o666))

		ing, err := New(cfg, Deps{})
		require.NoError(t, err)
		err = ing.Starting(t.Context())
		if tail {
			require.NoError(t, err, "a torn tail is repaired")
		}
		if err != nil {
			return // Refused (a record that is not one of ours): no panic, nothing left open.
		}
		if tail {
			for id, w := range want {
				requireSamples(t, w, queryAll(t, ing, id, math.MinInt64, math.MaxInt64))
			}
		}
		_, err = ing.Push(tenantCtx("fuzz"), &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
			ts([]string{"__name__", "after"}, sample{math.MaxInt64 / 2, 1}),
		}})
		require.NoError(t, err)
		ing2 := restart(t, ing)
		got := queryAll(t, ing2, "fuzz", math.MinInt64, math.MaxInt64)
		requireSamples(t, map[string][]sample{lstr("__name__", "after"): {{math.MaxInt64 / 2, 1}}}, got)
		require.NoError(t, ing2.Stopping(t.Context()))
	})
}
