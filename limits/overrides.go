package limits

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/internal/filereload"
	"github.com/argus-tsdb/argus/internal/service"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// Config is the process configuration of the runtime config loader.
// Defaults are set in one place: RegisterFlagsWithPrefix.
type Config struct {
	// File is the path of the runtime config YAML file holding per-tenant
	// overrides. Empty means no overrides: every tenant gets the defaults.
	File string `yaml:"file"`
	// ReloadPeriod is how often File is re-read while running.
	ReloadPeriod time.Duration `yaml:"period"`
}

// RegisterFlags registers the runtime config flags on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the runtime config flags on f, each name
// prefixed with prefix.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.File, prefix+"runtime-config.file", "",
		"YAML file of per-tenant limit overrides, re-read while running. Empty means every tenant gets the flag defaults.")
	f.DurationVar(&c.ReloadPeriod, prefix+"runtime-config.reload-period", 10*time.Second,
		"How often the runtime config file is re-read.")
}

// Validate reports every invalid setting of c, joined.
func (c *Config) Validate() error {
	if c.ReloadPeriod <= 0 {
		return fmt.Errorf("-runtime-config.reload-period must be positive, got %s", c.ReloadPeriod)
	}
	return nil
}

// Deps are the runtime dependencies of Overrides.
type Deps struct {
	// Logger receives reload failures; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Overrides serves the limits in force for each tenant: the defaults, or the
// tenant's entry of the runtime config file, whose missing fields inherit
// the defaults. It is a service: Starting loads the file (and fails if it
// cannot), Running re-reads it every Config.ReloadPeriod. The reloading is a
// filereload.File's.
//
// The file looks like Mimir's:
//
//	overrides:
//	  tenant-a:
//	    ingestion_rate: 50000
//	    max_global_series_per_user: 1000000
//	  tenant-b:
//	    max_query_length: 720h
//
// Unknown fields, invalid tenant IDs and invalid limits make the whole file
// invalid. A reload that fails keeps the last good config in force, sets
// argus_runtime_config_last_reload_successful to 0 and logs why at Warn,
// once per distinct failure.
//
// For is safe for concurrent use with everything, and never blocks.
// Starting, Running and Stopping are called by one service manager, in that
// order.
type Overrides struct {
	defaults *Limits
	logger   *slog.Logger
	metrics  *filereload.Metrics

	// file serves the runtime config file; nil without one (Config.File
	// empty), when every tenant gets the defaults.
	file *filereload.File[snapshot]
}

// snapshot is one loaded runtime config: the limits of each tenant it names.
type snapshot struct {
	tenants map[string]*Limits
}

var _ service.Service = (*Overrides)(nil)

// New returns Overrides serving defaults to every tenant until Starting loads
// cfg.File. It does no I/O and starts no goroutine.
func New(cfg Config, defaults Limits, deps Deps) (*Overrides, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := defaults.Validate(); err != nil {
		return nil, fmt.Errorf("default limits: %w", err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Overrides{
		defaults: &defaults,
		logger:   logger.With("component", "runtime_config"),
		metrics:  newMetrics(deps.Registerer),
	}
	if cfg.File == "" {
		return o, nil
	}
	file, err := filereload.New(filereload.Config{
		Path: cfg.File, Period: cfg.ReloadPeriod, What: "runtime config", Err: ErrRuntimeConfig,
	}, filereload.Deps[snapshot]{
		Parse: func(data []byte) (*snapshot, error) {
			tenants, err := parse(data, o.defaults)
			if err != nil {
				return nil, err
			}
			return &snapshot{tenants: tenants}, nil
		},
		OnLoad: func(s *snapshot) {
			o.logger.Info("runtime config loaded", "file", cfg.File, "tenants", len(s.tenants))
		},
		Logger:  o.logger,
		Metrics: o.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("runtime config file: %w", err)
	}
	o.file = file
	return o, nil
}

// For returns the limits in force for tenant. The result is shared and must
// not be modified; it stays valid, with the values it had, after a reload.
// For never blocks and takes no lock.
func (o *Overrides) For(tenant string) *Limits {
	if o.file == nil {
		return o.defaults
	}
	if s := o.file.Load(); s != nil {
		if l, ok := s.tenants[tenant]; ok {
			return l
		}
	}
	return o.defaults
}

// Starting loads the runtime config file, if one is configured, and returns
// an error, matching ErrRuntimeConfig, if it cannot be read or is invalid.
func (o *Overrides) Starting(ctx context.Context) error {
	if o.file == nil {
		o.metrics.LastReloadSuccessful.Set(1)
		return nil
	}
	return o.file.Starting(ctx)
}

// Running re-reads the runtime config file every Config.ReloadPeriod until
// ctx is cancelled. A failed reload keeps the last good config; Running
// itself never fails.
func (o *Overrides) Running(ctx context.Context) error {
	if o.file == nil {
		<-ctx.Done()
		return nil
	}
	return o.file.Running(ctx)
}

// Stopping does nothing: Overrides holds no resource.
func (o *Overrides) Stopping(context.Context) error { return nil }

// parse decodes a runtime config file. Each tenant's entry is decoded onto a
// copy of defaults, so that the fields it does not name keep their default.
// It decodes twice: strictly (unknown fields are errors) to check the file,
// then leniently onto the defaults, which a strict decode into a map cannot
// do since it starts each map value from zero.
func parse(data []byte, defaults *Limits) (map[string]*Limits, error) {
	var strict struct {
		Overrides map[string]Limits `yaml:"overrides"`
	}
	if err := decodeStrict(data, &strict); err != nil {
		return nil, err
	}
	var nodes struct {
		Overrides map[string]yaml.Node `yaml:"overrides"`
	}
	if err := decodeStrict(data, &nodes); err != nil {
		return nil, err
	}
	tenants := make(map[string]*Limits, len(nodes.Overrides))
	var errs []error
	for id, node := range nodes.Overrides {
		if err := tenant.Validate(id); err != nil {
			errs = append(errs, fmt.Errorf("overrides of tenant %q: %w", id, err))
			continue
		}
		l := *defaults
		if err := node.Decode(&l); err != nil {
			errs = append(errs, fmt.Errorf("overrides of tenant %s: %w", id, err))
			continue
		}
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("overrides of tenant %s: %w", id, err))
			continue
		}
		tenants[id] = &l
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tenants, nil
}

// decodeStrict decodes the first YAML document of data into v, failing on
// unknown fields. An empty file is a valid empty config.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
