package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"

	"github.com/argus-tsdb/argus/distributor"
	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/grpccodec"
	"github.com/argus-tsdb/argus/internal/service"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/proto/arguspb"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/ring"
	"github.com/argus-tsdb/argus/ruler"
	"github.com/argus-tsdb/argus/scraper"
)

// app is one wired argus process.
type app struct {
	cfg      Config
	logger   *slog.Logger
	reg      *prometheus.Registry
	services []service.Named

	httpServer *http.Server
	httpLn     net.Listener
	grpc       *grpcService
	ingester   *ingester.Ingester // nil unless the ingester role runs
	overrides  *limits.Overrides
	auth       *auth.Authenticator
	clients    *distributor.ClientPool
	push       http.Handler     // the distributor's push handler, nil without a distributor
	scraper    *scraper.Scraper // nil unless the scraper role runs
	querier    *querier.Querier // nil unless the querier role runs
	ruler      *ruler.Ruler     // nil unless the ruler role runs
	lister     *ruler.Lister    // every ruler's groups; nil without a ruler or a gossiping querier
	ready      atomic.Bool
	health     *health.Server // gRPC health, as /ready
	queryAPI   bool           // the gRPC query API is registered
}

func newApp(cfg Config, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, logger: logger, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(a.reg)
	roles := cfg.Roles()

	// The per-tenant limits come first (after the gRPC server, as a
	// service): every other service reads them.
	overrides, err := limits.New(cfg.RuntimeConfig, cfg.Limits, limits.Deps{Logger: logger, Registerer: a.reg})
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	a.overrides = overrides
	a.auth, err = auth.New(cfg.Auth, auth.Options{MultitenancyEnabled: cfg.MultitenancyEnabled, ReloadPeriod: cfg.RuntimeConfig.ReloadPeriod},
		auth.Deps{Logger: logger, Registerer: a.reg})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	grpcServer := grpc.NewServer(append([]grpc.ServerOption{grpccodec.ServerOption(), grpc.MaxRecvMsgSize(cfg.Server.GRPCMaxMsgSize), grpc.MaxSendMsgSize(cfg.Server.GRPCMaxMsgSize)},
		append(grpccodec.ServerWindowOptions(), a.grpcAuthOptions()...)...)...)
	a.grpc = &grpcService{server: grpcServer, addr: hostPort(cfg.Server.GRPCListenAddress, cfg.Server.GRPCListenPort), logger: logger}
	a.registerGRPCServices(grpcServer)
	a.services = append(a.services, namedService("grpc-server", a.grpc), namedService("runtime-config", overrides), namedService("auth", a.auth))

	mux := http.NewServeMux()
	// The ring is built after the ingester (a static ring is the ingester's
	// own address): the ingester reads it through this late-bound view.
	ingesterRing := &lateRing{}
	if roles[roleIngester] {
		ing, err := ingester.New(cfg.Ingester, ingester.Deps{
			Logger: logger.With("component", "ingester"), Registerer: a.reg, Limits: overrides, Ring: ingesterRing,
		})
		if err != nil {
			return nil, fmt.Errorf("ingester: %w", err)
		}
		arguspb.RegisterIngesterServer(grpcServer, ing)
		grpccodec.RegisterIngesterSymbolsServer(grpcServer, ing)
		arguspb.RegisterSeriesSourceServer(grpcServer, ing)
		arguspb.RegisterIngesterAdminServer(grpcServer, ing.AdminServer())
		a.ingester = ing
	}
	rr, err := a.setupRing(mux)
	if err != nil {
		return nil, err
	}
	ingesterRing.r = rr
	if a.ingester != nil {
		a.services = append(a.services, namedService("ingester", a.ingester))
		if err := a.addLifecycler(rr); err != nil {
			return nil, err
		}
	}
	// One connection per ingester, shared by the distributor's pushes and
	// the querier's reads.
	a.clients = distributor.NewClientPool(
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpccodec.DialOption(), reconnectParams(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(a.cfg.Server.GRPCMaxMsgSize), grpc.MaxCallSendMsgSize(a.cfg.Server.GRPCMaxMsgSize)),
	)
	a.clients.SetMaxMsgSize(a.cfg.Server.GRPCMaxMsgSize)
	a.services = append(a.services, namedService("ingester-client-pool", a.clients.PruneService(rr, poolPrunePeriod)))
	if roles[roleDistributor] {
		if err := a.addDistributor(mux, rr); err != nil {
			return nil, err
		}
	}
	if roles[roleQuerier] {
		if err := a.addQuerier(mux, rr); err != nil {
			return nil, err
		}
	}
	if roles[roleRuler] {
		if err := a.addRuler(mux, rr); err != nil {
			return nil, err
		}
	}
	a.addRuleLister(mux, rr)
	if roles[roleScraper] {
		if err := a.addScraper(mux, rr); err != nil {
			return nil, err
		}
	}
	var health ingesterHealth // nil without an ingester (not a nil *Ingester)
	if a.ingester != nil {
		health = a.ingester
		mux.HandleFunc("/ingester/tenants", tenantsHandler(health))
	}
	mux.HandleFunc("/ready", readyHandler(&a.ready, health))
	mux.HandleFunc("GET /config", configHandler(cfg))
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	if cfg.Server.RegisterInstrumentation {
		registerPprof(mux)
	}
	mux.HandleFunc("/", a.serveIndex)
	a.httpServer = &http.Server{Handler: a.withErrorIDs(mux), ReadHeaderTimeout: 30 * time.Second}
	return a, nil
}

// ingesterAddresses is the static ring of this process: its own gRPC server
// when the ingester runs here, else -ingester.client.addresses.
func (a *app) ingesterAddresses() []string {
	if a.ingester != nil {
		host := a.cfg.Server.GRPCListenAddress
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return []string{hostPort(host, a.cfg.Server.GRPCListenPort)}
	}
	var addrs []string
	for _, s := range strings.Split(a.cfg.IngesterAddresses, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	return addrs
}

// localInstanceID is the ID under which the ring lists this process's
// ingester: its address in a static ring (ingesterAddresses), its
// -ingester.ring.instance-id in the gossiped one.
func (a *app) localInstanceID() string {
	if a.cfg.ringStore() == ringStoreStatic {
		return a.ingesterAddresses()[0]
	}
	return a.cfg.Ring.InstanceID
}

func (a *app) addDistributor(mux *http.ServeMux, r replicaRing) error {
	deps := distributor.Deps{
		Ring: r, Clients: a.distributorClients(), Limits: a.overrides, Distributors: r,
		Logger: a.logger.With("component", "distributor"), Registerer: a.reg,
	}
	if kv, ok := r.(*ring.KV); ok {
		deps.HAElections = kv // Every distributor reads the same elections.
	}
	d, err := distributor.New(a.cfg.Distributor, deps)
	if err != nil {
		return fmt.Errorf("distributor: %w", err)
	}
	a.services = append(a.services, namedService("distributor", d))
	a.push = d.PushHandler()
	push := a.auth.Middleware(d.PushHandler(), auth.OneTenant)
	// Mimir's path, and the aliases Prometheus-style receivers use.
	for _, p := range []string{"/api/v1/push", "/api/v1/write", "/api/v1/receive"} {
		mux.Handle(p, push)
	}
	otlp := a.auth.Middleware(d.OTLPHandler(), auth.OneTenant)
	for _, p := range []string{"/otlp/v1/metrics", "/api/v1/otlp/v1/metrics"} { // Mimir's, Prometheus's
		mux.Handle(p, otlp)
	}
	mux.Handle("GET /api/v1/user_limits", a.auth.Middleware(d.UserLimitsHandler(), auth.OneTenant))
	mux.Handle("GET /distributor/ha_tracker", d.HATrackerHandler())
	return nil
}

func (a *app) addQuerier(mux *http.ServeMux, rr replicaRing) error {
	deps := querier.Deps{
		Replicas: rr, Sources: a.seriesSource, Limits: a.overrides,
		Logger: a.logger.With("component", "querier"), Registerer: a.reg, Gatherer: a.reg,
		Flags: processFlags(a.cfg),
	}
	if a.ingester != nil && a.cfg.Querier.LocalIngesterReads {
		deps.Local, deps.LocalID = a.ingester, a.localInstanceID()
	}
	// The ruler is built after the querier (it reads through the querier's
	// Queryable): the API reads it late-bound, before any request.
	deps.Rules = func(ctx context.Context) v1.RulesRetriever { return a.ruler.TenantView(ctx) }
	deps.Alertmanagers = func(ctx context.Context) v1.AlertmanagerRetriever { return a.ruler.TenantView(ctx) }
	q, err := querier.New(a.cfg.Querier, deps)
	if err != nil {
		return fmt.Errorf("querier: %w", err)
	}
	a.querier = q
	mux.Handle("/prometheus/", a.promAPI(a.auth.Middleware(q.Handler(), a.readTenancy())))
	a.registerQueryAPI(q)
	return a.addAdmin(mux, rr)
}

// addAdmin mounts the admin API (only admin tokens pass) and the TSDB
// status and cardinality endpoints (one tenant) over every ingester.
func (a *app) addAdmin(mux *http.ServeMux, rr replicaRing) error {
	admin, err := querier.NewAdmin(a.cfg.Admin, querier.AdminDeps{Ring: rr, Clients: a.ingesterAdmin, Logger: a.logger.With("component", "admin")})
	if err != nil {
		return fmt.Errorf("admin api: %w", err)
	}
	for _, p := range querier.AdminPaths {
		mux.Handle(p, a.auth.Middleware(admin.AdminHandler(), auth.OneTenantAdmin))
	}
	for _, p := range querier.StatsPaths {
		mux.Handle(p, a.auth.Middleware(admin.StatsHandler(), auth.OneTenant))
	}
	return nil
}

// run serves HTTP at once (so /ready and /metrics answer during a WAL replay),
// then runs the services until ctx is cancelled.
func (a *app) run(ctx context.Context) error {
	addr := hostPort(a.cfg.Server.HTTPListenAddress, a.cfg.Server.HTTPListenPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", addr, err)
	}
	a.httpLn = ln
	go func() {
		if err := a.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("http server failed", "err", err)
		}
	}()
	defer a.closeClients()
	defer a.httpServer.Close()

	m := service.NewManager(a.logger, a.services...)
	return m.Run(ctx, stopContext(a.cfg.Server.GracefulShutdownTimeout), func() {
		a.ready.Store(true)
		a.setServing(true)
		a.logStartup(ln.Addr().String())
	})
}

// drain is the first phase of a graceful stop: /ready fails, new HTTP
// requests are refused and in-flight ones finish (pushes reach the WAL).
func (a *app) drain(timeout time.Duration) {
	a.ready.Store(false)
	a.setServing(false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.httpServer.Shutdown(ctx); err != nil {
		a.logger.Warn("http requests still in flight at shutdown deadline", "err", err)
	}
}

func (a *app) closeClients() {
	if a.clients != nil {
		a.clients.Close()
	}
}

func (a *app) logStartup(httpAddr string) {
	host, port, _ := net.SplitHostPort(httpAddr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	// Only what this process serves: an ingester alone has no push or
	// query URL, and a process without an ingester no storage.
	attrs := []any{"target", a.cfg.Target, "status_page", base + "/"}
	roles := a.cfg.Roles()
	if roles[roleDistributor] {
		attrs = append(attrs, "push_url", base+"/api/v1/push")
	}
	if roles[roleQuerier] {
		attrs = append(attrs, "query_url", base+querier.PathPrefix)
	}
	attrs = append(attrs, "grpc", a.grpc.boundAddr())
	if a.ingester != nil {
		attrs = append(attrs, "storage_path", a.cfg.Ingester.Dir)
	}
	attrs = append(attrs, "multitenancy", a.cfg.MultitenancyEnabled, "version", Version)
	a.logger.Info("argus is ready", attrs...)
}

// serviceEntry is one service of the process, in start order.
type serviceEntry = service.Named

func namedService(name string, s service.Service) serviceEntry {
	return serviceEntry{Name: name, Service: s}
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// grpcService serves the gRPC server as a service: it binds in Starting and
// stops gracefully (in-flight calls finish) in Stopping.
type grpcService struct {
	server *grpc.Server
	addr   string
	logger *slog.Logger
	ln     net.Listener
	errc   chan error
}

func (g *grpcService) Starting(context.Context) error {
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("listen grpc %s: %w", g.addr, err)
	}
	g.ln = ln
	g.errc = make(chan error, 1)
	go func() { g.errc <- g.server.Serve(ln) }()
	return nil
}

func (g *grpcService) Running(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-g.errc:
		return fmt.Errorf("grpc server: %w", err)
	}
}

func (g *grpcService) Stopping(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.server.Stop()
	}
	return nil
}

func (g *grpcService) boundAddr() string {
	if g.ln == nil {
		return g.addr
	}
	return g.ln.Addr().String()
}

// seriesSource is the querier's client of an ingester, on the connection
// the distributor's pushes use too.
func (a *app) seriesSource(addr string) (arguspb.SeriesSourceClient, error) {
	conn, err := a.clients.Conn(addr)
	if err != nil {
		return nil, err
	}
	return arguspb.NewSeriesSourceClient(conn), nil
}

// ingesterAdmin is the admin API's client of an ingester, on the shared
// connection.
func (a *app) ingesterAdmin(addr string) (arguspb.IngesterAdminClient, error) {
	conn, err := a.clients.Conn(addr)
	if err != nil {
		return nil, err
	}
	return arguspb.NewIngesterAdminClient(conn), nil
}

// poolPrunePeriod is how often the connections to ingesters that left the
// ring are closed.
const poolPrunePeriod = 30 * time.Second

// reconnectParams caps gRPC's reconnect backoff to ingesters at a second.
// gRPC's default grows to 120 s, so an ingester that restarts after a long
// outage would stay unreachable for up to two minutes after the ring shows
// it ACTIVE again, failing writes that a quorum could have taken.
func reconnectParams() grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 5 * time.Second,
	})
}

// registerPprof serves Go's profiles as net/http/pprof does on its default
// mux, which the process does not use.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
