// Package benchcmp compares Argus with Prometheus's own TSDB, in one process,
// on the same generated series: append throughput of the ingester against the
// tsdb head, persisted bytes per sample, heap bytes per in-memory series, and
// PromQL range-query time through the querier against the engine over the
// head. BenchmarkDiskBytes (disk_test.go) is the exception to "in one
// process": it runs the real argus, Prometheus and VictoriaMetrics servers,
// one after the other, on the same generated series, to measure the bytes
// per sample of their persisted formats and whole data directories.
//
// It owns benchmarks only (in its _test.go files) and no production code.
// `make bench` runs them and prints the Argus/Prometheus ratios; what each one
// measures, and what is not apples to apples, is in docs/benchmarks.md.
package benchcmp
