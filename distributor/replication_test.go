package distributor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// newReplicated returns a distributor over a static ring of n fake ingesters
// (ing-0:9095 …) with replication factor rf, the ring and the ingesters by
// index.
//
//	request ──▶ distributor ──┬──▶ ing-0 ┐
//	                          ├──▶ ing-1 ├ each series on rf consecutive ingesters
//	                          └──▶ ing-2 ┘ (token % n and the next ones)
func newReplicated(t testing.TB, n, rf int, reg prometheus.Registerer) (*Distributor, *ring.Static, []*fakeIngester) {
	t.Helper()
	instances := make([]ring.Instance, n)
	ings := make([]*fakeIngester, n)
	byAddr := make(map[string]*fakeIngester, n)
	for i := range n {
		instances[i] = ring.Instance{ID: fmt.Sprintf("ing-%d", i), Addr: fmt.Sprintf("ing-%d:9095", i)}
		ings[i] = &fakeIngester{}
		byAddr[instances[i].Addr] = ings[i]
	}
	r, err := ring.NewStaticWithOptions([]ring.StaticOption{ring.WithStaticReplicationFactor(rf)}, instances...)
	require.NoError(t, err)
	return newTestDistributor(t, testConfig(t), r, byAddr, reg), r, ings
}

// numberedRequest returns n series m{i="0"} … each with one sample.
func numberedRequest(n int) *arguspb.WriteRequest {
	req := &arguspb.WriteRequest{}
	for i := range n {
		req.Timeseries = append(req.Timeseries, series([]string{"__name__", "m", "i", fmt.Sprint(i)}, float64(i), ms(0)))
	}
	return req
}

func failWith(err error) func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	return func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) { return nil, err }
}

// rejectFirst answers a push by rejecting, as out of order, the first sample
// of every series with reject(labels) true, listing at most maxListed of
// them, as an ingester caps its list.
func rejectFirst(reject func(ls string) bool, maxListed int) func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
	return func(_ context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		resp := &arguspb.PushResponse{}
		for _, ts := range req.Timeseries {
			if !reject(formatLabels(ts.Labels)) {
				continue
			}
			resp.RejectedSamples++
			if len(resp.Rejected) == maxListed {
				continue
			}
			ls := make([]*arguspb.Label, len(ts.Labels))
			for i, l := range ts.Labels {
				ls[i] = &arguspb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
			}
			resp.Rejected = append(resp.Rejected, &arguspb.RejectedSeries{
				Labels: ls, Reason: arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER,
				Message: "sample at 1 older than 2", RejectedSamples: 1,
			})
		}
		return resp, nil
	}
}

// TestPush_QuorumOneReplicaDown checks that with RF=3 one failed ingester
// leaves every series on the two others, a quorum: 204.
func TestPush_QuorumOneReplicaDown(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("ingesters=%d", n), func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			d, r, ings := newReplicated(t, n, 3, reg)
			ings[1].pushFunc = failWith(status.Error(codes.Unavailable, "connection refused"))
			req := numberedRequest(100)
			w := serve(d.PushHandler(), newPushRequest(encode(t, req)))
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			d.WaitPushes() // The failing replica may answer after the quorum.

			got := make([][]string, n)
			for i, ing := range ings {
				got[i] = ing.pushed()
			}
			for _, ts := range req.Timeseries {
				replicas, err := r.Get(ring.ShardTokenProto(testTenant, ts.Labels), nil)
				require.NoError(t, err)
				require.Len(t, replicas, 3)
				stored := 0
				for _, inst := range replicas {
					var i int
					_, err := fmt.Sscanf(inst.ID, "ing-%d", &i)
					require.NoError(t, err)
					require.Contains(t, got[i], seriesString(ts), "every replica is sent the series")
					if i != 1 {
						stored++
					}
				}
				require.GreaterOrEqual(t, stored, 2, seriesString(ts))
			}
			require.InDelta(t, 1.0, testutil.ToFloat64(d.metrics.ingesterPushFailures.WithLabelValues("ing-1:9095")), 0)
			require.InDelta(t, 0.0, testutil.ToFloat64(d.metrics.quorumFailures), 0)
			require.Equal(t, n, testutil.CollectAndCount(d.metrics.ingesterPushDuration), "one latency histogram per ingester")
		})
	}
}

// TestPush_QuorumLost checks the 5xx of series whose failed replicas leave
// fewer than a quorum, and that the body names every failed ingester.
func TestPush_QuorumLost(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "connection refused")
	cases := []struct {
		name       string
		ing0, ing1 func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error)
		wantStatus int
		wantBody   string
	}{
		{
			name: "two unavailable", ing0: failWith(unavailable), ing1: failWith(unavailable),
			wantStatus: http.StatusServiceUnavailable,
			wantBody: `err-argus-ingester-unavailable: tenant "tenant-a": write quorum not reached for 10 series (the first {__name__="m", i="0"}): each needs 2 of its 3 replicas` + "\n" +
				"push to ingester ing-0:9095: rpc error: code = Unavailable desc = connection refused\n" +
				"push to ingester ing-1:9095: rpc error: code = Unavailable desc = connection refused\n",
		},
		{
			name: "one unavailable, one internal", ing0: failWith(unavailable), ing1: failWith(status.Error(codes.Internal, "wal write failed")),
			wantStatus: http.StatusInternalServerError,
			wantBody: `err-argus-ingester-failed: tenant "tenant-a": write quorum not reached for 10 series (the first {__name__="m", i="0"}): each needs 2 of its 3 replicas` + "\n" +
				"push to ingester ing-0:9095: rpc error: code = Unavailable desc = connection refused\n" +
				"push to ingester ing-1:9095: rpc error: code = Internal desc = wal write failed\n",
		},
		{
			// One stored, one refused, one failed: a retry may reach the
			// quorum, so it is a 5xx and not a 400.
			name: "one unavailable, one rejecting", ing0: failWith(unavailable), ing1: rejectFirst(func(string) bool { return true }, 10),
			wantStatus: http.StatusServiceUnavailable,
			wantBody: `err-argus-ingester-unavailable: tenant "tenant-a": write quorum not reached for 10 series (the first {__name__="m", i="0"}): each needs 2 of its 3 replicas` + "\n" +
				"push to ingester ing-0:9095: rpc error: code = Unavailable desc = connection refused\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _, ings := newReplicated(t, 3, 3, nil)
			ings[0].pushFunc, ings[1].pushFunc = c.ing0, c.ing1
			w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(10))))
			require.Equal(t, c.wantStatus, w.Code)
			require.Equal(t, c.wantBody, w.Body.String())
			require.InDelta(t, 10.0, testutil.ToFloat64(d.metrics.quorumFailures), 0)
			require.InDelta(t, 0.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("out_of_order", testTenant)), 0,
				"a 5xx is retried: nothing is counted discarded")
		})
	}
}

// TestPush_TooFewHealthyReplicas checks that a series the ring cannot place
// on a quorum fails the push with a 503 that counts the series and names the
// replicas, and that nothing is pushed.
func TestPush_TooFewHealthyReplicas(t *testing.T) {
	ing := &fakeIngester{}
	cases := []struct {
		name     string
		get      func(token uint32, buf []ring.Instance) ([]ring.Instance, error)
		wantBody string
	}{
		{
			name: "ring error",
			get: func(token uint32, buf []ring.Instance) ([]ring.Instance, error) {
				return buf, fmt.Errorf("get token %d: found 1 healthy instances, need 2: %w", token, ring.ErrTooFewHealthy)
			},
			wantBody: "no ingester for series: 2 of 2 series have fewer healthy replicas than a write quorum (2 of replication factor 3), the first {__name__=\"m\", i=\"0\"}: get token ",
		},
		{
			name: "fewer than quorum without error",
			get: func(_ uint32, buf []ring.Instance) ([]ring.Instance, error) {
				return append(buf, ring.Instance{ID: "ing-0", Addr: "ing-0:9095"}), nil
			},
			wantBody: "no ingester for series: 2 of 2 series have fewer healthy replicas than a write quorum (2 of replication factor 3), the first {__name__=\"m\", i=\"0\"}: get token ",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newTestDistributor(t, testConfig(t), fakeRing{getFunc: c.get, rf: 3}, map[string]*fakeIngester{"ing-0:9095": ing}, nil)
			w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(2))))
			require.Equal(t, http.StatusServiceUnavailable, w.Code)
			require.Contains(t, w.Body.String(), c.wantBody)
			require.InDelta(t, 2.0, testutil.ToFloat64(d.metrics.quorumFailures), 0)
		})
	}
	require.Empty(t, ing.pushed())

	d := newTestDistributor(t, testConfig(t), fakeRing{rf: 3, getFunc: cases[1].get}, nil, nil)
	w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(1))))
	require.Contains(t, w.Body.String(), ": 1 healthy replicas [ing-0:9095], need 2\n")
}

// TestPush_QuorumRejections checks how the rejections of the replicas of a
// series become one answer: rejected (400, listed and counted once) unless a
// quorum of replicas accepted it.
func TestPush_QuorumRejections(t *testing.T) {
	const bad = `{__name__="m", i="3"}`
	isBad := func(ls string) bool { return ls == bad }
	cases := []struct {
		rejecting  int
		wantStatus int
	}{
		{rejecting: 0, wantStatus: http.StatusNoContent},
		{rejecting: 1, wantStatus: http.StatusNoContent},
		{rejecting: 2, wantStatus: http.StatusBadRequest},
		{rejecting: 3, wantStatus: http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("rejecting=%d", c.rejecting), func(t *testing.T) {
			d, _, ings := newReplicated(t, 3, 3, nil)
			for _, ing := range ings[:c.rejecting] {
				ing.pushFunc = rejectFirst(isBad, 10)
			}
			w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(5))))
			require.Equal(t, c.wantStatus, w.Code, w.Body.String())
			wantDiscarded := 0.0
			if c.wantStatus == http.StatusBadRequest {
				wantDiscarded = 1
				require.Equal(t, `err-argus-sample-out-of-order: tenant "tenant-a": 1 series (1 samples) rejected, 4 samples accepted`+"\n"+
					"err-argus-sample-out-of-order: "+bad+": out of order sample: sample at 1 older than 2\n", w.Body.String())
			}
			require.InDelta(t, wantDiscarded, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("out_of_order", testTenant)), 0)
			require.InDelta(t, 0.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("unknown", testTenant)), 0)
		})
	}
}

// TestPush_QuorumRejectionsMax checks that a series rejected by several
// replicas counts the most samples one of them rejected, with its reasons.
// The third replica answers only after the push was answered (a
// straggler): the push is decided by the first two, in whatever order they
// answer, which keeps the expected answer independent of scheduling.
func TestPush_QuorumRejectionsMax(t *testing.T) {
	d, _, ings := newReplicated(t, 3, 3, nil)
	ls := []*arguspb.Label{{Name: "__name__", Value: "up"}}
	answer := func(rejected ...*arguspb.RejectedSeries) func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		return func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
			resp := &arguspb.PushResponse{Rejected: rejected}
			for _, rs := range rejected {
				resp.RejectedSamples += rs.RejectedSamples
			}
			return resp, nil
		}
	}
	ooo := func(n int64) *arguspb.RejectedSeries {
		return &arguspb.RejectedSeries{Labels: ls, Reason: arguspb.RejectReason_REJECT_REASON_OUT_OF_ORDER, Message: "out of order", RejectedSamples: n}
	}
	dup := &arguspb.RejectedSeries{Labels: ls, Reason: arguspb.RejectReason_REJECT_REASON_DUPLICATE_TIMESTAMP, RejectedSamples: 1}
	ings[0].pushFunc = answer(ooo(1))
	ings[1].pushFunc = answer(ooo(2), dup)
	straggle := make(chan struct{})
	ings[2].pushFunc = func(ctx context.Context, req *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		<-straggle
		return answer(ooo(2))(ctx, req)
	}
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{
		series([]string{"__name__", "up"}, 1, ms(-3e9), 2, ms(-2e9), 3, ms(-1e9), 4, ms(0)),
	}})
	w := serve(d.PushHandler(), newPushRequest(body))
	close(straggle)
	d.WaitPushes()
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, `err-argus-sample-out-of-order: tenant "tenant-a": 1 series (3 samples) rejected, 1 samples accepted`+"\n"+
		`err-argus-sample-out-of-order: {__name__="up"}: out of order sample: out of order; duplicate sample for timestamp: 1 samples rejected`+"\n", w.Body.String())
	discarded := func(reason string) float64 {
		return testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues(reason, testTenant))
	}
	require.InDelta(t, 2.0, discarded("out_of_order"), 0)
	require.InDelta(t, 1.0, discarded("duplicate_timestamp"), 0)
}

// TestPush_QuorumUnlistedRejections checks rejected samples the ingesters do
// not attribute to a series (they list at most 10): counted once when no
// quorum stored their series, not at all when one did.
func TestPush_QuorumUnlistedRejections(t *testing.T) {
	// Series 0 to 11 are rejected (12 > the 10 listed); 12 to 19 are not.
	var rejected []string
	for i := range 12 {
		rejected = append(rejected, fmt.Sprintf(`{__name__="m", i="%d"}`, i))
	}
	isBad := func(ls string) bool { return slices.Contains(rejected, ls) }

	t.Run("every replica rejects", func(t *testing.T) {
		d, _, ings := newReplicated(t, 3, 3, nil)
		for _, ing := range ings {
			ing.pushFunc = rejectFirst(isBad, 10)
		}
		w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(20))))
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.True(t, strings.HasPrefix(w.Body.String(), `err-argus-sample-out-of-order: tenant "tenant-a": 10 series (12 samples) rejected, 8 samples accepted`+"\n"), w.Body.String())
		lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")[1:]
		require.Len(t, lines, 10)
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(lines))), 10, "each listed series once")
		require.InDelta(t, 10.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("out_of_order", testTenant)), 0)
		require.InDelta(t, 2.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("unknown", testTenant)), 0)
	})
	t.Run("one replica rejects", func(t *testing.T) {
		d, _, ings := newReplicated(t, 3, 3, nil)
		ings[2].pushFunc = rejectFirst(isBad, 10)
		w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(20))))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		require.InDelta(t, 0.0, testutil.ToFloat64(d.metrics.discardedSamples.WithLabelValues("unknown", testTenant)), 0)
	})
}

// The ring the cluster wires in satisfies what the distributor needs.
var (
	_ replicaPicker = (*ring.Ring)(nil)
	_ replicaPicker = (*ring.Static)(nil)
)

// TestQuorumErrorStatus checks that a quorum failure is a 503 only when every
// failed ingester may come back by itself.
func TestQuorumErrorStatus(t *testing.T) {
	ie := func(err error) *ingesterError { return &ingesterError{addr: "a:1", err: err} }
	unavailable := ie(status.Error(codes.Unavailable, "down"))
	cases := []struct {
		name string
		errs []*ingesterError
		want int
	}{
		{"unavailable", []*ingesterError{unavailable, unavailable}, http.StatusServiceUnavailable},
		{"connection refused", []*ingesterError{unavailable, ie(fmt.Errorf("dial: %w", syscall.ECONNREFUSED))}, http.StatusServiceUnavailable},
		{"deadline", []*ingesterError{ie(context.DeadlineExceeded)}, http.StatusServiceUnavailable},
		{"one internal", []*ingesterError{unavailable, ie(status.Error(codes.Internal, "x"))}, http.StatusInternalServerError},
		{"plain error", []*ingesterError{ie(errors.New("x")), unavailable}, http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := &quorumError{series: 1, quorum: 2, rf: 3, errs: c.errs}
			require.Equal(t, c.want, httpStatusFor(err))
			require.ErrorIs(t, err, ErrQuorumNotReached)
			require.ErrorIs(t, err, ErrIngesterPush)
		})
	}
}
