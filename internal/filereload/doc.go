// Package filereload serves a file that is read at start and re-read while
// running: File loads it in Starting (an error if it is unreadable or
// invalid), re-reads it every period in Running, and hands out the last good
// parsed value with a lock-free Load.
//
// It owns the machinery every such file needs, so that each owner writes it
// once: the atomic current value, the skip of an unchanged file (by the
// SHA-256 of its bytes), the reload ticker, the Warn logged once per distinct
// failure, and the reload metrics (Metrics: a last-reload-successful gauge and
// a reloads counter by status).
//
// It does not own the file's format, its validation, its flags or the names
// of its metrics: the owner passes a parse function, the path and period, and
// the metric options. Its owners are limits (the runtime config file of
// per-tenant overrides) and internal/auth (the bearer-token file). It imports
// no component, and no package of Argus but internal/service.
package filereload
