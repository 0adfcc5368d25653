package distributor

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

func TestHADecide(t *testing.T) {
	const update, failover = 15 * time.Second, 30 * time.Second
	at := func(d time.Duration) int64 { return testNow.Add(d).UnixMilli() }
	r1 := ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(-10 * time.Second)}
	for _, tc := range []struct {
		name          string
		cur           ring.HAElection
		found         bool
		replica       string
		next          ring.HAElection
		write, accept bool
	}{
		{"first push of a cluster elects its replica", ring.HAElection{}, false, "r2",
			ring.HAElection{Replica: "r2", ElectedAtMillis: at(0), ReceivedAtMillis: at(0)}, true, true},
		{"the elected replica, refreshed recently", r1, true, "r1", r1, false, true},
		{"the elected replica, refresh due", ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(-update)}, true, "r1",
			ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(0)}, true, true},
		{"another replica while the elected one sends", r1, true, "r2", r1, false, false},
		{"another replica exactly at the failover timeout", ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(-failover)}, true, "r2",
			ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(-failover)}, false, false},
		{"another replica after the failover timeout takes over", ring.HAElection{Replica: "r1", ElectedAtMillis: at(-time.Hour), ReceivedAtMillis: at(-failover - time.Millisecond)}, true, "r2",
			ring.HAElection{Replica: "r2", ElectedAtMillis: at(0), ReceivedAtMillis: at(0)}, true, true},
		{"a failover starts a later term even with a clock behind", ring.HAElection{Replica: "r1", ElectedAtMillis: at(time.Minute), ReceivedAtMillis: at(-time.Minute)}, true, "r2",
			ring.HAElection{Replica: "r2", ElectedAtMillis: at(time.Minute) + 1, ReceivedAtMillis: at(time.Minute) + 1}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, write, accept := haDecide(tc.cur, tc.found, tc.replica, testNow, update, failover)
			require.Equal(t, tc.next, next)
			require.Equal(t, tc.write, write)
			require.Equal(t, tc.accept, accept)
		})
	}
}

func TestHATrackerConfig_Validate(t *testing.T) {
	cfg := testConfig(t)
	require.NoError(t, cfg.Validate(), "off by default")
	cfg.HATracker.EnableHATracker = true
	require.NoError(t, cfg.Validate(), "Mimir's defaults")
	cfg.HATracker.FailoverTimeout = 20 * time.Second
	require.EqualError(t, cfg.Validate(), "-distributor.ha-tracker.failover-timeout (20s) must be at least 1s more than the update timeout plus its jitter max (20s)")
	cfg.HATracker.UpdateTimeout, cfg.HATracker.UpdateTimeoutJitterMax = 0, 0
	require.EqualError(t, cfg.Validate(), "-distributor.ha-tracker.update-timeout must be positive, got 0s")
}

// haPair returns two distributors (one fake ingester each) that share one
// election store, as two distributors share the gossiped one, with HA
// tracking on for every tenant, a failover timeout of 5s and no jitter.
func haPair(t *testing.T, reg prometheus.Registerer) (d [2]*Distributor, ing [2]*fakeIngester) {
	t.Helper()
	cfg := testConfig(t)
	cfg.HATracker = HATrackerConfig{EnableHATracker: true, UpdateTimeout: time.Second, FailoverTimeout: 5 * time.Second}
	lim := defaultLimits(t)
	lim.AcceptHASamples = true
	store := ring.NewHAElections()
	for i := range d {
		r, err := ring.NewStatic(ring.Instance{ID: "ing-1", Addr: "ing-1:9095"})
		require.NoError(t, err)
		f := &fakeIngester{}
		var dreg prometheus.Registerer
		if i == 0 {
			dreg = reg
		}
		ing[i] = f
		d[i], err = New(cfg, Deps{Ring: r, Limits: tenantLimitsMap{def: lim}, HAElections: store, Registerer: dreg,
			Clients: ClientFactoryFunc(func(string) (Pusher, error) { return f, nil })})
		require.NoError(t, err)
	}
	return d, ing
}

// haPush pushes two series from replica of cluster c1 at testNow+at: one
// the fast path reads, one it leaves to the generated decoder (labels out
// of order).
func haPush(t *testing.T, d *Distributor, replica string, at time.Duration) *http.Response {
	t.Helper()
	d.now = func() time.Time { return testNow.Add(at) }
	w := serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up", "__replica__", replica, "cluster", "c1", "job", "j"}, 1, ms(at)),
		series([]string{"job", "j", "__name__", "x", "cluster", "c1", "__replica__", replica}, 2, ms(at), 3, ms(at+time.Millisecond)),
	}})))
	return w.Result()
}

// TestHATracker_Push follows one HA pair through election, deduplication,
// failover and back, over two distributors sharing the elections: the
// elected replica's series are stored without the replica label, the
// other's are answered 202 and dropped.
func TestHATracker_Push(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, ing := haPair(t, reg)
	itoa := func(ms int64) string { return strconv.FormatInt(ms, 10) }
	stored := func(at time.Duration) []string {
		ts := testNow.Add(at).UnixMilli()
		return []string{
			`{__name__="up", cluster="c1", job="j"} 1@` + itoa(ts),
			`{__name__="x", cluster="c1", job="j"} 2@` + itoa(ts) + ` 3@` + itoa(ts+1),
		}
	}
	body := func(resp *http.Response) string {
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return string(b[:n])
	}

	require.Equal(t, http.StatusNoContent, haPush(t, d[0], "r1", 0).StatusCode)
	resp := haPush(t, d[1], "r2", time.Second)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, `err-argus-ha-replica-not-elected: tenant "tenant-a": samples of replica "r2" of cluster "c1" dropped: replica "r1" is elected, its last push recorded at 2026-01-02T03:04:05Z`+"\n", body(resp))
	require.Equal(t, http.StatusNoContent, haPush(t, d[1], "r1", 2*time.Second).StatusCode, "r1 through the other distributor")
	require.Equal(t, append(stored(0), stored(2*time.Second)...), append(ing[0].pushed(), ing[1].pushed()...))

	// r1 stops; r2 is still refused up to the failover timeout after r1's
	// last recorded push (at 2s: the update timeout is 1s), then elected.
	require.Equal(t, http.StatusAccepted, haPush(t, d[0], "r2", 7*time.Second).StatusCode)
	require.Equal(t, http.StatusNoContent, haPush(t, d[0], "r2", 7*time.Second+time.Millisecond).StatusCode)
	require.Equal(t, http.StatusAccepted, haPush(t, d[1], "r1", 8*time.Second).StatusCode)
	require.Equal(t, append(stored(0), stored(7*time.Second+time.Millisecond)...), ing[0].pushed())
	require.Equal(t, stored(2*time.Second), ing[1].pushed())

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP argus_distributor_deduped_samples_total Samples of pushes from a replica of a Prometheus HA pair that was not the elected replica of its cluster, answered 202 and dropped.
# TYPE argus_distributor_deduped_samples_total counter
argus_distributor_deduped_samples_total{cluster="c1",tenant="tenant-a"} 3
# HELP argus_ha_tracker_elected_replica_changes_total Failovers this distributor wrote: another replica of the cluster elected after the elected one sent nothing for -distributor.ha-tracker.failover-timeout.
# TYPE argus_ha_tracker_elected_replica_changes_total counter
argus_ha_tracker_elected_replica_changes_total{cluster="c1",tenant="tenant-a"} 1
`), "argus_distributor_deduped_samples_total", "argus_ha_tracker_elected_replica_changes_total"))
}

// TestHATracker_NotHA checks that pushes without both labels, and every
// push when the tracker is off, are stored as sent.
func TestHATracker_NotHA(t *testing.T) {
	d, ing := haPair(t, nil)
	for _, lbls := range [][]string{
		{"__name__", "up", "job", "j"},
		{"__name__", "up", "__replica__", "r1"},
		{"__name__", "up", "cluster", "c1"},
	} {
		w := serve(d[0].PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series(lbls, 1, ms(0))}})))
		require.Equal(t, http.StatusNoContent, w.Code)
	}
	off, offIng := newSingleIngester(t, testConfig(t), nil)
	w := serve(off.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up", "__replica__", "r1", "cluster", "c1"}, 1, ms(0))}})))
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, []string{
		`{__name__="up", job="j"} 1@1767323045000`,
		`{__name__="up", __replica__="r1"} 1@1767323045000`,
		`{__name__="up", cluster="c1"} 1@1767323045000`,
	}, ing[0].pushed())
	require.Equal(t, []string{`{__name__="up", __replica__="r1", cluster="c1"} 1@1767323045000`}, offIng.pushed())
}

// TestHATracker_TenantLabelsAndMaxClusters checks a tenant's own label
// names and its limit of clusters.
func TestHATracker_TenantLabelsAndMaxClusters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := testConfig(t)
	cfg.HATracker = HATrackerConfig{EnableHATracker: true, UpdateTimeout: time.Second, FailoverTimeout: 5 * time.Second}
	d, ing := newSingleIngester(t, cfg, reg)
	lim := defaultLimits(t)
	lim.AcceptHASamples, lim.HAClusterLabel, lim.HAReplicaLabel, lim.HAMaxClusters = true, "dc", "prom", 1
	d.limits = tenantLimitsMap{def: lim}
	push := func(dc, prom string) *http.Response {
		return serve(d.PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
			series([]string{"__name__", "up", "dc", dc, "prom", prom}, 1, ms(0), 2, ms(time.Millisecond))}}))).Result()
	}
	require.Equal(t, http.StatusNoContent, push("east", "a").StatusCode)
	resp := push("west", "a")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	require.Equal(t, `err-argus-too-many-ha-clusters: tenant "tenant-a": cluster "west" would be HA cluster 2 of the tenant, over its limit (-distributor.ha-tracker.max-clusters=1)`+"\n", string(b[:n]))
	require.Equal(t, []string{`{__name__="up", dc="east"} 1@1767323045000 2@1767323045001`}, ing.pushed())
	require.Equal(t, 2.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues(discardTooManyHAClusters, testTenant)))
}

func TestHATrackerHandler(t *testing.T) {
	d, _ := haPair(t, nil)
	require.Equal(t, http.StatusNoContent, haPush(t, d[0], "r1", 0).StatusCode)
	w := serve(d[1].HATrackerHandler(), httptestGet("/distributor/ha_tracker"))
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"enabled":true,"failover_timeout":"5s","elections":[
		{"tenant":"tenant-a","cluster":"c1","replica":"r1","elected_at":"2026-01-02T03:04:05Z","received_at":"2026-01-02T03:04:05Z"}]}`, w.Body.String())
	off, _ := newSingleIngester(t, testConfig(t), nil)
	w = serve(off.HATrackerHandler(), httptestGet("/distributor/ha_tracker"))
	require.JSONEq(t, `{"enabled":false,"elections":[]}`, w.Body.String())
}

func httptestGet(path string) *http.Request { return httptest.NewRequest(http.MethodGet, path, nil) }

// TestCutLabel_LikeGenerated checks dropLabel on random requests whose
// series are encoded in the ways the fast path takes (label and sample
// fields interleaved, lengths in non-minimal varints), against the
// generated decoder: every series forwarded (its raw bytes, or its decoded
// form marshalled) decodes to the original series without the label, and
// the label offsets a fast series keeps name exactly its remaining labels.
func TestCutLabel_LikeGenerated(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	cut := 0 // fast-path series that had the label cut out
	for iter := range 2000 {
		var body []byte
		var want []*arguspb.TimeSeries
		var had []bool
		for range 1 + rng.IntN(4) {
			enc, ts := randomEncodedSeries(rng)
			had = append(had, slices.ContainsFunc(ts.Labels, func(l *arguspb.Label) bool { return l.Name == "__replica__" }))
			body = protowire.AppendTag(body, 1, protowire.BytesType)
			body = appendLen(body, len(enc), rng.IntN(4) == 0)
			body = append(body, enc...)
			ts.Labels = slices.DeleteFunc(ts.Labels, func(l *arguspb.Label) bool { return l.Name == "__replica__" })
			want = append(want, ts)
		}
		wc := getWriteCtx()
		wc.decoded = append(wc.decoded[:0], body...)
		require.NoError(t, wc.unmarshalRequest(wc.decoded), "iteration %d", iter)
		require.NoError(t, wc.dropLabel("__replica__"))
		require.Len(t, wc.series, len(want))
		for i, s := range wc.series {
			raw := s.raw
			if raw == nil {
				var err error
				raw, err = s.ts.MarshalVT()
				require.NoError(t, err)
			}
			var got arguspb.TimeSeries
			require.NoError(t, got.UnmarshalVT(raw))
			require.Equal(t, seriesString(want[i]), seriesString(&got), "iteration %d series %d", iter, i)
			require.Equal(t, formatLabels(want[i].Labels), formatLabels(wc.labelsOf(i)), "iteration %d series %d", iter, i)
			if s.ts == nil {
				cut += boolInt(had[i])
				require.Equal(t, appendProtoLabels(nil, want[i].Labels), wc.appendLabels(nil, i))
				require.True(t, isASCII(raw[:s.labelsEnd]) || !isASCII(raw))
			}
		}
		putWriteCtx(wc)
	}
	require.Greater(t, cut, 1000, "the fast path cut the label out")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// randomEncodedSeries encodes a series of sorted labels (the replica label
// among them half of the time) and up to three samples, sample fields
// sometimes between label fields, lengths sometimes in non-minimal varints.
func randomEncodedSeries(rng *rand.Rand) ([]byte, *arguspb.TimeSeries) {
	names := []string{"__name__", "__replica__", "a", "cluster", "zone"}
	ts := &arguspb.TimeSeries{}
	for _, n := range names {
		if n == "__name__" || rng.IntN(2) == 0 {
			ts.Labels = append(ts.Labels, &arguspb.Label{Name: n, Value: strings.Repeat("v", 1+rng.IntN(200))})
		}
	}
	for k := range rng.IntN(4) {
		ts.Samples = append(ts.Samples, &arguspb.Sample{Value: float64(k), TimestampMs: int64(1000 + k)})
	}
	var b []byte
	samples := slices.Clone(ts.Samples)
	for _, l := range ts.Labels {
		if len(samples) > 0 && rng.IntN(3) == 0 {
			b = appendTestSample(b, samples[0], rng)
			samples = samples[1:]
		}
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = appendLen(m, len(l.Name), rng.IntN(4) == 0)
		m = append(m, l.Name...)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = appendLen(m, len(l.Value), rng.IntN(4) == 0)
		m = append(m, l.Value...)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = appendLen(b, len(m), rng.IntN(4) == 0)
		b = append(b, m...)
	}
	for _, s := range samples {
		b = appendTestSample(b, s, rng)
	}
	return b, ts
}

func appendTestSample(b []byte, s *arguspb.Sample, rng *rand.Rand) []byte {
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.Fixed64Type)
	m = protowire.AppendFixed64(m, math.Float64bits(s.Value))
	m = protowire.AppendTag(m, 2, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(s.TimestampMs))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = appendLen(b, len(m), rng.IntN(4) == 0)
	return append(b, m...)
}

// appendLen appends a length, in a non-minimal varint (one byte more) if
// padded.
func appendLen(b []byte, n int, padded bool) []byte {
	if !padded {
		return protowire.AppendVarint(b, uint64(n))
	}
	v := protowire.AppendVarint(nil, uint64(n))
	v[len(v)-1] |= 0x80
	return append(append(b, v...), 0)
}

// TestHATracker_SweepForgetsTenant checks that the HA metric series of an
// idle tenant go with its other series.
func TestHATracker_SweepForgetsTenant(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := testConfig(t)
	cfg.HATracker = HATrackerConfig{EnableHATracker: true, UpdateTimeout: time.Second, FailoverTimeout: 5 * time.Second}
	d, _ := newSingleIngester(t, cfg, reg)
	lim := defaultLimits(t)
	lim.AcceptHASamples, lim.HAMaxClusters = true, 1
	d.limits = tenantLimitsMap{def: lim}
	clock := testNow
	d.now = func() time.Time { return clock }
	push := func(tenantID string, lbls ...string) int {
		r := newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series(lbls, 1, ms(0))}}))
		return serve(d.PushHandler(), r.WithContext(tenant.With(r.Context(), tenantID))).Code
	}
	require.Equal(t, http.StatusNoContent, push("ha", "__name__", "up", "__replica__", "r1", "cluster", "c1"))
	require.Equal(t, http.StatusAccepted, push("ha", "__name__", "up", "__replica__", "r2", "cluster", "c1"))
	require.Equal(t, http.StatusBadRequest, push("ha", "__name__", "up", "__replica__", "r2", "cluster", "c2"))
	clock = clock.Add(6 * time.Second)
	require.Equal(t, http.StatusNoContent, push("ha", "__name__", "up", "__replica__", "r2", "cluster", "c1"), "failover")
	require.Equal(t, 1.0, testutil.ToFloat64(d.ha.changes.WithLabelValues("ha", "c1")))
	require.Equal(t, 3+int(numReasons)+3, tenantSeries(t, reg, "ha"), "received samples and requests, ingestion rate, discards by reason, too many clusters, deduped, changes")

	clock = clock.Add(d.cfg.IdleTenantTimeout + time.Second)
	require.Equal(t, http.StatusNoContent, push("steady", "__name__", "up"))
	forgotten, _ := d.sweep()
	require.Equal(t, 1, forgotten)
	require.Zero(t, tenantSeries(t, reg, "ha"), "every series of the idle HA tenant deleted")
}

// tenantSeries counts the series of reg with label tenant=tenantID.
func tenantSeries(t *testing.T, reg prometheus.Gatherer, tenantID string) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenantID {
					n++
				}
			}
		}
	}
	return n
}

// TestHATracker_Concurrent pushes both replicas of a new cluster at once
// through two distributors sharing one election store: the first election
// wins (the store's update is a compare-and-swap), every push of its
// replica is stored and every push of the other answered 202. Run with
// -race. (Distributors with their own stores, gossiping, may both accept
// until the merge decides: see ring/DESIGN.md.)
func TestHATracker_Concurrent(t *testing.T) {
	d, ing := haPair(t, nil)
	var wg sync.WaitGroup
	codes := make([][]int, 8)
	for g := range codes {
		wg.Go(func() {
			replica := []string{"r1", "r2"}[g%2]
			for range 20 {
				w := serve(d[g/2%2].PushHandler(), newPushRequest(encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
					series([]string{"__name__", "up", "__replica__", replica, "cluster", "c1"}, 1, ms(0))}})))
				codes[g] = append(codes[g], w.Code)
			}
		})
	}
	wg.Wait()
	winner := 0
	if e, _ := d[0].ha.store.HAElection(testTenant, "c1"); e.Replica == "r2" {
		winner = 1
	}
	for g, cs := range codes {
		want := http.StatusAccepted
		if g%2 == winner {
			want = http.StatusNoContent
		}
		for _, c := range cs {
			require.Equal(t, want, c, "goroutine %d", g)
		}
	}
	require.Len(t, append(ing[0].pushed(), ing[1].pushed()...), 80)
}
