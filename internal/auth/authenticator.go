package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/filereload"
	"github.com/argus-tsdb/argus/internal/service"
	"github.com/argus-tsdb/argus/internal/tenant"
)

// Options are the settings of New that other packages own.
type Options struct {
	// MultitenancyEnabled is -auth.multitenancy-enabled. When false every
	// request is tenant.Anonymous, X-Scope-OrgID is ignored, and with
	// -auth.type=token the token must list tenant "anonymous".
	MultitenancyEnabled bool
	// ReloadPeriod is how often the token file is re-read while running
	// (-runtime-config.reload-period). Required with -auth.type=token.
	ReloadPeriod time.Duration
}

// Deps are the runtime dependencies of an Authenticator.
type Deps struct {
	// Logger receives token file loads and reload failures; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Tenancy says how many tenants the requests of a handler may name.
type Tenancy int

const (
	// OneTenant requests name exactly one tenant: pushes, and endpoints
	// about one tenant.
	OneTenant Tenancy = iota
	// Federated requests may name several tenants, X-Scope-OrgID: a|b: the
	// read paths, when -tenant-federation.enabled is true. Pass OneTenant
	// for them when it is false.
	Federated
	// OneTenantAdmin requests name exactly one tenant and, with
	// -auth.type=token, need a token marked admin: the admin API
	// (deletion). With -auth.type=header nothing tells an admin from
	// anyone else: the authenticating proxy in front must guard those
	// paths.
	OneTenantAdmin
)

// Authenticator establishes the tenant of HTTP requests (Middleware) and, with
// -auth.type=token, serves the token file. It is a service: with
// -auth.type=token, Starting loads the token file (and fails if it cannot)
// and Running re-reads it every Options.ReloadPeriod; with -auth.type=header
// it does nothing. The reloading is a filereload.File's.
//
// # Token file
//
// The token file lists the SHA-256 of each bearer token and the tenants it
// may act as:
//
//	tokens:
//	  - sha256: "a70bf50e531ce1a817561f2f5d5b6645d4e806becf58ccc5e8cf6b8045a090a8"
//	    tenants: [team-a]
//	  - sha256: "4daa6091041c50073c7d78d0f8b0831d6e4885a8614df630f088c9d36999e245"
//	    tenants: [team-a, team-b]   # also team-a|team-b reads, with federation
//	    admin: true                 # may also delete team-a's and team-b's data
//
// (the hashes of "token-a" and "token-ab"; admin is optional and false by
// default, so files written before it existed keep their meaning; real tokens are long random
// strings, such as `openssl rand -hex 32`). HashToken, or
// `printf %s "$TOKEN" | sha256sum`, makes the hash. Unknown
// fields, a sha256 that is not 64 hex digits, a hash listed twice, a token
// without tenants, an invalid tenant ID, a file without tokens and, with
// multi-tenancy disabled, a file where no token lists "anonymous" make the
// whole file invalid. A tenant may be listed under several tokens: to rotate
// a token, add the new hash, move the clients over, then remove the old one.
//
// The file holds hashes, not tokens, so that reading it (a backup, a config
// repository, a debug dump) does not give anyone a token. The hash is a plain
// SHA-256, not a slow password KDF such as bcrypt or argon2: tokens are long
// random secrets, not passwords, so guessing one from its hash is already
// hopeless and a slow hash would buy nothing, while it would cost its full
// price on every request. A request's token is hashed once and compared with
// every hash of the file with crypto/subtle, in constant time and without
// stopping at a match, so the time taken says nothing about the hashes.
//
// A reload that fails keeps the last good file in force, sets
// argus_auth_token_file_last_reload_successful to 0 and logs why at Warn,
// once per distinct failure.
//
// Middleware is safe for concurrent use with everything, and never blocks.
// Starting, Running and Stopping are called by one service manager, in that
// order.
type Authenticator struct {
	cfg     Config
	opts    Options
	logger  *slog.Logger
	metrics *metrics

	// tokens serves the token file with -auth.type=token: its Load is nil
	// until Starting loads the file. It is nil with -auth.type=header.
	tokens *filereload.File[tokenSet]
}

var _ service.Service = (*Authenticator)(nil)

// New returns an Authenticator. It does no I/O and starts no goroutine: with
// -auth.type=token it refuses every request (with a 503, which clients
// retry) until Starting has loaded the token file.
func New(cfg Config, opts Options, deps Deps) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Type == TypeToken && opts.ReloadPeriod <= 0 {
		return nil, fmt.Errorf("-auth.type=%s needs a positive reload period, got %s", TypeToken, opts.ReloadPeriod)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		cfg:     cfg,
		opts:    opts,
		logger:  logger.With("component", "auth"),
		metrics: newMetrics(deps.Registerer, cfg.Type == TypeToken),
	}
	if cfg.Type != TypeToken {
		return a, nil
	}
	requiredTenant := a.requiredTenant()
	tokens, err := filereload.New(filereload.Config{
		Path: cfg.TokenFile, Period: opts.ReloadPeriod, What: "token file", Err: ErrTokenFile,
	}, filereload.Deps[tokenSet]{
		Parse: func(data []byte) (*tokenSet, error) { return parseTokens(data, requiredTenant) },
		OnLoad: func(s *tokenSet) {
			a.logger.Info("token file loaded", "file", cfg.TokenFile, "tokens", len(s.hashes))
		},
		Logger:  a.logger,
		Metrics: a.metrics.reload,
	})
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	a.tokens = tokens
	return a, nil
}

// Starting loads the token file with -auth.type=token, and returns an error,
// matching ErrTokenFile, if it cannot be read or is invalid.
func (a *Authenticator) Starting(ctx context.Context) error {
	if a.tokens == nil {
		return nil
	}
	return a.tokens.Starting(ctx)
}

// Running re-reads the token file every Options.ReloadPeriod until ctx is
// cancelled. A failed reload keeps the last good file; Running itself never
// fails.
func (a *Authenticator) Running(ctx context.Context) error {
	if a.tokens == nil {
		<-ctx.Done()
		return nil
	}
	return a.tokens.Running(ctx)
}

// Stopping does nothing: an Authenticator holds no resource.
func (a *Authenticator) Stopping(context.Context) error { return nil }

// requiredTenant is the tenant some token must list: Anonymous when every
// request is Anonymous.
func (a *Authenticator) requiredTenant() string {
	if a.opts.MultitenancyEnabled {
		return ""
	}
	return tenant.Anonymous
}

// Middleware returns a handler that resolves the tenant of each request,
// stores it with tenant.With in the request context and calls next; or
// answers with a text/plain "err-argus-<id>: <message>" and does not call
// next, so that nothing is read or written:
//
//   - err-argus-missing-tenant (401) without X-Scope-OrgID, unless
//     multi-tenancy is disabled or the bearer token lists one tenant only,
//     which is then the request's;
//   - err-argus-invalid-tenant (401) for an invalid tenant ID, or several
//     tenants (a|b) when tenancy is OneTenant;
//   - err-argus-unauthorized (401) with -auth.type=token, without a bearer
//     token, or with one the token file does not list for every tenant of
//     the request. The message names the tenants, never the token;
//   - err-argus-admin-forbidden (403) with -auth.type=token and tenancy
//     OneTenantAdmin, for a token valid for the tenant but not marked admin;
//   - err-argus-not-ready (503) with -auth.type=token before Starting has
//     loaded the token file, so that clients retry instead of dropping data.
//
// The tenant in the context is canonical: several tenants are sorted and
// deduplicated, tenant.Join(tenant.IDs(header)). The request body is not
// read and its headers are not modified.
func (a *Authenticator) Middleware(next http.Handler, t Tenancy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.resolve(r.Header, t)
		if err != nil {
			a.refuse(w, r, err)
			return
		}
		a.metrics.ok.Inc()
		next.ServeHTTP(w, r.WithContext(tenant.With(r.Context(), id)))
	})
}

func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, err *apierror.Error) {
	a.metrics.refused(err.ID)
	a.logger.Debug("request refused", "path", r.URL.Path, "err", err)
	if err.ID == apierror.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="argus"`)
	}
	http.Error(w, err.Error(), err.ID.Status())
}

// resolve returns the canonical tenant string of a request.
func (a *Authenticator) resolve(h http.Header, t Tenancy) (string, *apierror.Error) {
	ids := []string{tenant.Anonymous}
	if a.opts.MultitenancyEnabled {
		var err *apierror.Error
		if ids, err = headerTenants(h, t); err != nil {
			return "", err
		}
	}
	if a.cfg.Type == TypeToken {
		return a.authorize(h, ids, t)
	}
	if ids == nil {
		return "", apierror.Errorf(apierror.MissingTenant, "the %s header is missing", tenant.HeaderName)
	}
	return tenant.Join(ids), nil
}

// headerTenants returns the sorted, unique, valid tenants of X-Scope-OrgID,
// or nil if it is absent or empty.
func headerTenants(h http.Header, t Tenancy) ([]string, *apierror.Error) {
	vals := h.Values(tenant.HeaderName)
	switch {
	case len(vals) > 1:
		return nil, apierror.Errorf(apierror.InvalidTenant, "the request has %d %s headers, not one", len(vals), tenant.HeaderName)
	case len(vals) == 0 || vals[0] == "":
		return nil, nil
	}
	ids := tenant.IDs(vals[0])
	for _, id := range ids {
		if err := tenant.Validate(id); err != nil {
			return nil, apierror.Errorf(apierror.InvalidTenant, "%s: tenant %s: %w", tenant.HeaderName, quote(id), err)
		}
	}
	if len(ids) > 1 && t != Federated {
		return nil, apierror.Errorf(apierror.InvalidTenant,
			"%s names %d tenants (%s) where one is required: pushes take one tenant, and reads take several only with -tenant-federation.enabled",
			tenant.HeaderName, len(ids), tenant.Join(ids))
	}
	return ids, nil
}

// authorize checks the bearer token of a request against the tenants it
// names, ids (nil: none named), and returns the canonical tenant string.
func (a *Authenticator) authorize(h http.Header, ids []string, t Tenancy) (string, *apierror.Error) {
	s := a.tokens.Load()
	if s == nil {
		return "", apierror.Errorf(apierror.NotReady, "the token file is not loaded yet: the process is starting")
	}
	// The tenant leads the message as in every error of the contract.
	forTenants := ""
	if ids != nil {
		forTenants = fmt.Sprintf("tenant %q: ", tenant.Join(ids))
	}
	token, ok := bearerToken(h)
	if !ok {
		return "", apierror.Errorf(apierror.Unauthorized, "%sno bearer token: send one Authorization: Bearer <token> header", forTenants)
	}
	i := s.lookup(token)
	if i < 0 {
		return "", apierror.Errorf(apierror.Unauthorized, "%sthe bearer token is not valid", forTenants)
	}
	if ids == nil {
		if s.single[i] == "" {
			return "", apierror.Errorf(apierror.MissingTenant,
				"the %s header is missing and the bearer token is valid for several tenants: name one", tenant.HeaderName)
		}
		ids = []string{s.single[i]}
	}
	if !s.allows(i, ids) {
		return "", apierror.Errorf(apierror.Unauthorized, "tenant %q: the bearer token is not valid", tenant.Join(ids))
	}
	if t == OneTenantAdmin && !s.admin[i] {
		return "", apierror.Errorf(apierror.AdminForbidden, "tenant %q: the bearer token is not marked admin in the token file: only admin tokens may call the admin API", tenant.Join(ids))
	}
	return tenant.Join(ids), nil
}

// bearerToken returns the token of the one Authorization header, if it is
// "Bearer <token>" (the scheme is case-insensitive, RFC 7235).
func bearerToken(h http.Header) (string, bool) {
	vals := h.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// quote quotes a tenant ID for a message, cut to tenant.MaxLength bytes.
func quote(id string) string {
	if len(id) > tenant.MaxLength {
		return fmt.Sprintf("%q... (%d bytes)", id[:tenant.MaxLength], len(id))
	}
	return fmt.Sprintf("%q", id)
}
