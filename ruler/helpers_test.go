package ruler

import "flag"

// newFlagSet registers cfg's flags (their defaults) on a new flag set.
func newFlagSet(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	return fs
}
