package distributor

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/proto/arguspb"
)

// TestInstanceLimits_InflightRequests holds pushes in flight at a fake
// ingester: the one over the limit is refused with a 503 and Retry-After,
// and a push is admitted again once one returns.
func TestInstanceLimits_InflightRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t)
	cfg.InstanceLimits.MaxInflightPushRequests = 2
	d, ing := newSingleIngester(t, cfg, reg)
	entered, unblock := make(chan struct{}, 2), make(chan struct{})
	ing.pushFunc = func(ctx context.Context, _ *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
		entered <- struct{}{}
		<-unblock
		return &arguspb.PushResponse{}, nil
	}
	body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(0))}})
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- serve(d.PushHandler(), newPushRequest(body)).Code }()
	}
	<-entered
	<-entered

	w := serve(d.PushHandler(), newPushRequest(body))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.True(t, strings.HasPrefix(w.Body.String(), string(apierror.DistributorOverload)+": "), w.Body.String())
	require.Contains(t, w.Body.String(), "-distributor.instance-limits.max-inflight-push-requests=2")
	require.InDelta(t, 1, testutil.ToFloat64(d.inflight.refused.WithLabelValues("max_inflight_push_requests")), 0)

	close(unblock)
	require.Equal(t, http.StatusNoContent, <-done)
	require.Equal(t, http.StatusNoContent, <-done)
	require.Equal(t, http.StatusNoContent, serve(d.PushHandler(), newPushRequest(body)).Code)
	require.Zero(t, d.inflight.requests.Load())
	require.Zero(t, d.inflight.bytes.Load())
}

func TestInstanceLimits_InflightBytes(t *testing.T) {
	in := newInflight(InstanceLimits{MaxInflightPushRequestsBytes: 100}, nil)
	req := func(size int64) *http.Request {
		r := newPushRequest(nil)
		r.ContentLength = size
		return r
	}
	// One request larger than the limit is admitted alone...
	big, err := in.admit(req(150))
	require.NoError(t, err)
	// ...but nothing beside it.
	_, err = in.admit(req(1))
	require.ErrorContains(t, err, "-distributor.instance-limits.max-inflight-push-requests-bytes=100")
	big()
	small, err := in.admit(req(60))
	require.NoError(t, err)
	_, err = in.admit(req(60))
	id, ok := apierror.IDOf(err)
	require.True(t, ok)
	require.Equal(t, apierror.DistributorOverload, id)
	other, err := in.admit(req(40))
	require.NoError(t, err)
	small()
	other()
	require.Zero(t, in.bytes.Load())
}

// TestInstanceLimits_IngesterRefusalKeepsItsID: an ingester's refusal of a
// whole push (overloaded, or the tenant failed there) reaches the sender with
// the ingester's ID, as a 503 with Retry-After.
func TestInstanceLimits_IngesterRefusalKeepsItsID(t *testing.T) {
	for _, id := range []apierror.ID{apierror.IngesterOverloaded, apierror.IngesterTenantFailed} {
		d, ing := newSingleIngester(t, testConfig(t), nil)
		ing.pushFunc = func(context.Context, *arguspb.WriteRequest) (*arguspb.PushResponse, error) {
			return nil, status.Error(codes.Unavailable, string(id)+": refused")
		}
		body := encode(t, &arguspb.WriteRequest{Timeseries: []*arguspb.TimeSeries{series([]string{"__name__", "up"}, 1, ms(time.Second))}})
		w := serve(d.PushHandler(), newPushRequest(body))
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
		require.True(t, strings.HasPrefix(w.Body.String(), string(id)+": "), w.Body.String())
	}
}
