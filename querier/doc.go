// Package querier answers PromQL over the SeriesSource read protocol and
// serves the Prometheus HTTP API.
//
// It owns:
//   - the storage.Queryable that turns Prometheus Select, LabelNames and
//     LabelValues calls into SeriesSource gRPC calls for the tenant of the
//     request context (queryable.go), the decoder of the Series stream
//     (decode.go) and the iterator over a series' samples (iterator.go);
//   - the in-process reads of the ingester of the querier's own process
//     (an all-in-one), the same answers without gRPC (local.go);
//   - the PromQL engine and its limits, built from Config;
//   - the Prometheus HTTP API, which is Prometheus's own web/api/v1 wired to
//     that engine and queryable, so that JSON shapes, error types and float
//     formatting are exactly Prometheus's (api.go);
//   - the fan-out over the ring's read set and the merge of replicas
//     (fanout.go);
//   - the enforcement of each tenant's query limits: fetched series and
//     chunks, query length and timeout (querylimits.go, timeout.go);
//   - tenant federation, the reads over several tenants (federation.go);
//   - exemplars (the storage.ExemplarQueryable of query_exemplars) and
//     metric metadata (/api/v1/metadata), read from every ingester and
//     merged (exmeta.go);
//   - the one mapping from SeriesSource errors to API errors (errors.go);
//   - QueryServer, the public gRPC query API (proto/argusquerypb), served
//     through the HTTP API's own handler so that both answer alike
//     (grpcquery.go, grpcframes.go, handoff.go); its errors' gRPC codes
//     (statusOf);
//   - Admin: Prometheus's admin API (delete_series, clean_tombstones, off
//     unless -api.enable-admin-api), status/tsdb and Mimir's cardinality
//     API, each a call to every ingester's IngesterAdmin service and a
//     merge of the answers (admin.go, status.go).
//
// It does not own which SeriesSource it talks to (cmd dials it and passes the
// client in Deps, or passes its own ingester as Deps.Local), the values of the limits (package limits, passed in
// Deps), or tenant authentication (cmd wraps Handler in its middleware).
package querier
