// Package benchquery benchmarks queries against real server processes.
// BenchmarkSeriesQueries times label names and values, a __name__ regex and
// count over 1M series on argus, Prometheus and VictoriaMetrics filled
// alike, with each server's RSS before the queries and 15 s after them
// (BENCH_SERIES_QUERIES_SERVERS picks servers, BENCH_SERIES_QUERIES_SAMPLES
// the samples per series). BenchmarkRangeQueryGRPCvsHTTP compares one range
// query over 10K series through the public gRPC query API and through the
// HTTP JSON API (time, wire bytes, client allocations, and their ratios).
// BenchmarkRuleEvaluation times 1,000 recording rules over 100K series on
// argus's ruler and on Prometheus's rule manager, with the same rules and data.
// BenchmarkQuerierPeakRSS measures what the per-tenant query limits
// buy in memory: the peak RSS of a querier-only argus process that answers
// a query over many series, without limits and with
// -querier.max-fetched-series-per-query, both reading the same ingester (the
// real argus binary, issue #4: "the querier's memory stays bounded").
//
// It owns benchmarks only (in its _test.go files) and no production code. It
// starts processes through internal/clustertest and owns none of their
// lifecycle. What they measure, and the numbers of one run, are in
// docs/benchmarks.md. Linux only: peak RSS is VmHWM from /proc/<pid>/status.
package benchquery
