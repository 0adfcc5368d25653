package storage

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs
)

// newTestDB opens a DB in a temporary directory. Cleanup closes it and runs
// CheckDB on the directory.
func newTestDB(t testing.TB, opts DBOptions) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	return openTestDB(t, dir, opts), dir
}

// openTestDB opens the DB in dir. Cleanup closes it and runs CheckDB.
func openTestDB(t testing.TB, dir string, opts DBOptions) *DB {
	t.Helper()
	opts.NoSync = true
	db, err := OpenDB(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, db.Close())
		require.NoError(t, CheckDB(dir))
	})
	return db
}

// model is what a DB should hold: tenant -> series key -> samples in time
// order.
type model map[string]map[string]*modelSeries

type modelSeries struct {
	lbls    labels.Labels
	samples []sample
}

// add records the samples of batch for tenant.
func (m model) add(t testing.TB, tenant string, batch []Series) {
	if m[tenant] == nil {
		m[tenant] = map[string]*modelSeries{}
	}
	for _, s := range batch {
		ms := m[tenant][s.Labels.String()]
		if ms == nil {
			ms = &modelSeries{lbls: s.Labels}
			m[tenant][s.Labels.String()] = ms
		}
		for _, c := range s.Chunks {
			ms.samples = append(ms.samples, chunkSamples(t, c)...)
		}
	}
}

// deleteRange drops the samples in [mint, maxt] of tenant's series that
// match all of ms.
func (m model) deleteRange(tenant string, mint, maxt int64, ms ...*labels.Matcher) {
	for k, s := range m[tenant] {
		if !tombstoneMatches(Tombstone{Matchers: ms}, s.lbls) {
			continue
		}
		s.samples = slices.DeleteFunc(s.samples, func(x sample) bool { return x.t >= mint && x.t <= maxt })
		if len(s.samples) == 0 {
			delete(m[tenant], k)
		}
	}
}

// selectModel returns tenant's series matching ms with samples in [mint,
// maxt], sorted by labels, keeping only those samples.
func (m model) selectModel(tenant string, mint, maxt int64, ms ...*labels.Matcher) []modelSeries {
	var out []modelSeries
	for _, s := range m[tenant] {
		if !tombstoneMatches(Tombstone{Matchers: ms}, s.lbls) {
			continue
		}
		var in []sample
		for _, x := range s.samples {
			if x.t >= mint && x.t <= maxt {
				in = append(in, x)
			}
		}
		if len(in) > 0 {
			out = append(out, modelSeries{lbls: s.lbls, samples: in})
		}
	}
	slices.SortFunc(out, func(a, b modelSeries) int { return labels.Compare(a.lbls, b.lbls) })
	return out
}

// samples counts tenant's samples.
func (m model) samples(tenant string) int64 {
	var n int64
	for _, s := range m[tenant] {
		n += int64(len(s.samples))
	}
	return n
}

// requireSelect checks that db answers Select like the model, samples
// outside [mint, maxt] aside, and that chunks are in order.
func requireSelect(t testing.TB, db *DB, m model, tenant string, mint, maxt int64, ms ...*labels.Matcher) {
	t.Helper()
	want := m.selectModel(tenant, mint, maxt, ms...)
	for _, keep := range []bool{false, true} {
		requireSelected(t, db, want, SelectOptions{KeepTranscoded: keep}, tenant, mint, maxt, ms...)
	}
	skip, err := db.Select(tenant, mint, maxt, SelectOptions{SkipChunks: true}, ms...)
	require.NoError(t, err)
	require.Len(t, skip, len(want))
}

// requireSelected checks one Select of requireSelect: without
// KeepTranscoded every chunk is a chunkenc one.
func requireSelected(t testing.TB, db *DB, want []modelSeries, opts SelectOptions, tenant string, mint, maxt int64, ms ...*labels.Matcher) {
	t.Helper()
	got, err := db.Select(tenant, mint, maxt, opts, ms...)
	require.NoError(t, err)
	require.Len(t, got, len(want), "tenant %s [%d, %d] %v", tenant, mint, maxt, ms)
	for i := range want {
		require.Equal(t, want[i].lbls.String(), got[i].Labels.String())
		var in []sample
		for j, c := range got[i].Chunks {
			if j > 0 {
				require.Greater(t, c.MinTime, got[i].Chunks[j-1].MaxTime, "chunks of %s overlap", got[i].Labels)
			}
			if !opts.KeepTranscoded {
				require.NotEqual(t, EncTranscodedXOR, c.Encoding)
			}
			for _, x := range chunkSamples(t, c) {
				if x.t >= mint && x.t <= maxt {
					in = append(in, x)
				}
			}
		}
		requireSameSamples(t, want[i].samples, in, "series %s (%+v)", want[i].lbls, opts)
	}
}

// storedSamples sums the samples tenant has in the partitions, so that a
// chunk stored twice counts twice.
func storedSamples(t testing.TB, db *DB, tenant string) int64 {
	t.Helper()
	st, err := db.TenantStats(tenant)
	require.NoError(t, err)
	var n int64
	for _, s := range st {
		n += s.Samples
	}
	return n
}

// genBatch returns, for each of n series of job, the chunks with samples
// every step ms in [from, to), cut at every chunkSpan; values derive from
// the time and the series number.
func genBatch(t testing.TB, job string, n int, from, to, step, chunkSpan int64) []Series {
	var out []Series
	for i := range n {
		s := Series{Labels: labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%3), "instance", fmt.Sprintf("host-%d", i), "job", job)}
		for c := from; c < to; c += chunkSpan {
			var ss []sample
			for ts := c; ts < min(c+chunkSpan, to); ts += step {
				ss = append(ss, sample{ts, float64(ts/step) + float64(i)*0.5})
			}
			s.Chunks = append(s.Chunks, xorChunk(t, ss))
		}
		out = append(out, s)
	}
	return out
}

// copyDir copies the files of src into a new temporary directory, as a
// crash would leave them.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		out, err := os.Create(filepath.Join(dst, e.Name()))
		require.NoError(t, err)
		_, err = io.Copy(out, in)
		require.NoError(t, err)
		require.NoError(t, in.Close())
		require.NoError(t, out.Close())
	}
	return dst
}

// partitionFiles returns the names of the partition files in dir.
func partitionFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if _, ok := parsePartitionName(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out
}

var (
	all = []int64{math.MinInt64, math.MaxInt64}
)
