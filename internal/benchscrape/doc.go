// Package benchscrape measures the scraper role of the real argus binary
// against the real Prometheus server scraping the same targets, in
// BenchmarkScrapeCPU, which `make bench` runs (scripts/bench.sh;
// docs/benchmarks.md, "Scrape throughput"): samples scraped and stored per
// second of each server's CPU (/proc/<pid>/stat), the whole pipeline
// included (Argus: scrape, push through the distributor, ingester and WAL;
// Prometheus: scrape, head and WAL).
//
// It owns benchmarks only (in its _test.go files) and no production code.
// Linux only.
package benchscrape
