package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/distributor"
	"github.com/argus-tsdb/argus/ingester"
	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/limits"
	"github.com/argus-tsdb/argus/querier"
	"github.com/argus-tsdb/argus/ring"
	"github.com/argus-tsdb/argus/ruler"
	"github.com/argus-tsdb/argus/scraper"
)

// Roles a process can run, named by -target.
const (
	roleAll         = "all"
	roleDistributor = "distributor"
	roleIngester    = "ingester"
	roleQuerier     = "querier"
	roleScraper     = scraper.Role
	roleRuler       = ruler.Role
)

// Ring stores, named by -ingester.ring.store.
const (
	ringStoreStatic     = "static"
	ringStoreMemberlist = "memberlist"
)

// Config is the whole configuration of one argus process.
type Config struct {
	Target              string                `yaml:"target"`
	MultitenancyEnabled bool                  `yaml:"multitenancy_enabled"`
	IngesterAddresses   string                `yaml:"ingester_addresses"`
	RingStore           string                `yaml:"ring_store"`
	Server              ServerConfig          `yaml:"server"`
	Log                 LogConfig             `yaml:"log"`
	Ring                ring.Config           `yaml:"ring"`
	Memberlist          ring.MemberlistConfig `yaml:"memberlist"`
	Ingester            ingester.Config       `yaml:"ingester"`
	Distributor         distributor.Config    `yaml:"distributor"`
	Querier             querier.Config        `yaml:"querier"`
	Admin               querier.AdminConfig   `yaml:"api"`
	Limits              limits.Limits         `yaml:"limits"`
	Auth                auth.Config           `yaml:"auth"`
	RuntimeConfig       limits.Config         `yaml:"runtime_config"`
	Scraper             scraper.Config        `yaml:"scraper"`
	Ruler               ruler.Config          `yaml:"ruler"`
	PrintVersion        bool                  `yaml:"-"`
	ConfigFile          string                `yaml:"-"`
	ConfigExpandEnv     bool                  `yaml:"-"`

	// explicit holds the names of the flags set on the command line, for
	// defaults that follow other flags.
	explicit map[string]bool
}

// ServerConfig configures the HTTP and gRPC listeners.
type ServerConfig struct {
	HTTPListenAddress       string        `yaml:"http_listen_address"`
	HTTPListenPort          int           `yaml:"http_listen_port"`
	GRPCListenAddress       string        `yaml:"grpc_listen_address"`
	GRPCListenPort          int           `yaml:"grpc_listen_port"`
	GRPCMaxMsgSize          int           `yaml:"grpc_max_msg_size"`
	GracefulShutdownTimeout time.Duration `yaml:"graceful_shutdown_timeout"`
	// RegisterInstrumentation serves Go's profiles under /debug/pprof.
	RegisterInstrumentation bool `yaml:"register_instrumentation"`
}

// LogConfig configures the process logger.
type LogConfig struct {
	Level  string `yaml:"log_level"`
	Format string `yaml:"log_format"`
}

// RegisterFlags registers every flag of the process.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Target, "target", roleAll, "Comma-separated roles to run: all, distributor, ingester, querier, scraper, ruler. all includes the ruler, and the scraper only when -scraper.config-file is set.")
	f.BoolVar(&c.MultitenancyEnabled, "auth.multitenancy-enabled", true, "Require the X-Scope-OrgID header on every request. When false, every request belongs to tenant \"anonymous\".")
	f.StringVar(&c.IngesterAddresses, "ingester.client.addresses", "", "Comma-separated gRPC addresses of the ingesters of a static ring (-ingester.ring.store=static), for a distributor or querier without an ingester in its process. A cluster whose ingesters come and go uses the gossiped ring (-memberlist.join) instead.")
	f.StringVar(&c.RingStore, "ingester.ring.store", "", "Where the ring lives: memberlist (gossip, for a cluster) or static (this process's ingester, or -ingester.client.addresses). Empty picks static for -target=all without -memberlist.join, memberlist otherwise.")
	f.BoolVar(&c.PrintVersion, "version", false, "Print the version and exit.")
	c.registerConfigFileFlags(f)
	c.Server.RegisterFlags(f)
	c.Ring.RegisterFlags(f)
	c.Memberlist.RegisterFlags(f)
	c.Log.RegisterFlags(f)
	c.Ingester.RegisterFlags(f)
	c.Distributor.RegisterFlags(f)
	c.Querier.RegisterFlags(f)
	c.Admin.RegisterFlags(f)
	c.Limits.RegisterFlags(f)
	c.Auth.RegisterFlags(f)
	c.RuntimeConfig.RegisterFlags(f)
	c.Scraper.RegisterFlags(f)
	c.Ruler.RegisterFlags(f)
}

// RegisterFlags registers the server flags, named as in Mimir.
func (c *ServerConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP listen address; empty listens on every interface.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 8080, "HTTP listen port.")
	f.StringVar(&c.GRPCListenAddress, "server.grpc-listen-address", "", "gRPC listen address; empty listens on every interface.")
	f.IntVar(&c.GRPCListenPort, "server.grpc-listen-port", 9095, "gRPC listen port.")
	f.IntVar(&c.GRPCMaxMsgSize, "server.grpc-max-msg-size", 100<<20, "Largest gRPC message, in bytes, received or sent.")
	f.DurationVar(&c.GracefulShutdownTimeout, "server.graceful-shutdown-timeout", 30*time.Second, "How long in-flight requests may take to finish on SIGTERM, and how long the services may take to flush.")
	f.BoolVar(&c.RegisterInstrumentation, "server.register-instrumentation", false, "Serve Go's runtime profiles under /debug/pprof/ (CPU, heap, goroutines), unauthenticated. Off by default, unlike Mimir, because the profiles show internals; /metrics is served either way.")
}

// RegisterFlags registers the log flags.
func (c *LogConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Level, "log.level", "info", "Log level: debug, info, warn, error.")
	f.StringVar(&c.Format, "log.format", "logfmt", "Log format: logfmt or json.")
}

// Roles returns the set of roles named by Target.
func (c *Config) Roles() map[string]bool {
	roles := map[string]bool{}
	for _, r := range strings.Split(c.Target, ",") {
		r = strings.TrimSpace(r)
		if r == roleAll {
			roles[roleDistributor], roles[roleIngester], roles[roleQuerier], roles[roleRuler] = true, true, true, true
			if c.Scraper.ConfigFile != "" {
				roles[roleScraper] = true
			}
			continue
		}
		roles[r] = true
	}
	return roles
}

// roleList returns the roles that run, sorted: what the process gossips.
func (c *Config) roleList() []string {
	var out []string
	for r := range c.Roles() {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Validate checks the configuration of the roles that will run.
func (c *Config) Validate() error {
	roles := c.Roles()
	for r := range roles {
		switch r {
		case roleDistributor, roleIngester, roleQuerier, roleScraper, roleRuler:
		default:
			return fmt.Errorf("unknown target %q: want all, distributor, ingester, querier, scraper or ruler", r)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return fmt.Errorf("-log.level: %w", err)
	}
	if c.Log.Format != "logfmt" && c.Log.Format != "json" {
		return fmt.Errorf("-log.format: %q is neither logfmt nor json", c.Log.Format)
	}
	errs := []error{c.Limits.Validate(), c.RuntimeConfig.Validate(), c.Auth.Validate()}
	switch c.ringStore() {
	case ringStoreStatic:
		if !roles[roleIngester] && c.IngesterAddresses == "" {
			return errors.New("-ingester.client.addresses is required when no ingester runs in this process and the ring is static")
		}
	case ringStoreMemberlist:
		if roles[roleIngester] {
			errs = append(errs, c.Ring.ValidateInstance(), c.Memberlist.Validate())
		} else {
			errs = append(errs, c.Ring.Validate(), c.Memberlist.Validate())
		}
	default:
		return fmt.Errorf("-ingester.ring.store: %q is neither static nor memberlist", c.RingStore)
	}
	if roles[roleIngester] {
		errs = append(errs, c.Ingester.Validate())
	}
	if roles[roleDistributor] {
		errs = append(errs, c.Distributor.Validate())
	}
	if roles[roleQuerier] {
		errs = append(errs, c.Querier.Validate())
	}
	if roles[roleScraper] {
		errs = append(errs, c.Scraper.Validate())
		if !roles[roleDistributor] && c.Scraper.RemoteWriteURL == "" {
			errs = append(errs, errors.New("-scraper.remote-write-url is required when no distributor runs in this process"))
		}
	}
	if roles[roleRuler] {
		errs = append(errs, c.Ruler.Validate())
		if !roles[roleDistributor] && c.Ruler.RemoteWriteURL == "" {
			errs = append(errs, errors.New("-ruler.remote-write-url is required when no distributor runs in this process"))
		}
	}
	return errors.Join(errs...)
}

// ringStore resolves the ring store, defaulting as -ingester.ring.store says.
func (c *Config) ringStore() string {
	if c.RingStore != "" {
		return c.RingStore
	}
	if c.Target == roleAll && c.Memberlist.Join == "" {
		return ringStoreStatic
	}
	return ringStoreMemberlist
}

// applyDerivedDefaults fills in the defaults that follow other flags: an
// ingester advertises its own gRPC port and keeps its tokens in its data dir
// unless told otherwise.
func (c *Config) applyDerivedDefaults() {
	if c.Ring.InstancePort == 0 {
		c.Ring.InstancePort = c.Server.GRPCListenPort
	}
	if c.Ruler.StoragePath == "" {
		c.Ruler.StoragePath = filepath.Join(c.Ingester.Dir, "rules")
	}
	if c.Ring.TokensFilePath == "" && c.Roles()[roleIngester] {
		c.Ring.TokensFilePath = filepath.Join(c.Ingester.Dir, "tokens")
	}
	if c.Target == roleAll {
		for name, set := range allInOneLimits {
			if !c.explicit[name] {
				set(&c.Limits)
			}
		}
	}
}

// allInOneLimits are the per-tenant limit defaults of -target=all, by flag:
// the limits that keep the tenants of a shared cluster from crowding each
// other out only get in the way of the one user of an all-in-one, whose
// Prometheus (a million series at a 15 s interval is 67K samples/s, and a
// backfill after an outage is faster) would otherwise be throttled or cut
// off by the cluster defaults, which stay Mimir's. The process stays
// protected by its instance limits (-ingester.instance-limits.*,
// -distributor.instance-limits.*). A flag, a -config.file field or a
// runtime override sets them as for a cluster.
var allInOneLimits = map[string]func(*limits.Limits){
	"distributor.ingestion-rate-limit":      func(l *limits.Limits) { l.IngestionRate = 0 },
	"ingester.max-global-series-per-user":   func(l *limits.Limits) { l.MaxGlobalSeriesPerUser = 0 },
	"ingester.max-global-series-per-metric": func(l *limits.Limits) { l.MaxGlobalSeriesPerMetric = 0 },
}
