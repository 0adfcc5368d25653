package auth

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// The gRPC side of Middleware: the public gRPC APIs (the query API,
// proto/argusquerypb) authenticate a call from its metadata exactly as
// Middleware does a request from its headers. gRPC metadata keys are
// lower-case HTTP headers, so "x-scope-orgid" is X-Scope-OrgID and
// "authorization" is Authorization; both resolve through the same code, so
// a call gets the same tenant, or the same err-argus-* refusal with the same
// text, as the HTTP request with those headers.

// StreamInterceptor authenticates every streaming call whose full method
// name starts with servicePrefix ("/argus.query.v1.Query/") as Middleware
// does with tenancy t, and passes every other call (the internal services,
// health, reflection) through untouched. A refused call ends with a status
// of the refusal's gRPC code (apierror.ID.GRPCCode) and its message.
func (a *Authenticator) StreamInterceptor(servicePrefix string, t Tenancy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, servicePrefix) {
			return handler(srv, ss)
		}
		ctx, err := a.authenticate(ss.Context(), t)
		if err != nil {
			return err
		}
		return handler(srv, tenantStream{ServerStream: ss, ctx: ctx})
	}
}

// UnaryInterceptor is StreamInterceptor for unary calls.
func (a *Authenticator) UnaryInterceptor(servicePrefix string, t Tenancy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, servicePrefix) {
			return handler(ctx, req)
		}
		ctx, err := a.authenticate(ctx, t)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// authenticate returns ctx with the call's tenant (tenant.With), or the
// refusal as a gRPC status error.
func (a *Authenticator) authenticate(ctx context.Context, t Tenancy) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := make(http.Header, 2)
	for _, v := range md.Get(strings.ToLower(tenant.HeaderName)) {
		h.Add(tenant.HeaderName, v)
	}
	for _, v := range md.Get("authorization") {
		h.Add("Authorization", v)
	}
	id, err := a.resolve(h, t)
	if err != nil {
		a.metrics.refused(err.ID)
		return nil, StatusError(err)
	}
	a.metrics.ok.Inc()
	return tenant.With(ctx, id), nil
}

// StatusError is the gRPC status of an API error: its ID's code and its
// whole text ("err-argus-<id>: <message>") as the message.
func StatusError(err *apierror.Error) error {
	return status.Error(err.ID.GRPCCode(), err.Error())
}

// tenantStream is a server stream whose context carries the tenant.
type tenantStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s tenantStream) Context() context.Context { return s.ctx }
