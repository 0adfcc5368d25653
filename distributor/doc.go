// Package distributor owns the write path of Argus: it admits a Prometheus
// remote-write 1.0 request over HTTP, decodes it, validates every series,
// shards the valid ones over the ring and pushes them to the ingesters, then
// answers the sender with one status for the whole request.
//
// The pipeline, one small stage each (see DESIGN.md for the status codes and
// the memory ownership of a request):
//
//	admit ──▶ read body ──▶ snappy ──▶ unmarshal ──▶ validate ──▶ shard ──▶ push ──▶ respond
//	(headers)  (size cap)   (size cap)  (zero-copy)   (per series)  (ring)   (fan-out)  (one status)
//
// It does not own per-tenant limits (a future limits package), replication
// quorums, the ingesters' state (out-of-order and too-old checks are the
// ingester's) or the read path. It imports ring and proto, never ingester or
// storage: ingesters are reached through the generated gRPC client only.
package distributor
