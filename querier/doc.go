// Package querier answers PromQL over the SeriesSource read protocol and
// serves the Prometheus HTTP API.
//
// It owns:
//   - the storage.Queryable that turns Prometheus Select, LabelNames and
//     LabelValues calls into SeriesSource gRPC calls for the tenant of the
//     request context (queryable.go), the decoder of the Series stream
//     (decode.go) and the iterator over a series' samples (iterator.go);
//   - the PromQL engine and its limits, built from Config;
//   - the Prometheus HTTP API, which is Prometheus's own web/api/v1 wired to
//     that engine and queryable, so that JSON shapes, error types and float
//     formatting are exactly Prometheus's (api.go);
//   - the one mapping from SeriesSource errors to API errors (errors.go).
//
// It does not own which SeriesSource it talks to (cmd dials it and passes the
// client in Deps), tenant authentication (cmd wraps Handler in
// tenant.Middleware), or the fan-out over several ingesters and the
// de-duplication of their replicas (issue #3; see DESIGN.md for the seam that
// is ready for it).
package querier
