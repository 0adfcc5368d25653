package querier

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config configures the querier: the PromQL engine limits and tenant
// federation. The engine's defaults are those of a Prometheus 3 server
// (--query.max-concurrency, --query.max-samples, --query.lookback-delta and
// the global evaluation_interval), so that Argus answers a query as
// Prometheus would. The query timeout (-querier.timeout) is a per-tenant
// limit, registered by the limits package (limits.Limits.QueryTimeout).
type Config struct {
	// MaxConcurrent is how many queries run at once; others wait for a slot.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxSamples is how many samples a single query may hold in memory.
	MaxSamples int `yaml:"max_samples"`
	// LookbackDelta is how far back an instant selector looks for a sample.
	LookbackDelta time.Duration `yaml:"lookback_delta"`
	// DefaultEvaluationInterval is the step of a subquery that names none
	// (`x[1h:]`), Prometheus's global evaluation_interval.
	DefaultEvaluationInterval time.Duration `yaml:"default_evaluation_interval" category:"advanced"`
	// TenantFederationEnabled lets a read name several tenants (a|b) and
	// answers it over all of them, each series labelled __tenant_id__.
	TenantFederationEnabled bool `yaml:"tenant_federation_enabled"`
	// LocalIngesterReads reads the ingester of the querier's own process
	// through Go calls rather than gRPC (Deps.Local).
	LocalIngesterReads bool `yaml:"local_ingester_reads" category:"advanced"`
}

// RegisterFlags registers the querier flags, namespaced -querier.* (and
// -tenant-federation.enabled, Mimir's name), on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the querier flags on f with every name
// prefixed by prefix. The defaults set here are the only defaults.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxConcurrent, prefix+"querier.max-concurrent", 20, "Maximum number of queries executed concurrently; further queries wait.")
	f.IntVar(&c.MaxSamples, prefix+"querier.max-samples", 50000000, "Maximum number of samples a single query can load into memory.")
	f.DurationVar(&c.LookbackDelta, prefix+"querier.lookback-delta", 5*time.Minute, "How far back an instant vector selector looks for the latest sample of a series.")
	f.DurationVar(&c.DefaultEvaluationInterval, prefix+"querier.default-evaluation-interval", time.Minute, "Step of subqueries that do not name one, as Prometheus's global evaluation_interval.")
	f.BoolVar(&c.LocalIngesterReads, prefix+"querier.local-ingester-reads", true, "When the ingester runs in the same process (-target=all), read it through in-process calls instead of gRPC: the same answers without encoding, sending and decoding every series. False reads it over gRPC like any other ingester.")
	f.BoolVar(&c.TenantFederationEnabled, prefix+"tenant-federation.enabled", false, "Let a read name several tenants separated by | in X-Scope-OrgID and answer it over all of them, each series labelled __tenant_id__ with its tenant. Each tenant's query limits apply to its part of the read.")
}

// Validate reports every invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxConcurrent <= 0 {
		errs = append(errs, fmt.Errorf("querier.max-concurrent must be positive, got %d", c.MaxConcurrent))
	}
	if c.MaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("querier.max-samples must be positive, got %d", c.MaxSamples))
	}
	if c.LookbackDelta <= 0 {
		errs = append(errs, fmt.Errorf("querier.lookback-delta must be positive, got %s", c.LookbackDelta))
	}
	if c.DefaultEvaluationInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("querier.default-evaluation-interval must be at least 1ms, got %s", c.DefaultEvaluationInterval))
	}
	return errors.Join(errs...)
}
