package main

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/proto/argusquerypb"
	"github.com/argus-tsdb/argus/querier"
)

// The public gRPC query API (proto/argusquerypb) shares the gRPC port with
// the internal services. Its calls, and only its calls, pass the same
// authentication as the HTTP API; reflection (for grpcurl) and the standard
// health service (for Kubernetes gRPC probes) answer every role.

// readTenancy is how many tenants a read may name.
func (a *app) readTenancy() auth.Tenancy {
	if a.cfg.Querier.TenantFederationEnabled {
		return auth.Federated
	}
	return auth.OneTenant
}

// grpcAuthOptions authenticate the calls of the query API.
func (a *app) grpcAuthOptions() []grpc.ServerOption {
	prefix := "/" + querier.QueryServiceName + "/"
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(a.auth.StreamInterceptor(prefix, a.readTenancy())),
		grpc.ChainUnaryInterceptor(a.auth.UnaryInterceptor(prefix, a.readTenancy())),
	}
}

// registerGRPCServices registers reflection and health, and the query API
// when q is not nil. Health answers NOT_SERVING until the process is ready
// (setServing), as /ready does.
func (a *app) registerGRPCServices(s *grpc.Server) {
	a.health = health.NewServer()
	a.setServing(false)
	healthpb.RegisterHealthServer(s, a.health)
	reflection.Register(s)
}

// registerQueryAPI serves q's gRPC query API.
func (a *app) registerQueryAPI(q *querier.Querier) {
	argusquerypb.RegisterQueryServer(a.grpc.server, q.QueryServer())
	a.queryAPI = true
}

// setServing sets the health of the process ("") and of the query API.
func (a *app) setServing(on bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if on {
		st = healthpb.HealthCheckResponse_SERVING
	}
	a.health.SetServingStatus("", st)
	if a.queryAPI {
		a.health.SetServingStatus(querier.QueryServiceName, st)
	}
}
