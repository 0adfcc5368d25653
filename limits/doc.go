// Package limits owns the per-tenant limits of Argus (CONTRIBUTING.md, "Configuration"): the Limits
// struct with its flag defaults, and Overrides, the service that reads the
// per-tenant overrides from the runtime config file (-runtime-config.file),
// re-reads it every -runtime-config.reload-period and serves each tenant's
// limits in force with a lock-free For.
//
// The flag names are Mimir's and are the ones issue #4 publishes
// (-distributor.ingestion-rate-limit, -ingester.max-global-series-per-user,
// -validation.*, -querier.max-fetched-*): they are registered here, by the
// package that owns the limits, not by the components that enforce them.
// -validation.create-grace-period and -querier.timeout are still registered
// by the distributor and querier packages; they move here when the limits are
// wired (see Limits).
//
// It does not enforce anything. Enforcement is the rest of issue #4: the
// distributor's rate limiter and validation, the ingester's global series
// limits (its share from the ring), the querier's query limits, the
// argus_discarded_samples_total reasons, the error IDs of docs/errors.md and
// /api/v1/user_limits. None of those packages imports limits yet.
//
// It imports internal/tenant (to check the tenant IDs of the overrides
// file), internal/filereload (which loads and re-reads the file, and owns
// the reload metrics and warnings) and internal/service only, so that
// distributor, ingester and querier may all import it.
package limits
