package limits

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

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
// cannot), Running re-reads it every Config.ReloadPeriod.
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
	cfg      Config
	defaults *Limits
	logger   *slog.Logger
	metrics  *metrics

	// current is replaced whole by a reload, never modified.
	current atomic.Pointer[snapshot]

	// Owned by the goroutine that runs Starting, then Running.
	lastHash    [sha256.Size]byte
	lastWarning string
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
		cfg:      cfg,
		defaults: &defaults,
		logger:   logger.With("component", "runtime_config"),
		metrics:  newMetrics(deps.Registerer),
	}
	o.current.Store(&snapshot{})
	return o, nil
}

// For returns the limits in force for tenant. The result is shared and must
// not be modified; it stays valid, with the values it had, after a reload.
// For never blocks and takes no lock.
func (o *Overrides) For(tenant string) *Limits {
	if l, ok := o.current.Load().tenants[tenant]; ok {
		return l
	}
	return o.defaults
}

// Starting loads the runtime config file, if one is configured, and returns
// an error if it cannot be read or is invalid.
func (o *Overrides) Starting(ctx context.Context) error {
	if o.cfg.File == "" {
		o.metrics.lastReloadSuccessful.Set(1)
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return o.reload()
}

// Running re-reads the runtime config file every Config.ReloadPeriod until
// ctx is cancelled. A failed reload keeps the last good config; Running
// itself never fails.
func (o *Overrides) Running(ctx context.Context) error {
	if o.cfg.File == "" {
		<-ctx.Done()
		return nil
	}
	ticker := time.NewTicker(o.cfg.ReloadPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := o.reload(); err != nil {
				o.warnOnce(err)
			}
		}
	}
}

// Stopping does nothing: Overrides holds no resource.
func (o *Overrides) Stopping(context.Context) error { return nil }

// reload reads and parses the file, and swaps it in if it is valid.
func (o *Overrides) reload() error {
	tenants, hash, err := load(o.cfg.File, o.defaults)
	if err != nil {
		o.metrics.reloadFailures.Inc()
		o.metrics.lastReloadSuccessful.Set(0)
		return runtimeConfigError{file: o.cfg.File, err: err}
	}
	o.metrics.reloadSuccesses.Inc()
	o.metrics.lastReloadSuccessful.Set(1)
	o.lastWarning = ""
	if hash == o.lastHash && o.current.Load().tenants != nil {
		return nil
	}
	o.current.Store(&snapshot{tenants: tenants})
	o.lastHash = hash
	o.logger.Info("runtime config loaded", "file", o.cfg.File, "tenants", len(tenants))
	return nil
}

// warnOnce logs a reload failure unless it is the same as the last one
// logged since the last success.
func (o *Overrides) warnOnce(err error) {
	msg := err.Error()
	if msg == o.lastWarning {
		return
	}
	o.lastWarning = msg
	o.logger.Warn("runtime config reload failed, keeping last good config",
		"file", o.cfg.File, "err", err, "see_metric", "argus_runtime_config_last_reload_successful")
}

// load reads file and parses it onto defaults.
func load(file string, defaults *Limits) (map[string]*Limits, [sha256.Size]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	tenants, err := parse(data, defaults)
	return tenants, sha256.Sum256(data), err
}

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
