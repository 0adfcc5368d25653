package distributor

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// instanceLister lists the ingesters of the ring; *ring.KV and *ring.Static
// satisfy it.
type instanceLister interface {
	ReadSet() (instances []ring.Instance, maxFailures int, err error)
}

// userStatser is the part of an ingester client that reports a tenant's
// usage; the Pusher a ClientPool gives (arguspb.IngesterClient) has it.
type userStatser interface {
	UserStats(ctx context.Context, in *arguspb.UserStatsRequest, opts ...grpc.CallOption) (*arguspb.UserStatsResponse, error)
}

// UserLimits is the answer of /api/v1/user_limits: a tenant's limits in force
// and its current usage.
type UserLimits struct {
	Tenant string `json:"tenant"`
	// Limits are the runtime config fields of the tenant's limits.
	Limits map[string]any `json:"limits"`
	Usage  Usage          `json:"usage"`
}

// Usage is a tenant's current usage, across the cluster.
type Usage struct {
	// MemorySeries is the tenant's in-memory series across the ingesters
	// that answered, divided by the replication factor.
	MemorySeries int64 `json:"memory_series"`
	// IngestionRate is the samples per second the ingesters that answered
	// appended for the tenant, divided by the replication factor, averaged
	// over about a minute.
	IngestionRate float64 `json:"ingestion_rate"`
	// DistributorIngestionRate is what this distributor accepted, samples
	// per second averaged over about a minute.
	DistributorIngestionRate float64 `json:"distributor_ingestion_rate"`
	// Distributors is the number of healthy distributors sharing the
	// ingestion rate limit.
	Distributors int `json:"distributors"`
	// Ingesters and IngestersFailed count the ingesters asked and those
	// that did not answer; with failures the usage is an underestimate.
	Ingesters       int `json:"ingesters"`
	IngestersFailed int `json:"ingesters_failed"`
}

// UserLimitsHandler serves GET /api/v1/user_limits for the tenant of the
// request context (behind the auth middleware): its limits in force, as the
// runtime config file would name them, and its usage, from every ingester's
// UserStats. It answers within -distributor.remote-timeout.
func (d *Distributor) UserLimitsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenantID, err := tenant.FromContext(r.Context())
		if err != nil {
			http.Error(w, errorBody("", err), httpStatusFor(err))
			return
		}
		ul := UserLimits{Tenant: tenantID, Limits: d.limits.For(tenantID).Fields()}
		ul.Usage = d.usage(r.Context(), tenantID)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ul)
	})
}

// usage asks every ingester for the tenant's stats, in parallel.
func (d *Distributor) usage(ctx context.Context, tenantID string) Usage {
	u := Usage{Distributors: max(1, d.distributors.HealthyMembers(roleDistributor))}
	if b, ok := d.rates.buckets.Load(tenantID); ok {
		u.DistributorIngestionRate = b.(*tokenBucket).Rate(d.now())
	}
	lister, ok := d.ring.(instanceLister)
	if !ok {
		return u
	}
	instances, _, err := lister.ReadSet()
	if err != nil {
		return u
	}
	ctx, cancel := context.WithTimeout(tenant.OutgoingContext(ctx, tenantID), d.cfg.RemoteTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		series int64
		rate   float64
	)
	u.Ingesters = len(instances)
	for _, inst := range instances {
		wg.Go(func() {
			resp, err := d.userStats(ctx, inst.Addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				u.IngestersFailed++
				return
			}
			series += resp.GetMemorySeries()
			rate += resp.GetIngestionRate()
		})
	}
	wg.Wait()
	rf := max(1, d.ring.ReplicationFactor())
	u.MemorySeries = series / int64(rf)
	u.IngestionRate = rate / float64(rf)
	return u
}

func (d *Distributor) userStats(ctx context.Context, addr string) (*arguspb.UserStatsResponse, error) {
	c, err := d.clients.Get(addr)
	if err != nil {
		return nil, err
	}
	s, ok := c.(userStatser)
	if !ok {
		return nil, apierror.Errorf(apierror.Internal, "the client of ingester %s has no UserStats", addr)
	}
	return s.UserStats(ctx, &arguspb.UserStatsRequest{})
}
