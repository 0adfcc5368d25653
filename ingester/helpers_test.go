package ingester

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig returns the flag defaults with the data directory dir and
// background loops slow enough not to interfere unless a test runs them.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	cfg.Dir = dir
	return cfg
}

// testClock is a settable clock for Ingester.now.
type testClock struct{ ms int64 }

func (c *testClock) now() time.Time { return time.UnixMilli(c.ms) }

// startIngester creates and starts an Ingester on cfg. Cleanup stops it
// (unless the test stopped or crashed it) and checks every chunk store.
func startIngester(t testing.TB, cfg Config, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	return startIngesterDeps(t, cfg, Deps{}, opts...)
}

// startIngesterDeps is startIngester with deps.
func startIngesterDeps(t testing.TB, cfg Config, deps Deps, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	ing, err := New(cfg, deps)
	require.NoError(t, err)
	for _, o := range opts {
		o(ing)
	}
	require.NoError(t, ing.Starting(t.Context()))
	require.True(t, ing.Ready())
	t.Cleanup(func() {
		if ing.Ready() {
			require.NoError(t, ing.Stopping(context.Background()))
		}
		checkStores(t, cfg.Dir)
	})
	return ing
}

// checkStores verifies the ingester's DB in dir, if any.
func checkStores(t testing.TB, dir string) {
	t.Helper()
	p := filepath.Join(dir, dbDir)
	if _, err := os.Stat(p); err == nil {
		require.NoError(t, storage.CheckDB(p), p)
	}
}

// crash simulates kill -9: it copies the data directory as it is on disk
// (WAL pages already handed to the kernel, bbolt's committed state) to a new
// directory, then releases the ingester's files without persisting or
// syncing anything more. It returns the copy, to restart from.
func crash(t testing.TB, ing *Ingester) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, os.CopyFS(dst, os.DirFS(ing.cfg.Dir)))
	ing.ready.Store(false)
	ing.stateMu.Lock()
	ing.state = stateStopping
	ing.stateMu.Unlock()
	require.NoError(t, ing.closeTenants())
	return dst
}

// restart crashes ing and starts a new Ingester on a copy of its data.
func restart(t testing.TB, ing *Ingester, opts ...func(*Ingester)) *Ingester {
	t.Helper()
	cfg := ing.cfg
	cfg.Dir = crash(t, ing)
	return startIngester(t, cfg, opts...)
}

// sample is one float sample.
type sample struct {
	t int64
	v float64
}

// series is a label set (name, value pairs) with samples.
type series struct {
	lbls    []string
	samples []sample
}

func ts(lbls []string, samples ...sample) *arguspb.TimeSeries {
	out := &arguspb.TimeSeries{}
	for i := 0; i < len(lbls); i += 2 {
		out.Labels = append(out.Labels, &arguspb.Label{Name: lbls[i], Value: lbls[i+1]})
	}
	for _, s := range samples {
		out.Samples = append(out.Samples, &arguspb.Sample{TimestampMs: s.t, Value: s.v})
	}
	return out
}

func tenantCtx(id string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(tenant.MetadataKey, id))
}

// push pushes series to ing for tenant and requires success.
func push(t testing.TB, ing *Ingester, tenantID string, tss ...*arguspb.TimeSeries) *arguspb.PushResponse {
	t.Helper()
	resp, err := ing.Push(tenantCtx(tenantID), &arguspb.WriteRequest{Timeseries: tss})
	require.NoError(t, err)
	return resp
}

// seriesStream is a grpc.ServerStreamingServer that collects what is sent.
type seriesStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*arguspb.SeriesResponse
}

func (s *seriesStream) Context() context.Context { return s.ctx }

func (s *seriesStream) Send(m *arguspb.SeriesResponse) error {
	s.msgs = append(s.msgs, m)
	return nil
}

// querySeries runs Series and returns the streamed series in order.
func querySeries(t testing.TB, ing *Ingester, tenantID string, req *arguspb.SeriesRequest) []*arguspb.StreamSeries {
	t.Helper()
	st := &seriesStream{ctx: tenantCtx(tenantID)}
	require.NoError(t, ing.Series(req, st))
	var out []*arguspb.StreamSeries
	for _, m := range st.msgs {
		require.LessOrEqual(t, len(m.Series), seriesPerMessage)
		out = append(out, m.Series...)
	}
	return out
}

// labelsString formats proto labels as {a="b", ...}.
func labelsString(ls []*arguspb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels().String()
}

// decodeSeries decodes streamed series into samples by label string,
// checking that series are sorted and chunks ordered and not overlapping.
func decodeSeries(t testing.TB, ss []*arguspb.StreamSeries) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	var prev labels.Labels
	for n, s := range ss {
		b := labels.NewScratchBuilder(len(s.Labels))
		for _, l := range s.Labels {
			b.Add(l.Name, l.Value)
		}
		lset := b.Labels()
		if n > 0 {
			require.Negative(t, labels.Compare(prev, lset), "series not sorted: %s after %s", lset, prev)
		}
		prev = lset
		var samples []sample
		lastMax := int64(math.MinInt64)
		for _, c := range s.Chunks {
			require.Equal(t, arguspb.ChunkEncoding_CHUNK_ENCODING_XOR, c.Encoding)
			require.Greater(t, c.MinTimeMs, lastMax, "chunks overlap in %s", lset)
			lastMax = c.MaxTimeMs
			ch, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
			require.NoError(t, err)
			it := ch.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				require.GreaterOrEqual(t, ts, c.MinTimeMs)
				require.LessOrEqual(t, ts, c.MaxTimeMs)
				samples = append(samples, sample{ts, v})
			}
			require.NoError(t, it.Err())
		}
		out[lset.String()] = samples
	}
	return out
}

// queryAll returns every sample of tenant in [mint, maxt] (chunks may carry
// samples outside it), by label string.
func queryAll(t testing.TB, ing *Ingester, tenantID string, mint, maxt int64, ms ...*arguspb.LabelMatcher) map[string][]sample {
	t.Helper()
	if len(ms) == 0 {
		ms = []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_RE, Name: "__name__", Value: ".+"}}
	}
	return decodeSeries(t, querySeries(t, ing, tenantID, &arguspb.SeriesRequest{MinTimeMs: mint, MaxTimeMs: maxt, Matchers: ms}))
}

// requireSamples compares samples by label string exactly, NaN payloads
// included.
func requireSamples(t testing.TB, want, got map[string][]sample) {
	t.Helper()
	require.Len(t, got, len(want), "series: want %v, got %v", keys(want), keys(got))
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "missing series %s", k)
		require.Len(t, g, len(w), "samples of %s", k)
		for i := range w {
			require.Equal(t, w[i].t, g[i].t, "sample %d of %s", i, k)
			require.Equal(t, math.Float64bits(w[i].v), math.Float64bits(g[i].v), "value of sample %d of %s", i, k)
		}
	}
}

func keys(m map[string][]sample) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// lstr is the label string of name, value pairs.
func lstr(lbls ...string) string {
	return labels.FromStrings(lbls...).String()
}

// seq returns n samples at start, start+step, ... with value float(i).
func seq(start, step int64, n int) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{t: start + int64(i)*step, v: float64(i)}
	}
	return out
}

// flushTenants flushes every tenant of ing.
func flushTenants(t testing.TB, ing *Ingester, idle idlePolicy) {
	t.Helper()
	for _, h := range ing.tenantList() {
		require.NoError(t, h.flush(t.Context(), idle))
	}
}

// truncateTenants checkpoints and truncates the WAL.
func truncateTenants(t testing.TB, ing *Ingester) {
	t.Helper()
	require.NoError(t, ing.truncateWAL(t.Context()))
}

// storedChunks returns how many chunks the store of tenant holds.
func storedChunks(t testing.TB, ing *Ingester, tenantID string) int {
	t.Helper()
	h := ing.getTenant(tenantID)
	require.NotNil(t, h)
	ss, err := h.store.Select(math.MinInt64, math.MaxInt64, storage.SelectOptions{},
		labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.NoError(t, err)
	n := 0
	for _, s := range ss {
		n += len(s.Chunks)
	}
	return n
}

func metricName(n int) []string {
	return []string{"__name__", fmt.Sprintf("m%03d", n), "job", "test"}
}

func labelsOf(lbls ...string) labels.Labels { return labels.FromStrings(lbls...) }

func lsetHash(lbls ...string) uint64 { return hashLabels(labels.FromStrings(lbls...)) }

// newTestSeries returns a series with labels lset, encoded in the symbols
// of ss, and not inserted in ss.
func newTestSeries(ss *stripeSeries, ref uint64, lset labels.Labels) *memSeries {
	return newMemSeries(chunksRef(ref), ss.syms.encode(lset), math.MinInt64, 0)
}

// lsetOf returns the labels of s, a series of ss in the head.
func lsetOf(ss *stripeSeries, s *memSeries) labels.Labels {
	lset, ok := ss.labelsOf(s)
	if !ok {
		panic(fmt.Sprintf("series %d is gone", s.ref))
	}
	return lset
}

func chunksRef(n uint64) chunks.HeadSeriesRef { return chunks.HeadSeriesRef(n) }
