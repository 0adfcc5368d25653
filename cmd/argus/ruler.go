package main

import (
	"fmt"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/ring"
	"github.com/argus-tsdb/argus/ruler"
	"github.com/argus-tsdb/argus/scraper"
)

// addRuler runs the ruler role: it queries through the querier's Queryable
// (this process's querier, or one built for the ruler alone), writes to
// -ruler.remote-write-url if set, else in-process to this process's
// distributor, and shares the rule groups with the other rulers of the
// gossip cluster, if there is one. It is added after the distributor and
// the ingester, so that it starts after them and stops before them.
func (a *app) addRuler(mux *http.ServeMux, rr replicaRing) error {
	q := a.querier
	if q == nil {
		var err error
		q, err = querier.New(a.cfg.Querier, querier.Deps{Replicas: rr, Sources: a.seriesSource, Limits: a.overrides, Logger: a.logger.With("component", "ruler-querier")})
		if err != nil {
			return fmt.Errorf("ruler querier: %w", err)
		}
	}
	deps := ruler.Deps{Queryable: q.Queryable(), Logger: a.logger.With("component", "ruler"), Registerer: a.reg, Limits: a.overrides}
	if a.cfg.Ruler.RemoteWriteURL != "" {
		deps.Pusher = scraper.NewRemoteWriter(a.cfg.Ruler.RemoteWriteURL, a.cfg.Ruler.RemoteTimeout)
	} else {
		deps.Pusher = scraper.NewHandlerPusher(a.push)
	}
	if kv, ok := rr.(*ring.KV); ok {
		deps.Membership = kv
	}
	r, err := ruler.New(a.cfg.Ruler, deps)
	if err != nil {
		return fmt.Errorf("ruler: %w", err)
	}
	a.ruler = r
	a.services = append(a.services, namedService("ruler", r))
	h := a.auth.Middleware(r.ConfigHandler(), auth.OneTenant)
	for _, p := range ruler.RoutePatterns() {
		mux.Handle(p, h)
	}
	return nil
}

// addRuleLister serves /prometheus/api/v1/rules and /alerts with every
// ruler's groups (ruler.Lister) on a process that runs the ruler, or a
// querier in a gossip cluster, which finds the rulers by their role. The
// ruler's own gRPC service answers the other processes' Listers.
func (a *app) addRuleLister(mux *http.ServeMux, rr replicaRing) {
	kv, gossip := rr.(*ring.KV)
	if a.ruler == nil && (a.querier == nil || !gossip) {
		return
	}
	deps := ruler.ListerDeps{
		Local:  a.ruler,
		Logger: a.logger.With("component", "ruler-lister"),
		DialOptions: []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption(), reconnectParams(),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(a.cfg.Server.GRPCMaxMsgSize)),
		},
	}
	if gossip {
		deps.Membership = kv
	}
	if a.ruler != nil {
		arguspb.RegisterRulerServer(a.grpc.server, a.ruler.GRPCServer())
	}
	a.lister = ruler.NewLister(deps)
	a.services = append(a.services, namedService("ruler-lister", a.lister))
	h := a.auth.Middleware(a.lister, auth.OneTenant)
	for _, p := range ruler.ListPaths {
		mux.Handle(p, h)
	}
}
