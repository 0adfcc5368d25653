// Package benchdata holds test-only helpers for generating data that
// several packages' tests and benchmarks write into Prometheus blocks.
// It must be imported only from _test.go files.
package benchdata
