package auth

import (
	"errors"
	"flag"
	"fmt"
)

// Values of -auth.type.
const (
	// TypeHeader trusts the X-Scope-OrgID header: for deployments behind a
	// proxy that authenticates clients and sets the header.
	TypeHeader = "header"
	// TypeToken requires a bearer token listed in -auth.token-file for
	// every tenant a request names.
	TypeToken = "token"
)

// Config is the process configuration of authentication. Defaults are set in
// one place: RegisterFlagsWithPrefix.
type Config struct {
	// Type is how a request's tenant is established: TypeHeader or TypeToken.
	Type string `yaml:"type"`
	// TokenFile is the path of the token file; required with TypeToken,
	// unused (and refused) with TypeHeader.
	TokenFile string `yaml:"token_file"`
}

// RegisterFlags registers the auth flags on f.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the auth flags on f, each name prefixed
// with prefix.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Type, prefix+"auth.type", TypeHeader,
		"How a request's tenant is established: header (trust the X-Scope-OrgID header, set by an authenticating proxy) or token (require Authorization: Bearer <token> with a token that -auth.token-file lists for the tenant).")
	f.StringVar(&c.TokenFile, prefix+"auth.token-file", "",
		"YAML file of the SHA-256 hashes of the bearer tokens and the tenants each may act as; required with -auth.type=token. Re-read every -runtime-config.reload-period.")
}

// Validate reports every invalid setting of c, joined.
func (c *Config) Validate() error {
	var errs []error
	switch c.Type {
	case TypeHeader:
		if c.TokenFile != "" {
			errs = append(errs, fmt.Errorf("-auth.token-file is set but -auth.type=%s ignores it; set -auth.type=%s to use it", TypeHeader, TypeToken))
		}
	case TypeToken:
		if c.TokenFile == "" {
			errs = append(errs, fmt.Errorf("-auth.type=%s requires -auth.token-file", TypeToken))
		}
	default:
		errs = append(errs, fmt.Errorf("-auth.type must be %s or %s, got %q", TypeHeader, TypeToken, c.Type))
	}
	return errors.Join(errs...)
}
