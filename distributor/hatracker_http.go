package distributor

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/argus-tsdb/argus/ring"
)

// haLister lists the elections; *ring.KV and *ring.HAElections satisfy it.
type haLister interface {
	HAEntries() []ring.HAEntry
}

// HATrackerStatus is the answer of GET /distributor/ha_tracker.
type HATrackerStatus struct {
	Enabled         bool   `json:"enabled"`
	FailoverTimeout string `json:"failover_timeout,omitempty"`
	// Elections are those this distributor reads, sorted by tenant then
	// cluster; every distributor shows the same ones once gossip converged.
	Elections []HAElectionStatus `json:"elections"`
}

// HAElectionStatus is one election of HATrackerStatus. Times are RFC 3339
// in UTC.
type HAElectionStatus struct {
	Tenant     string `json:"tenant"`
	Cluster    string `json:"cluster"`
	Replica    string `json:"replica"`
	ElectedAt  string `json:"elected_at"`
	ReceivedAt string `json:"received_at"`
}

// HATrackerHandler serves GET /distributor/ha_tracker (Mimir's path): the
// HA elections this distributor reads, every tenant's, as JSON. It is an
// operator's page, like /ring: it names tenants, clusters and replicas but
// no sample.
func (d *Distributor) HATrackerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st := HATrackerStatus{Elections: []HAElectionStatus{}}
		if d.ha != nil {
			st.Enabled, st.FailoverTimeout = true, d.ha.failoverTimeout.String()
			if l, ok := d.ha.store.(haLister); ok {
				for _, e := range l.HAEntries() {
					st.Elections = append(st.Elections, HAElectionStatus{
						Tenant: e.Tenant, Cluster: e.Cluster, Replica: e.Replica,
						ElectedAt:  time.UnixMilli(e.ElectedAtMillis).UTC().Format(time.RFC3339Nano),
						ReceivedAt: time.UnixMilli(e.ReceivedAtMillis).UTC().Format(time.RFC3339Nano),
					})
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}
