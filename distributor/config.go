package distributor

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is the process configuration of the distributor. Defaults are set in
// one place: RegisterFlagsWithPrefix.
//
// The per-tenant limits of the write path (rate, labels, grace period,
// request size) are the limits package's.
type Config struct {
	// RemoteTimeout bounds each push to one ingester.
	RemoteTimeout time.Duration `yaml:"remote_timeout"`
	// MaxErrorsInResponse caps the rejected series listed, one a line, in the
	// body of a 400 answer. The summary line always counts all of them.
	MaxErrorsInResponse int `yaml:"max_errors_in_response"`
	// IdleTenantTimeout is how long a tenant may push nothing before the
	// distributor forgets it: its metric series and its rate-limit bucket.
	IdleTenantTimeout time.Duration `yaml:"idle_tenant_timeout"`
	// InstanceLimits bound the pushes this distributor holds in flight.
	InstanceLimits InstanceLimits `yaml:"instance_limits"`
	// LocalIngesterPushes pushes to the ingester of the same process
	// through a Go call rather than gRPC (see local.go).
	LocalIngesterPushes bool `yaml:"local_ingester_pushes"`
	// HATracker deduplicates Prometheus HA pairs (hatracker.go).
	HATracker HATrackerConfig `yaml:"ha_tracker"`
}

// RegisterFlags registers the flags of c with their defaults on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the flags of c, each name prefixed with
// prefix, with their defaults on f.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.RemoteTimeout, prefix+"distributor.remote-timeout", 20*time.Second,
		"Timeout of each push from the distributor to one ingester.")
	f.IntVar(&c.MaxErrorsInResponse, prefix+"distributor.max-errors-in-response", 10,
		"Most rejected series listed in the body of a 400 answer to a push; the first line always counts all of them.")
	f.DurationVar(&c.IdleTenantTimeout, prefix+"distributor.idle-tenant-timeout", time.Hour,
		"How long a tenant may push nothing before the distributor deletes its per-tenant metric series and forgets its rate-limit bucket (a bucket still in debt is kept).")
	f.BoolVar(&c.LocalIngesterPushes, prefix+"distributor.local-ingester-pushes", true,
		"When the ingester runs in the same process (-target=all), push to it through an in-process call instead of gRPC: the same answers and errors without the gRPC client, server and loopback connection. False pushes over gRPC like to any other ingester.")
	c.InstanceLimits.RegisterFlagsWithPrefix(prefix, f)
	c.HATracker.RegisterFlagsWithPrefix(prefix, f)
}

// Validate reports every invalid setting of c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.RemoteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-distributor.remote-timeout must be positive, got %s", c.RemoteTimeout))
	}
	if c.MaxErrorsInResponse < 0 {
		errs = append(errs, fmt.Errorf("-distributor.max-errors-in-response must not be negative, got %d", c.MaxErrorsInResponse))
	}
	if c.IdleTenantTimeout < time.Second {
		errs = append(errs, fmt.Errorf("-distributor.idle-tenant-timeout must be at least 1s, got %s", c.IdleTenantTimeout))
	}
	if err := c.InstanceLimits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.HATracker.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
