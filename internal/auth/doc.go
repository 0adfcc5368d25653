// Package auth establishes the tenant of every HTTP request that reads or
// writes data, and, with -auth.type=token, authenticates it with a bearer
// token. internal/tenant carries the tenant once this package has resolved it.
//
// It owns:
//
//   - Config (-auth.type, -auth.token-file);
//   - the token file: SHA-256 hashes of bearer tokens, the tenants each
//     may act as and whether it may call the admin API (tenancy
//     OneTenantAdmin; see the Authenticator type for the format), re-read
//     while running;
//   - Authenticator, the service that serves the token file and wraps
//     handlers in the middleware that resolves the tenant, puts it in the
//     request context with tenant.With, or answers 401 or 403 with an
//     apierror ID (err-argus-missing-tenant, err-argus-invalid-tenant,
//     err-argus-unauthorized, err-argus-admin-forbidden);
//   - HashToken, which makes the hash of a token for the file.
//
// It does not own the tenant ID rules or the X-Scope-OrgID header (package
// tenant), the error IDs and their statuses (package apierror), the
// re-reading of the token file, its reload metrics and warnings (package
// filereload, which it configures with the format and the names), the
// -auth.multitenancy-enabled and -tenant-federation.enabled switches (cmd
// passes them in), or authentication between components over gRPC, which
// trusts the tenant in the metadata.
//
// The header and its a|b federation syntax are Mimir's (X-Scope-OrgID,
// tenant federation); the token file is Argus's own.
package auth
