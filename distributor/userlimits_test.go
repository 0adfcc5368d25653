package distributor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// TestUserLimitsHandler checks the limits in force and the usage summed over
// the ingesters and divided by the replication factor, with one ingester
// down.
func TestUserLimitsHandler(t *testing.T) {
	r, err := ring.NewStaticWithOptions([]ring.StaticOption{ring.WithStaticReplicationFactor(3)},
		ring.Instance{ID: "a", Addr: "a"}, ring.Instance{ID: "b", Addr: "b"}, ring.Instance{ID: "c", Addr: "c"}, ring.Instance{ID: "d", Addr: "d"})
	require.NoError(t, err)
	stats := func(tn string) *arguspb.UserStatsResponse {
		if tn != "t1" {
			return &arguspb.UserStatsResponse{}
		}
		return &arguspb.UserStatsResponse{MemorySeries: 100, IngestionRate: 30}
	}
	ings := map[string]*fakeIngester{"a": {stats: stats}, "b": {stats: stats}, "c": {stats: stats}, "d": {}}
	d := newTestDistributor(t, testConfig(t), r, ings, nil)
	custom := defaultLimits(t)
	custom.MaxGlobalSeriesPerUser = 7
	d.limits = tenantLimitsMap{def: defaultLimits(t), tenants: map[string]*limits.Limits{"t1": custom}}

	req := httptest.NewRequest(http.MethodGet, "/api/v1/user_limits", nil)
	w := serve(d.UserLimitsHandler(), req.WithContext(tenant.With(req.Context(), "t1")))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var got UserLimits
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, "t1", got.Tenant)
	require.Equal(t, 7.0, got.Limits["max_global_series_per_user"])
	require.Equal(t, "10m0s", got.Limits["creation_grace_period"])
	require.Equal(t, Usage{MemorySeries: 100, IngestionRate: 30, Distributors: 1, Ingesters: 4, IngestersFailed: 1}, got.Usage)

	w = serve(d.UserLimitsHandler(), httptest.NewRequest(http.MethodGet, "/api/v1/user_limits", nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, w.Body.String(), "err-argus-missing-tenant: ")
}
