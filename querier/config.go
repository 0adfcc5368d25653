package querier

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config configures the querier: the PromQL engine limits. The defaults are
// those of a Prometheus 3 server (--query.timeout, --query.max-concurrency,
// --query.max-samples, --query.lookback-delta and the global
// evaluation_interval), so that Argus answers a query as Prometheus would.
type Config struct {
	// Timeout is the longest a query may run before it is aborted.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrent is how many queries run at once; others wait for a slot.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxSamples is how many samples a single query may hold in memory.
	MaxSamples int `yaml:"max_samples"`
	// LookbackDelta is how far back an instant selector looks for a sample.
	LookbackDelta time.Duration `yaml:"lookback_delta"`
	// DefaultEvaluationInterval is the step of a subquery that names none
	// (`x[1h:]`), Prometheus's global evaluation_interval.
	DefaultEvaluationInterval time.Duration `yaml:"default_evaluation_interval" category:"advanced"`
}

// RegisterFlags registers the querier flags, namespaced -querier.*, on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the querier flags on f with every name
// prefixed by prefix. The defaults set here are the only defaults.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.Timeout, prefix+"querier.timeout", 2*time.Minute, "Maximum time a query may take before it is aborted.")
	f.IntVar(&c.MaxConcurrent, prefix+"querier.max-concurrent", 20, "Maximum number of queries executed concurrently; further queries wait.")
	f.IntVar(&c.MaxSamples, prefix+"querier.max-samples", 50000000, "Maximum number of samples a single query can load into memory.")
	f.DurationVar(&c.LookbackDelta, prefix+"querier.lookback-delta", 5*time.Minute, "How far back an instant vector selector looks for the latest sample of a series.")
	f.DurationVar(&c.DefaultEvaluationInterval, prefix+"querier.default-evaluation-interval", time.Minute, "Step of subqueries that do not name one, as Prometheus's global evaluation_interval.")
}

// Validate reports every invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("querier.timeout must be positive, got %s", c.Timeout))
	}
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
