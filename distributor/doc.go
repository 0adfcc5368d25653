// Package distributor owns the write path of Argus: it admits a Prometheus
// remote-write 1.0 or 2.0 request, or OTLP metrics, over HTTP, decodes it
// (2.0 and OTLP translated into the 1.0 form: rw2.go, otlp.go), validates
// every series, shards the valid ones over the ring and pushes them to the
// ingesters, then answers the sender with one status for the whole request.
//
// The pipeline, one small stage each (see DESIGN.md for the status codes, the
// write quorum and the memory ownership of a request):
//
//	admit     ──▶ read body  ──▶ snappy     ──▶ unmarshal   ──▶ HA dedupe   ──▶ validate     ──▶ shard  ──▶ push      ──▶ settle   ──▶ respond
//	(headers)     (size cap)     (size cap)     (in place)      (if enabled)    (per series)     (ring)     (fan-out)     (quorum)     (one status)
//
// HA dedupe (hatracker.go) keeps one replica of each Prometheus HA pair,
// elected through the ring's gossiped HA elections.
//
// Each series is pushed to the ReplicationFactor replicas the ring gives it
// and is stored once a quorum (ReplicationFactor/2+1) of them acknowledged it
// (quorum.go states the rules for replicas that disagree). The distributor
// owns that write quorum; the ring owns which instances are the replicas.
//
// It does not own per-tenant limits (a future limits package), the
// ingesters' state (out-of-order and too-old checks are the ingester's) or
// the read path. It imports ring and proto, never ingester or storage (its
// tests do, to compare both paths): ingesters are reached through the
// generated gRPC client, and the all-in-one's own ingester through the
// LocalIngester interface (local.go), which answers as gRPC does.
package distributor
