// Package benchingest measures the ingest path of one all-in-one argus
// process, the real binary, in two benchmarks that `make bench` runs
// (scripts/bench.sh; docs/benchmarks.md, "Ingest CPU per request shape" and
// "Group commit"):
//
//   - BenchmarkIngestCPU: the CPU that Argus, the real Prometheus server
//     (remote-write receiver) and VictoriaMetrics single-node each spend
//     per sample ingested by remote write, for the same series sent with 1,
//     40 and 120 samples per series per request. CPU comes from
//     /proc/<pid>/stat of each server.
//   - BenchmarkGroupCommit: pushes per second and fsyncs per push of 64
//     concurrent pushers of one tenant, and of 64 tenants, with every push
//     fsynced (-ingester.wal-sync-period=0), against one pusher (one fsync
//     per push).
//
// It owns benchmarks only (in its _test.go files) and no production code. It
// starts processes through internal/clustertest and owns none of their
// lifecycle. Linux only.
package benchingest
