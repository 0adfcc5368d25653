#!/usr/bin/env bash
# bench.sh (`make bench`) runs the benchmarks of internal/benchcmp, which
# compare Argus with Prometheus's TSDB in one process on the same generated
# series, and prints a table of medians and Argus/Prometheus ratios.
#
# Raw `go test -bench` output goes to bench-out/bench-<UTC time>.txt
# (bench-out/latest.txt links to it), the table to the same name with .table,
# and, when benchstat is installed or installable, `benchstat -col /impl` to
# .benchstat. docs/benchmarks.md explains each number.
#
# Everything runs with GOMAXPROCS=1 (-cpu=1), so throughputs are per core.
# About 8 minutes on 2 cores with the defaults. Knobs (environment):
#
#   BENCH_COUNT=5          runs of the timed benchmarks (append, range query)
#   BENCH_TIME=1s          -benchtime of the timed benchmarks
#   BENCH_ONESHOT_COUNT=3  runs of the one-shot ones (persisted bytes, memory)
#   BENCH_FILTER=.         only the sub-benchmarks matching this -bench regexp
#                          suffix, e.g. BENCH_FILTER=/impl=argus
set -euo pipefail
cd "$(dirname "$0")/.."

count="${BENCH_COUNT:-5}"
benchtime="${BENCH_TIME:-1s}"
oneshot_count="${BENCH_ONESHOT_COUNT:-3}"
filter="${BENCH_FILTER:-}"
pkg=./internal/benchcmp/
benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf

out=bench-out
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
raw="$out/bench-$stamp.txt"
ln -sfn "bench-$stamp.txt" "$out/latest.txt"

run() { # run <-bench regexp> <count> <benchtime>
	go test -run='^$' -bench="$1$filter" -benchmem -cpu=1 -count="$2" -benchtime="$3" \
		-timeout=30m "$pkg" | tee -a "$raw"
}

echo "bench: raw output in $raw" >&2
{ echo "# $(go version) on $(nproc) cores, GOMAXPROCS=1, $(date -u +%FT%TZ)"; } >"$raw"
# The timed benchmarks: b.Loop runs each for benchtime.
run '^(BenchmarkAppend|BenchmarkRangeQuery)$' "$count" "$benchtime"
# The one-shot ones: an op ingests a whole data set; their metrics are
# (nearly) deterministic, so a few runs suffice.
run '^(BenchmarkPersistedBytes|BenchmarkSeriesMemory)$' "$oneshot_count" 1x

# The table: the median of each metric over the runs, per side, and the ratio.
# Rows are: title | benchmark name with IMPL for the side | unit | goal op | goal.
table="$out/bench-$stamp.table"
awk -v rows="$(cat <<'EOF'
append throughput, 10K series (samples/s per core)|BenchmarkAppend/impl=IMPL/series=10000|samples/s|>=|1.0
append throughput, 100K series (samples/s per core)|BenchmarkAppend/impl=IMPL/series=100000|samples/s|>=|1.0
persisted chunk bytes/sample, 10K series x 3h|BenchmarkPersistedBytes/impl=IMPL/series=10000|chunk-bytes/sample|<=|1.0
persisted file bytes/sample, 10K series x 3h|BenchmarkPersistedBytes/impl=IMPL/series=10000|file-bytes/sample|<=|1.0
heap bytes per in-memory series (HeapInuse), 100K|BenchmarkSeriesMemory/impl=IMPL/series=100000|heap-inuse-bytes/series|<=|0.7
heap bytes per in-memory series (HeapAlloc), 100K|BenchmarkSeriesMemory/impl=IMPL/series=100000|heap-alloc-bytes/series|<=|0.7
range query sum by (job) (rate[5m]), 3h/60s (ns/query)|BenchmarkRangeQuery/impl=IMPL/series=10000/query=sum_rate|ns/op|-|
range query, 8 series selected, 3h/60s (ns/query)|BenchmarkRangeQuery/impl=IMPL/series=10000/query=selective|ns/op|-|
EOF
)" '
# median of the space-separated numbers in s
function median(s,    v, n, i, j, t) {
	n = split(s, v, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++) {
		t = v[i] + 0
		for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
	return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function fmtnum(x) {
	if (x == "") return "n/a"
	if (x >= 1e6) return sprintf("%.3gM", x / 1e6)
	if (x >= 100) return sprintf("%.0f", x)
	return sprintf("%.3g", x)
}
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name) # a -cpu suffix, if any
	for (i = 3; i < NF; i += 2) vals[name SUBSEP $(i + 1)] = vals[name SUBSEP $(i + 1)] " " $i
}
END {
	printf "| metric | Argus | Prometheus | ratio (Argus/Prometheus) | goal |\n"
	printf "| --- | ---: | ---: | ---: | --- |\n"
	n = split(rows, r, "\n")
	for (k = 1; k <= n; k++) {
		if (split(r[k], f, "|") < 4) continue
		a = f[2]; p = f[2]
		sub(/IMPL/, "argus", a); sub(/IMPL/, "prometheus", p)
		ma = median(vals[a SUBSEP f[3]]); mp = median(vals[p SUBSEP f[3]])
		ratio = "n/a"; verdict = ""
		if (ma != "" && mp != "" && mp + 0 != 0) {
			q = ma / mp
			ratio = sprintf("%.2fx", q)
			if (f[4] == ">=") verdict = (q >= f[5]) ? "ok" : "MISSED"
			if (f[4] == "<=") verdict = (q <= f[5]) ? "ok" : "MISSED"
		}
		goal = (f[4] == "-") ? "(none)" : sprintf("%s %sx %s", (f[4] == ">=") ? ">=" : "<=", f[5], verdict)
		printf "| %s | %s | %s | %s | %s |\n", f[1], fmtnum(ma), fmtnum(mp), ratio, goal
	}
}' "$raw" >"$table"

echo
echo "Medians of $(basename "$raw") (GOMAXPROCS=1; see docs/benchmarks.md):"
cat "$table"

# benchstat, with confidence intervals, when it is there or can be installed.
tools_bin="$(go env GOCACHE)/../argus-tools/bin"
benchstat="$(command -v benchstat || true)"
if [[ -z "$benchstat" && ! -x "$tools_bin/benchstat" ]]; then
	mkdir -p "$tools_bin"
	(cd "$tools_bin" && GOBIN="$(pwd -P)" GOFLAGS= go install "golang.org/x/perf/cmd/benchstat@$benchstat_version") >&2 ||
		echo "bench: benchstat not installed; skipping its report" >&2
fi
[[ -z "$benchstat" && -x "$tools_bin/benchstat" ]] && benchstat="$tools_bin/benchstat"
if [[ -n "$benchstat" ]]; then
	"$benchstat" -col /impl "$raw" >"$out/bench-$stamp.benchstat" &&
		echo "benchstat -col /impl: $out/bench-$stamp.benchstat"
fi
