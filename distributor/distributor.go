package distributor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/ring"
)

// replicaPicker is what routing needs from the ring. *ring.Ring and
// *ring.Static satisfy it. It must be safe for concurrent use.
type replicaPicker interface {
	// Get returns the distinct healthy replicas of token, at most
	// ReplicationFactor, appended to buf (which the caller owns), or an error
	// (wrapping ring.ErrTooFewHealthy when fewer than a quorum are healthy).
	Get(token uint32, buf []ring.Instance) ([]ring.Instance, error)
	// ReplicationFactor is how many replicas hold each series; a write needs
	// ReplicationFactor/2+1 of them, however many Get returned.
	ReplicationFactor() int
}

// Pusher sends one WriteRequest to one ingester; arguspb.IngesterClient
// satisfies it. It must be safe for concurrent use.
//
// # Ownership
//
// The request, its series and their label strings are owned by the
// distributor and may alias a pooled buffer: Push must not keep any of them
// after it returns (the gRPC client marshals the request before it returns).
// The response belongs to the caller.
type Pusher interface {
	Push(ctx context.Context, in *arguspb.WriteRequest, opts ...grpc.CallOption) (*arguspb.PushResponse, error)
}

// ClientFactory gives the Pusher of the ingester at a gRPC address
// (host:port). Get is called on every push to every ingester, so it should
// cache its clients (see ClientPool). It must be safe for concurrent use.
type ClientFactory interface {
	Get(addr string) (Pusher, error)
}

// ClientFactoryFunc adapts a function to ClientFactory.
type ClientFactoryFunc func(addr string) (Pusher, error)

// Get calls f(addr).
func (f ClientFactoryFunc) Get(addr string) (Pusher, error) { return f(addr) }

// tenantLimits gives the limits in force for a tenant; limits.Overrides
// satisfies it. The result is shared and read-only; it is looked up on every
// push, so that a reload of the runtime config applies to the next one.
type tenantLimits interface {
	For(tenant string) *limits.Limits
}

// memberCounter counts the healthy gossip members of a role; *ring.KV and
// *ring.Static satisfy it. The ingestion rate limit of a tenant is shared by
// the healthy distributors.
type memberCounter interface {
	HealthyMembers(role string) int
}

// Deps are the runtime dependencies of a Distributor.
type Deps struct {
	// Limits gives each tenant's limits. Required.
	Limits tenantLimits
	// Distributors counts the healthy distributors; nil means this one alone.
	Distributors memberCounter
	// Ring places each series on its ingesters. Required.
	Ring replicaPicker
	// Clients gives a Pusher per ingester address. Required.
	Clients ClientFactory
	// HAElections holds the HA tracker's elections (a *ring.KV gossips
	// them); nil keeps them in this process.
	HAElections haStore
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Distributor is the write path. Its methods are safe for concurrent use. It
// runs no goroutine of its own: each push fans out to the ingesters on
// goroutines that end at the latest -distributor.remote-timeout after they
// start, some after the push is answered (see pushBatches).
type Distributor struct {
	cfg          Config
	limits       tenantLimits
	distributors memberCounter
	rates        *rateLimiter
	ring         replicaPicker
	clients      ClientFactory
	logger       *slog.Logger
	metrics      *metrics
	warns        *throttle
	inflight     *inflight  // -distributor.instance-limits.*
	ha           *haTracker // nil unless -distributor.ha-tracker.enable
	// dict is the series refs' dictionary of clients, if it has one
	// (dictSource): validate skips the label checks of the series it knows.
	dict *seriesDict
	// pushes counts the ingester pushes running, stragglers included.
	pushes sync.WaitGroup
	// now is the clock of the too-far-in-the-future check; tests replace it.
	now func() time.Time
}

// New builds a Distributor. It does no I/O and starts no goroutine.
func New(cfg Config, deps Deps) (*Distributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Ring == nil {
		return nil, errors.New("distributor needs a ring")
	}
	if deps.Clients == nil {
		return nil, errors.New("distributor needs an ingester client factory")
	}
	if deps.Limits == nil {
		return nil, errors.New("distributor needs per-tenant limits")
	}
	distributors := deps.Distributors
	if distributors == nil {
		distributors = alone{}
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Distributor{
		cfg:          cfg,
		limits:       deps.Limits,
		distributors: distributors,
		rates:        &rateLimiter{},
		ring:         deps.Ring,
		clients:      deps.Clients,
		logger:       logger.With("component", "distributor"),
		metrics:      newMetrics(deps.Registerer),
		warns:        newThrottle(warnInterval),
		inflight:     newInflight(cfg.InstanceLimits, deps.Registerer),
		now:          time.Now,
	}
	if ds, ok := deps.Clients.(dictSource); ok {
		d.dict = ds.seriesDictionary()
	}
	if cfg.HATracker.EnableHATracker {
		d.ha = newHATracker(cfg.HATracker, deps.HAElections, deps.Registerer)
	}
	if deps.Registerer != nil {
		deps.Registerer.MustRegister(newRateCollector(d.rates, func() time.Time { return d.now() }))
	}
	return d, nil
}

// WaitPushes blocks until every ingester push started so far has returned,
// the stragglers of answered pushes included: at most
// -distributor.remote-timeout. A process calls it after its HTTP server
// stopped, before it closes the client connections.
func (d *Distributor) WaitPushes() { d.pushes.Wait() }

// alone counts this distributor only.
type alone struct{}

func (alone) HealthyMembers(string) int { return 1 }
