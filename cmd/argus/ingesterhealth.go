package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/apierror"
)

// ingesterHealth is what /ready and /ingester/tenants read of the ingester;
// *ingester.Ingester implements it.
type ingesterHealth interface {
	Ready() bool
	FailedTenants() map[string]string
	TenantStatuses() []ingester.TenantStatus
}

var _ ingesterHealth = (*ingester.Ingester)(nil)

// readyHandler answers /ready: 200 once the process is ready and its
// ingester (ing, nil if none) has replayed its WAL, else 503. A failed
// tenant leaves the process ready, as every other tenant is served; the
// failed ones are named in the body, where readiness is checked.
func readyHandler(processReady *atomic.Bool, ing ingesterHealth) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if !processReady.Load() || (ing != nil && !ing.Ready()) {
			http.Error(w, string(apierror.NotReady)+": not ready: the process is starting (an ingester replays its WAL) or stopping", apierror.NotReady.Status())
			return
		}
		_, _ = w.Write([]byte("ready\n"))
		if ing == nil {
			return
		}
		failed := ing.FailedTenants()
		for _, id := range slices.Sorted(maps.Keys(failed)) {
			fmt.Fprintf(w, "tenant %s failed (its pushes are refused): %s\n", id, failed[id])
		}
	}
}

// tenantsHandler answers /ingester/tenants: the open tenant heads of ing,
// their in-memory series and, for a failed tenant, why its pushes are
// refused.
func tenantsHandler(ing ingesterHealth) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		sts := ing.TenantStatuses()
		fmt.Fprintf(w, "%d open tenants\n", len(sts))
		for _, st := range sts {
			state := "ok"
			if st.Failed != "" {
				state = "FAILED: " + st.Failed
			}
			fmt.Fprintf(w, "%s\tmemory_series=%d\t%s\n", st.ID, st.MemorySeries, state)
		}
	}
}
