package querier

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_Defaults(t *testing.T) {
	// Prometheus 3's server defaults, so that answers match Prometheus's.
	require.Equal(t, Config{
		MaxConcurrent:             20,
		MaxSamples:                50_000_000,
		LookbackDelta:             5 * time.Minute,
		DefaultEvaluationInterval: time.Minute,
		LocalIngesterReads:        true,
	}, defaultConfig(t))
	cfg := defaultConfig(t)
	require.NoError(t, cfg.Validate())
}

func TestConfig_FlagsWithPrefix(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("x.", fs)
	require.NoError(t, fs.Parse([]string{"-x.querier.max-concurrent=3", "-x.querier.max-samples=7", "-x.querier.lookback-delta=1m", "-x.querier.default-evaluation-interval=30s", "-x.tenant-federation.enabled", "-x.querier.local-ingester-reads=false"}))
	require.Equal(t, Config{MaxConcurrent: 3, MaxSamples: 7, LookbackDelta: time.Minute, DefaultEvaluationInterval: 30 * time.Second, TenantFederationEnabled: true}, cfg)
	// The timeout is a per-tenant limit, registered by the limits package.
	require.Nil(t, fs.Lookup("x.querier.timeout"))
}

func TestConfig_Validate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"zero concurrency":     {func(c *Config) { c.MaxConcurrent = 0 }, "querier.max-concurrent"},
		"negative samples":     {func(c *Config) { c.MaxSamples = -1 }, "querier.max-samples"},
		"zero lookback":        {func(c *Config) { c.LookbackDelta = 0 }, "querier.lookback-delta"},
		"sub-ms eval interval": {func(c *Config) { c.DefaultEvaluationInterval = time.Microsecond }, "querier.default-evaluation-interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := defaultConfig(t)
			tc.mutate(&cfg)
			require.ErrorContains(t, cfg.Validate(), tc.want)
		})
	}
}
