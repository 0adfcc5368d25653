package distributor

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/ring"
)

// seriesCount gathers reg and counts its series.
func seriesCount(t *testing.T, reg prometheus.Gatherer) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

func syncMapLen(m interface{ Range(func(k, v any) bool) }) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestSweep_TenantsComeAndGo checks that 10,000 tenants that each push once
// and go idle leave nothing behind once the idle timeout passed: the
// registry has as many series as before the first push, and the tenant and
// rate-limit maps are empty; a tenant still pushing keeps its state.
func TestSweep_TenantsComeAndGo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, _ := newSingleIngester(t, testConfig(t), reg)
	clock := testNow
	d.now = func() time.Time { return clock }
	push := func(tenantID string) {
		r := newPushRequest(encode(t, numberedRequest(1)))
		r = r.WithContext(tenant.With(r.Context(), tenantID))
		require.Equal(t, http.StatusNoContent, serve(d.PushHandler(), r).Code)
	}
	push("steady")
	baseline := seriesCount(t, reg)

	const tenants = 10_000
	for i := range tenants {
		push(fmt.Sprintf("churn-%d", i))
	}
	require.Equal(t, tenants+1, syncMapLen(&d.metrics.tenants))
	require.Equal(t, tenants+1, syncMapLen(&d.rates.buckets))
	require.Greater(t, seriesCount(t, reg), baseline+tenants*3, "received samples, requests, discards and rate per tenant")

	// Just before the timeout nothing is forgotten.
	clock = clock.Add(d.cfg.IdleTenantTimeout)
	push("steady")
	forgotten, _ := d.sweep()
	require.Zero(t, forgotten)

	clock = clock.Add(d.cfg.IdleTenantTimeout / 2)
	push("steady")
	clock = clock.Add(d.cfg.IdleTenantTimeout/2 + time.Second)
	forgotten, _ = d.sweep()
	require.Equal(t, tenants, forgotten)
	require.Equal(t, 1, syncMapLen(&d.metrics.tenants))
	require.Equal(t, 1, syncMapLen(&d.rates.buckets))
	require.Equal(t, baseline, seriesCount(t, reg), "every series of the idle tenants deleted")

	// A forgotten tenant that comes back starts afresh.
	push("churn-7")
	require.Equal(t, 2, syncMapLen(&d.metrics.tenants))
}

// TestSweep_KeepsBucketInDebt checks that an idle tenant whose rate-limit
// bucket is still in debt keeps it: forgetting it would raise its rate.
func TestSweep_KeepsBucketInDebt(t *testing.T) {
	d, _ := newSingleIngester(t, testConfig(t), nil)
	lim := defaultLimits(t)
	lim.IngestionRate, lim.IngestionBurstSize = 1, 10
	d.limits = tenantLimitsMap{def: lim}
	clock := testNow
	d.now = func() time.Time { return clock }
	w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(5000)))) // Passes on a full bucket, into debt.
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	clock = clock.Add(d.cfg.IdleTenantTimeout + time.Second) // 3601 s refill 3601 of 4990 tokens of debt.
	forgotten, _ := d.sweep()
	require.Zero(t, forgotten)
	clock = clock.Add(2 * time.Hour)
	forgotten, _ = d.sweep()
	require.Equal(t, 1, forgotten)
}

// TestSweep_IngestersLeave checks that the series and warning slots of an
// ingester that left the ring are deleted, and those of the others kept.
func TestSweep_IngestersLeave(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, _, ings := newReplicated(t, 3, 3, reg)
	ings[2].pushFunc = failWith(fmt.Errorf("down"))
	w := serve(d.PushHandler(), newPushRequest(encode(t, numberedRequest(10))))
	require.Equal(t, http.StatusNoContent, w.Code)
	d.WaitPushes()
	d.warns.allow("ing-2:9095", testNow)
	require.Len(t, d.metrics.ingesters(), 3)

	two, err := ring.NewStaticWithOptions([]ring.StaticOption{ring.WithStaticReplicationFactor(2)},
		ring.Instance{ID: "ing-0", Addr: "ing-0:9095"}, ring.Instance{ID: "ing-1", Addr: "ing-1:9095"})
	require.NoError(t, err)
	d.ring = two
	_, forgotten := d.sweep()
	require.Equal(t, 1, forgotten)
	require.ElementsMatch(t, []string{"ing-0:9095", "ing-1:9095"}, d.metrics.ingesters())
	require.Zero(t, d.warns.len())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.NotEqual(t, "ing-2:9095", l.GetValue(), mf.GetName())
			}
		}
	}
}

// TestClientPool_PruneComeAndGo checks that the connections to 10,000
// ingester addresses that came and went are all closed once the ring no
// longer lists them, and that the live ones are kept.
func TestClientPool_PruneComeAndGo(t *testing.T) {
	p := NewClientPool(grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer p.Close()
	live := map[string]bool{"127.0.0.1:1": true}
	kept, err := p.Conn("127.0.0.1:1")
	require.NoError(t, err)
	var gone []*grpc.ClientConn
	for i := range 10_000 {
		c, err := p.Conn(fmt.Sprintf("10.0.%d.%d:9095", i/250, i%250))
		require.NoError(t, err)
		gone = append(gone, c)
	}
	require.Equal(t, 10_001, p.Len())
	require.Equal(t, 10_000, p.Prune(live))
	require.Equal(t, 1, p.Len())
	for _, c := range gone {
		require.Equal(t, connectivity.Shutdown, c.GetState())
	}
	require.NotEqual(t, connectivity.Shutdown, kept.GetState())
	c, err := p.Get("127.0.0.1:1")
	require.NoError(t, err)
	require.Same(t, kept, c.(*ingesterClient).conn)
}
