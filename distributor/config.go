package distributor

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is the process configuration of the distributor. Defaults are set in
// one place: RegisterFlagsWithPrefix.
type Config struct {
	// MaxRecvMsgSize bounds, in bytes, both the compressed body of a push and
	// its snappy-decoded size.
	MaxRecvMsgSize int `yaml:"max_recv_msg_size"`
	// RemoteTimeout bounds each push to one ingester.
	RemoteTimeout time.Duration `yaml:"remote_timeout"`
	// MaxErrorsInResponse caps the rejected series listed, one a line, in the
	// body of a 400 answer. The summary line always counts all of them.
	MaxErrorsInResponse int `yaml:"max_errors_in_response"`
	// CreationGracePeriod is how far after the distributor's clock a sample's
	// timestamp may be. Later samples are rejected as too far in the future.
	CreationGracePeriod time.Duration `yaml:"creation_grace_period"`
}

// RegisterFlags registers the flags of c with their defaults on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the flags of c, each name prefixed with
// prefix, with their defaults on f.
//
// The grace period is registered as -validation.create-grace-period, Mimir's
// name, so that it keeps its name when it moves to the per-tenant limits
// package.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxRecvMsgSize, prefix+"distributor.max-recv-msg-size", 100<<20,
		"Largest push accepted, in bytes, both compressed and once snappy-decoded. A larger push is answered 400, so that the sender drops it instead of retrying it forever.")
	f.DurationVar(&c.RemoteTimeout, prefix+"distributor.remote-timeout", 20*time.Second,
		"Timeout of each push from the distributor to one ingester.")
	f.IntVar(&c.MaxErrorsInResponse, prefix+"distributor.max-errors-in-response", 10,
		"Most rejected series listed in the body of a 400 answer to a push; the first line always counts all of them.")
	f.DurationVar(&c.CreationGracePeriod, prefix+"validation.create-grace-period", 10*time.Minute,
		"How far in the future of the distributor's clock a sample's timestamp may be. Later samples are rejected.")
}

// Validate reports every invalid setting of c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxRecvMsgSize <= 0 {
		errs = append(errs, fmt.Errorf("-distributor.max-recv-msg-size must be positive, got %d", c.MaxRecvMsgSize))
	}
	if c.RemoteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-distributor.remote-timeout must be positive, got %s", c.RemoteTimeout))
	}
	if c.MaxErrorsInResponse < 0 {
		errs = append(errs, fmt.Errorf("-distributor.max-errors-in-response must not be negative, got %d", c.MaxErrorsInResponse))
	}
	if c.CreationGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("-validation.create-grace-period must not be negative, got %s", c.CreationGracePeriod))
	}
	return errors.Join(errs...)
}
