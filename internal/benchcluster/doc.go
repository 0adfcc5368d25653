// Package benchcluster measures what the cluster's write path costs: the
// real argus binary run as one all-in-one process and as a cluster of three
// ingesters (RF=3) behind one distributor on a memberlist ring, fed the same
// pre-encoded remote-write requests, with accepted samples per second and CPU
// per sample (read from /proc for every argus process) reported per topology
// and as cluster/all-in-one ratios, and each role's CPU per second while no
// push is sent (background work that CPU per sample includes).
//
// It owns benchmarks only (in its _test.go files) and no production code. It
// starts processes through internal/clustertest and owns none of their
// lifecycle. `make bench` runs it after internal/benchcmp; what it measures,
// and what the numbers do not say, is in docs/benchmarks.md ("Cluster
// ingest"). Linux only: CPU times come from /proc/<pid>/stat.
package benchcluster
