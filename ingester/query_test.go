package ingester

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	_ "github.com/argus-tsdb/argus/internal/grpccodec" // The codec of every Argus process.
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/storage"
)

// matcherFixture pushes three series (one without job) at t=1..3.
func matcherFixture(t *testing.T, ing *Ingester) {
	t.Helper()
	push(t, ing, "t1",
		ts([]string{"__name__", "up", "job", "x"}, sample{1, 1}),
		ts([]string{"__name__", "up", "job", "y"}, sample{2, 2}),
		ts([]string{"__name__", "up"}, sample{3, 3}),
	)
}

func TestSeries_Matchers(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	matcherFixture(t, ing)
	x, y, none := lstr("__name__", "up", "job", "x"), lstr("__name__", "up", "job", "y"), lstr("__name__", "up")
	m := func(typ arguspb.LabelMatcher_Type, name, value string) *arguspb.LabelMatcher {
		return &arguspb.LabelMatcher{Type: typ, Name: name, Value: value}
	}
	cases := []struct {
		name string
		ms   []*arguspb.LabelMatcher
		want []string
	}{
		{"eq", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_EQ, "job", "x")}, []string{x}},
		{"neq matches missing label", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_NEQ, "job", "x")}, []string{none, y}},
		{"re", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_RE, "job", "x|y")}, []string{x, y}},
		{"re prefix", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_RE, "job", "[xy].*")}, []string{x, y}},
		{"nre matches missing label", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_NRE, "job", "x")}, []string{none, y}},
		{"eq empty is missing label", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_EQ, "job", "")}, []string{none}},
		{"re matching empty", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_RE, "job", "x|")}, []string{none, x}},
		{"neq empty is label present", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_NEQ, "job", "")}, []string{x, y}},
		{"two matchers", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_EQ, "__name__", "up"), m(arguspb.LabelMatcher_NRE, "job", "y|")}, []string{x}},
		{"no match", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_EQ, "job", "z")}, nil},
		{"unknown label eq", []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_EQ, "nope", "z")}, nil},
	}
	run := func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 10, Matchers: c.ms})
				var names []string
				for _, s := range got {
					names = append(names, labelsString(s.Labels))
				}
				require.Equal(t, c.want, names)
			})
		}
	}
	t.Run("head", run)

	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	flushTenants(t, ing, cutIdleChunks)
	require.Equal(t, 3, storedChunks(t, ing, "t1"))
	t.Run("store", run)

	_, err := ing.LabelNames(tenantCtx("t1"), &arguspb.LabelNamesRequest{
		Matchers: []*arguspb.LabelMatcher{m(arguspb.LabelMatcher_RE, "job", "(")}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// TestSeries_MergesHeadAndStore checks a series whose older chunks are
// persisted and newer ones in memory, and series only in either.
func TestSeries_MergesHeadAndStore(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	both := []string{"__name__", "both"}
	storeOnly := []string{"__name__", "store_only"}
	headOnly := []string{"__name__", "head_only"}

	push(t, ing, "t1", ts(both, seq(0, 1000, 250)...), ts(storeOnly, sample{5, 5}))
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts(both, seq(250_000, 1000, 10)...)) // store_only goes idle
	flushTenants(t, ing, cutIdleChunks)
	require.Equal(t, 3, storedChunks(t, ing, "t1")) // both: 2 full chunks; store_only: 1
	push(t, ing, "t1", ts(headOnly, sample{7, 7}))

	want := map[string][]sample{
		lstr(both...):      append(seq(0, 1000, 250), seq(250_000, 1000, 10)...),
		lstr(storeOnly...): {{5, 5}},
		lstr(headOnly...):  {{7, 7}},
	}
	requireSamples(t, want, queryAll(t, ing, "t1", 0, math.MaxInt64))

	// A range that only touches the persisted chunks of "both".
	got := querySeries(t, ing, "t1", &arguspb.SeriesRequest{MinTimeMs: 200_000, MaxTimeMs: 200_000,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "both"}}})
	require.Len(t, got, 1)
	require.Len(t, got[0].Chunks, 1)
	require.Equal(t, int64(120_000), got[0].Chunks[0].MinTimeMs)

	// The headMinT rule: a store copy of a chunk still in the head snapshot
	// is not sent twice. Simulate "persisted between the two reads" by
	// writing the head's finished chunks to the store without dropping them.
	push(t, ing, "t1", ts(both, seq(260_000, 1000, 120)...)) // cuts a chunk
	h := ing.getTenant("t1")
	head, err := h.headSeries(t.Context(), nil, headRead{mint: 0, maxt: math.MaxInt64, mode: withChunks})
	require.NoError(t, err)
	flushTenants(t, ing, keepOpenChunks)
	stored, err := h.store.Select(0, math.MaxInt64, storage.SelectOptions{}, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.NoError(t, err)
	var (
		merged []*arguspb.StreamSeries
		a      protoAlloc
	)
	require.NoError(t, mergeSeries(head, stored, withChunks, func(lset labels.Labels, chks []storage.Chunk) error {
		merged = append(merged, a.streamSeries(lset, chks))
		return nil
	}))
	want[lstr(both...)] = append(want[lstr(both...)], seq(260_000, 1000, 120)...)
	requireSamples(t, want, decodeSeries(t, merged))
}

// TestResponseBatcher checks that messages end at seriesPerMessage series or
// once past bytesPerMessage bytes, whichever comes first.
func TestResponseBatcher(t *testing.T) {
	var sizes []int
	b := responseBatcher{send: func(r *arguspb.SeriesResponse) error {
		sizes = append(sizes, len(r.Series))
		return nil
	}}
	big := &arguspb.StreamSeries{Chunks: []*arguspb.Chunk{{Data: make([]byte, bytesPerMessage/4)}}}
	for range 10 {
		require.NoError(t, b.add(big))
	}
	require.NoError(t, b.flush())
	require.Equal(t, []int{4, 4, 2}, sizes)

	sizes = nil
	small := &arguspb.StreamSeries{Labels: []*arguspb.Label{{Name: "a", Value: "b"}}}
	for range 2*seriesPerMessage + 1 {
		require.NoError(t, b.add(small))
	}
	require.NoError(t, b.flush())
	require.NoError(t, b.flush()) // Nothing left: sends nothing.
	require.Equal(t, []int{seriesPerMessage, seriesPerMessage, 1}, sizes)
}

func TestLabelNamesAndValues(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	push(t, ing, "t1",
		ts([]string{"__name__", "old", "zone", "a"}, sample{10, 1}),
		ts([]string{"__name__", "up", "job", "x"}, sample{1000, 1}),
	)
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	flushTenants(t, ing, cutIdleChunks) // "old" and "up" go to the store
	push(t, ing, "t1",
		ts([]string{"__name__", "up", "job", "x"}, sample{2000, 1}),
		ts([]string{"__name__", "up", "instance", "i", "job", "y"}, sample{2000, 1}),
	)
	ctx := tenantCtx("t1")
	names := func(mint, maxt, limit int64, ms ...*arguspb.LabelMatcher) []string {
		resp, err := ing.LabelNames(ctx, &arguspb.LabelNamesRequest{MinTimeMs: mint, MaxTimeMs: maxt, Limit: limit, Matchers: ms})
		require.NoError(t, err)
		return resp.Names
	}
	values := func(name string, mint, maxt, limit int64, ms ...*arguspb.LabelMatcher) []string {
		resp, err := ing.LabelValues(ctx, &arguspb.LabelValuesRequest{Name: name, MinTimeMs: mint, MaxTimeMs: maxt, Limit: limit, Matchers: ms})
		require.NoError(t, err)
		return resp.Values
	}
	require.Equal(t, []string{"__name__", "instance", "job", "zone"}, names(0, 3000, 0))
	require.Equal(t, []string{"__name__", "instance"}, names(0, 3000, 2))
	// A DB partition that overlaps the range gives all its names, as a
	// Prometheus block does: "job" of "up" comes with "old" (both in [0, 2h)).
	require.Equal(t, []string{"__name__", "job", "zone"}, names(0, 100, 0))
	// The head's span is [2000, 2000]: a range overlapping it gets the names
	// of every series of the head, "old" (all in the store now) included,
	// as from a Prometheus head.
	require.Equal(t, []string{"__name__", "instance", "job", "zone"}, names(1500, 3000, 0))
	require.Equal(t, []string{"__name__", "instance", "job", "zone"}, names(1500, 2000, 0))
	require.Equal(t, []string{"__name__", "job", "zone"}, names(1500, 1999, 0)) // before the head: the partition's names
	require.Equal(t, []string{"__name__", "job"}, names(0, 3000, 0, &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "x"}))
	require.Empty(t, names(chunkRangeMs, 2*chunkRangeMs, 0)) // after the head and every partition

	require.Equal(t, []string{"old", "up"}, values("__name__", 0, 3000, 0))
	require.Equal(t, []string{"old", "up"}, values("__name__", 500, 3000, 0)) // "old" is still in the head
	require.Equal(t, []string{"old", "up"}, values("__name__", 500, 1999, 0)) // the partition's values
	require.Equal(t, []string{"x"}, values("job", 0, 3000, 0, &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "__name__", Value: "up"}, &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_NRE, Name: "instance", Value: ".+"}))
	require.Equal(t, []string{"x", "y"}, values("job", 0, 3000, 0))
	require.Equal(t, []string{"x"}, values("job", 0, 3000, 1))
	require.Equal(t, []string{"x"}, values("job", 0, 1500, 0)) // only in the store
	require.Equal(t, []string{"y"}, values("job", 0, 3000, 0, &arguspb.LabelMatcher{Type: arguspb.LabelMatcher_EQ, Name: "instance", Value: "i"}))
	require.Empty(t, values("nope", 0, 3000, 0))

	// Once GC removes "old" from the head, its partition still names it.
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	truncateTenants(t, ing)
	require.Nil(t, ing.getTenant("t1").series.getByHash(lsetHash("__name__", "old", "zone", "a"), labelsOf("__name__", "old", "zone", "a")))
	require.Equal(t, []string{"__name__", "instance", "job", "zone"}, names(1500, 3000, 0))
	require.Equal(t, []string{"old", "up"}, values("__name__", 500, 3000, 0))
	require.Equal(t, []string{"old", "up"}, values("__name__", 0, 3000, 0)) // "old" from the store

	// An unknown tenant has nothing.
	resp, err := ing.LabelNames(tenantCtx("t9"), &arguspb.LabelNamesRequest{MaxTimeMs: 3000})
	require.NoError(t, err)
	require.Empty(t, resp.Names)
}

func TestGRPC(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	srv := grpc.NewServer()
	arguspb.RegisterIngesterServer(srv, ing)
	arguspb.RegisterSeriesSourceServer(srv, ing)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })

	ctx := tenant.OutgoingContext(context.Background(), "t1")
	var tss []*arguspb.TimeSeries
	want := map[string][]sample{}
	for n := range 600 { // More than two SeriesResponse messages.
		tss = append(tss, ts(metricName(n), sample{int64(n), float64(n)}))
		want[lstr(metricName(n)...)] = []sample{{int64(n), float64(n)}}
	}
	resp, err := arguspb.NewIngesterClient(conn).Push(ctx, &arguspb.WriteRequest{Timeseries: tss})
	require.NoError(t, err)
	require.Zero(t, resp.RejectedSamples)

	stream, err := arguspb.NewSeriesSourceClient(conn).Series(ctx, &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 1000,
		Matchers: []*arguspb.LabelMatcher{{Type: arguspb.LabelMatcher_EQ, Name: "job", Value: "test"}}})
	require.NoError(t, err)
	var got []*arguspb.StreamSeries
	msgs := 0
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.LessOrEqual(t, len(m.Series), seriesPerMessage)
		got = append(got, m.Series...)
		msgs++
	}
	require.Equal(t, 3, msgs)
	requireSamples(t, want, decodeSeries(t, got))

	_, err = arguspb.NewIngesterClient(conn).Push(context.Background(), &arguspb.WriteRequest{Timeseries: tss})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no tenant")
}

// TestStripeSeries_HashCollisions forces two label sets onto one hash.
func TestStripeSeries_HashCollisions(t *testing.T) {
	ss := newStripeSeries()
	const hash = 42
	a := newTestSeries(ss, 1, labels.FromStrings("a", "1"))
	b := newTestSeries(ss, 2, labels.FromStrings("b", "2"))
	got, ok := ss.setIfAbsent(hash, a)
	require.True(t, ok)
	require.Same(t, a, got)
	got, ok = ss.setIfAbsent(hash, b)
	require.True(t, ok)
	require.Same(t, b, got)
	got, ok = ss.setIfAbsent(hash, newTestSeries(ss, 3, labels.FromStrings("b", "2")))
	require.False(t, ok)
	require.Same(t, b, got)
	require.Same(t, a, ss.getByHash(hash, labels.FromStrings("a", "1")))
	require.Same(t, b, ss.getByHash(hash, labels.FromStrings("b", "2")))
	require.Same(t, b, ss.getByRef(2))

	ss.remove(hash, a) // b moves from the conflicts to the main map.
	require.Nil(t, ss.getByHash(hash, labels.FromStrings("a", "1")))
	require.Nil(t, ss.getByRef(1))
	require.Same(t, b, ss.getByHash(hash, labels.FromStrings("b", "2")))
	ss.remove(hash, b)
	require.Nil(t, ss.getByHash(hash, labels.FromStrings("b", "2")))
	n := 0
	ss.forEach(func(*memSeries) { n++ })
	require.Zero(t, n)
}

// selectAsProto runs SelectSeries and returns what it visited in the form
// Series streams, to compare the two.
func selectAsProto(t testing.TB, ing *Ingester, tenantID string, req *arguspb.SeriesRequest) []*arguspb.StreamSeries {
	t.Helper()
	var out []*arguspb.StreamSeries
	require.NoError(t, ing.SelectSeries(tenantCtx(tenantID), req, func(lset labels.Labels, chks []chunks.Meta) error {
		ss := &arguspb.StreamSeries{}
		lset.Range(func(l labels.Label) { ss.Labels = append(ss.Labels, &arguspb.Label{Name: l.Name, Value: l.Value}) })
		for _, m := range chks {
			require.Equal(t, chunkenc.EncXOR, m.Chunk.Encoding())
			ss.Chunks = append(ss.Chunks, &arguspb.Chunk{MinTimeMs: m.MinTime, MaxTimeMs: m.MaxTime,
				Encoding: arguspb.ChunkEncoding_CHUNK_ENCODING_XOR, Data: m.Chunk.Bytes()})
		}
		out = append(out, ss)
		return nil
	}))
	return out
}

// requireSelectLikeSeries checks that SelectSeries visits exactly what
// Series streams for req, chunk bytes included, and that there is
// something to compare.
func requireSelectLikeSeries(t *testing.T, ing *Ingester, tenantID string, req *arguspb.SeriesRequest) {
	t.Helper()
	want := querySeries(t, ing, tenantID, req)
	got := selectAsProto(t, ing, tenantID, req)
	require.NotEmpty(t, want, "a vacuous comparison: %v", req)
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, want[i].EqualVT(got[i]), "series %d: Series sent %v, SelectSeries visited %v", i, want[i], got[i])
	}
}

// TestSelectSeries_LikeSeries checks the in-process read against the gRPC
// one on a tenant with series in the head only, in the store only and in
// both (a chunk of which is in both, as when persisted between the two
// reads), with tombstones, for several ranges, matchers and skip_chunks.
func TestSelectSeries_LikeSeries(t *testing.T) {
	clock := &testClock{ms: 1_000_000}
	ing := startIngester(t, testConfig(t, t.TempDir()), func(i *Ingester) { i.now = clock.now })
	both := []string{"__name__", "both", "job", "a"}
	storeOnly := []string{"__name__", "store_only", "job", "a"}
	headOnly := []string{"__name__", "head_only", "job", "b"}
	push(t, ing, "t1", ts(both, seq(0, 1000, 250)...), ts(storeOnly, sample{5, 5}))
	clock.ms += ing.cfg.MaxChunkIdle.Milliseconds() + 1000
	push(t, ing, "t1", ts(both, seq(250_000, 1000, 10)...))
	flushTenants(t, ing, cutIdleChunks)
	push(t, ing, "t1", ts(headOnly, seq(7, 1000, 30)...), ts(both, seq(260_000, 1000, 120)...))
	flushTenants(t, ing, keepOpenChunks) // Persisted and still in memory.
	push(t, ing, "t1", ts(both, seq(380_000, 1000, 5)...))

	all := []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "__name__", ".+")}
	reqs := map[string]*arguspb.SeriesRequest{
		"everything":         {MinTimeMs: math.MinInt64, MaxTimeMs: math.MaxInt64, Matchers: all},
		"persisted range":    {MinTimeMs: 100_000, MaxTimeMs: 200_000, Matchers: all},
		"open chunk range":   {MinTimeMs: 381_000, MaxTimeMs: 382_000, Matchers: all},
		"one job":            {MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "job", "a")}},
		"regexp and not":     {MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "__name__", ".*only"), pm(arguspb.LabelMatcher_NEQ, "job", "a")}},
		"skip chunks":        {MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: all, SkipChunks: true},
		"skip chunks, range": {MinTimeMs: 6, MaxTimeMs: 8, Matchers: all, SkipChunks: true},
	}
	check := func(t *testing.T) {
		for name, req := range reqs {
			t.Run(name, func(t *testing.T) { requireSelectLikeSeries(t, ing, "t1", req) })
		}
	}
	t.Run("head and store", check)

	_, err := ing.AdminServer().DeleteSeries(tenantCtx("t1"), &arguspb.DeleteSeriesRequest{MinTimeMs: 100_000, MaxTimeMs: 300_000,
		Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "both")}})
	require.NoError(t, err)
	delete(reqs, "persisted range") // Deleted: nothing left to compare.
	t.Run("with tombstones", check)
}

// TestSelectSeries_KeepsWhatItHandsOut checks that what SelectSeries hands
// out stays as it was while the head goes on: the open chunk is a copy.
func TestSelectSeries_KeepsWhatItHandsOut(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	lbls := []string{"__name__", "m"}
	push(t, ing, "t1", ts(lbls, seq(1000, 1000, 130)...)) // A finished chunk and an open one.
	req := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: math.MaxInt64, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "m")}}
	var (
		kept  []chunks.Meta
		bytes [][]byte
	)
	require.NoError(t, ing.SelectSeries(tenantCtx("t1"), req, func(_ labels.Labels, chks []chunks.Meta) error {
		kept = chks
		for _, m := range chks {
			bytes = append(bytes, slices.Clone(m.Chunk.Bytes()))
		}
		return nil
	}))
	require.Len(t, kept, 2)
	push(t, ing, "t1", ts(lbls, seq(131_000, 1000, 50)...)) // Appends to the open chunk, cuts it.
	for i, m := range kept {
		require.Equal(t, bytes[i], m.Chunk.Bytes(), "chunk %d changed after the read", i)
	}
	want := querySeries(t, ing, "t1", req)
	require.Greater(t, len(want[0].Chunks[1].Data), len(bytes[1]), "the open chunk grew in the head")
}

// TestSelectSeries_Errors checks that an error of visit ends the read and
// comes back as it is, and that the ingester's own errors are the gRPC
// statuses Series returns.
func TestSelectSeries_Errors(t *testing.T) {
	ing := startIngester(t, testConfig(t, t.TempDir()))
	for i := range 3 {
		push(t, ing, "t1", ts([]string{"__name__", "m", "i", strconv.Itoa(i)}, sample{1, 1}))
	}
	all := &arguspb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: 10, Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_EQ, "__name__", "m")}}
	stop := errors.New("stop")
	visited := 0
	err := ing.SelectSeries(tenantCtx("t1"), all, func(labels.Labels, []chunks.Meta) error {
		visited++
		return stop
	})
	require.Same(t, stop, err)
	require.Equal(t, 1, visited)

	nop := func(labels.Labels, []chunks.Meta) error { return nil }
	bad := &arguspb.SeriesRequest{Matchers: []*arguspb.LabelMatcher{pm(arguspb.LabelMatcher_RE, "job", "(")}}
	require.Equal(t, codes.InvalidArgument, status.Code(ing.SelectSeries(tenantCtx("t1"), bad, nop)))
	require.Equal(t, codes.InvalidArgument, status.Code(ing.SelectSeries(context.Background(), all, nop)), "no tenant")
	require.NoError(t, ing.SelectSeries(tenantCtx("never-pushed"), all, func(labels.Labels, []chunks.Meta) error {
		return errors.New("visited a series of a tenant without data")
	}))
}
