// Package benchquery measures what the per-tenant query limits buy in
// memory: the peak RSS of a querier-only argus process that answers a query
// over many series, without limits and with
// -querier.max-fetched-series-per-query, both reading the same ingester (the
// real argus binary, issue #4: "the querier's memory stays bounded").
//
// It owns benchmarks only (in its _test.go files) and no production code. It
// starts processes through internal/clustertest and owns none of their
// lifecycle. What it measures, and the numbers of one run, are in
// docs/benchmarks.md ("Query limits: peak RSS of a querier"). Linux only:
// peak RSS is VmHWM from /proc/<pid>/status.
package benchquery
