package clustere2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// distributorTenantSeries counts the series of the distributor's per-tenant
// metrics in p's /metrics, and the tenants they name.
func distributorTenantSeries(t testing.TB, p *clustertest.Process) (series, tenants int) {
	t.Helper()
	seen := map[string]bool{}
	for name, mf := range p.MetricFamilies(t) {
		if !strings.HasPrefix(name, "argus_distributor_") && name != "argus_discarded_samples_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					series++
					seen[l.GetValue()] = true
				}
			}
		}
	}
	return series, len(seen)
}

// TestTenantChurn: 1,000 tenants push once each to an all-in-one process and
// go idle. Once -distributor.idle-tenant-timeout (20s here) has passed, the
// distributor's per-tenant series (received samples and requests, discards,
// ingestion rate) are gone from /metrics, down to those of the one tenant
// that keeps pushing: the count returns to its baseline. (The distributor's
// own unit test runs 10,000 tenants; here every tenant also opens a head in
// the ingester, closed after -ingester.tenant-idle-timeout: see the soak
// tests, TestSoak_RollingIngesters and e2e's TestSoak_TenantsComeAndGo.)
func TestTenantChurn(t *testing.T) {
	skipIfShort(t)
	p := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-distributor.idle-tenant-timeout=20s"}})
	batch := func(i int) []clustertest.TimeSeries {
		return []clustertest.TimeSeries{{
			Labels:  clustertest.Labels("__name__", "churn", "i", fmt.Sprint(i)),
			Samples: []clustertest.Sample{{T: time.Now().UnixMilli(), V: float64(i)}},
		}}
	}
	push := func(tenant string, i int) {
		code, body := p.Push(t, tenant, batch(i))
		require.Equal(t, http.StatusNoContent, code, body)
	}
	push("steady", 0)
	baseline, baseTenants := distributorTenantSeries(t, p)
	require.Equal(t, 1, baseTenants)

	const tenants = 1000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < tenants; i += 4 {
				push(fmt.Sprintf("churn-%d", i), i)
			}
		})
	}
	wg.Wait()
	series, seen := distributorTenantSeries(t, p)
	require.Equal(t, tenants+1, seen)
	require.Greater(t, series, baseline*tenants/2)
	t.Logf("%d tenant series for %d tenants (baseline %d for one)", series, seen, baseline)

	// The steady tenant keeps pushing; the others go idle.
	i := 1
	clustertest.Eventually(t, func() string {
		push("steady", i)
		i++
		if s, n := distributorTenantSeries(t, p); s != baseline || n != 1 {
			return fmt.Sprintf("%d tenant series of %d tenants, want the baseline %d of 1", s, n, baseline)
		}
		return ""
	}, 60*time.Second)
}
