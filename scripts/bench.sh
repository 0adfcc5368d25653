#!/usr/bin/env bash
# bench.sh (`make bench`) runs the benchmarks of internal/benchcmp, which
# compare Argus with Prometheus's TSDB in one process on the same generated
# series, and prints a table of medians and Argus/Prometheus ratios.
#
# Raw `go test -bench` output goes to bench-out/bench-<UTC time>.txt
# (bench-out/latest.txt links to it), the table to the same name with .table,
# and, when benchstat is installed or installable, its report with Prometheus
# as the base (-col '/impl@(prometheus argus)') to .benchstat.
# docs/benchmarks.md explains each number. Then it runs the cluster ingest
# benchmark of internal/benchcluster (the real argus binary, all-in-one
# against 3 ingesters with RF=3; its knobs are at that step, at the end) into
# bench-out/bench-<UTC time>-cluster.txt and prints its table too, and last
# the querier peak RSS benchmark of internal/benchquery (query limits).
# Then the storage comparison with the real servers, one after the other:
# bytes per sample on disk at 3h and 24h (BenchmarkDiskBytes of
# internal/benchcmp) and label, regex and count queries at 1M series
# (BenchmarkSeriesQueries of internal/benchquery), Argus against Prometheus
# 3.16 and VictoriaMetrics single-node v1.151.0, which this script builds
# from its Go module once into $(go env GOCACHE)/../argus-tools; and the
# ingest CPU per request shape against the same servers, and group commit
# (internal/benchingest).
#
# The benchcmp benchmarks run with GOMAXPROCS=1 (-cpu=1), so throughputs are
# per core. About 6 minutes on 2 cores with the defaults, plus about 1 minute
# for the cluster step. Knobs (environment):
#
#   BENCH_COUNT=6          rounds of the timed benchmarks (append, range
#                          query); benchstat needs 6 for confidence intervals
#   BENCH_TIME=1s          -benchtime of the timed benchmarks
#   BENCH_ONESHOT_COUNT=3  rounds of the one-shot ones (persisted bytes, memory)
#   BENCH_FILTER=          appended to every -bench regexp to run only some
#                          sub-benchmarks, e.g. BENCH_FILTER=/impl=argus
#   BENCH_PERSISTED_COUNT=1 BENCH_PERSISTED_SERIES=10000 BENCH_PERSISTED_TIME=5x
#                          rounds, series and ops of the persisted range reads
#                          (0 rounds skips them)
#   BENCH_DISK_COUNT=1     rounds of the bytes-on-disk step (0 skips it)
#   BENCH_DISK_HOURS=3,24 BENCH_DISK_SERIES=10000   its data
#   BENCH_SERIES_QUERIES_COUNT=1   rounds of the many-series queries (0 skips)
#   BENCH_SERIES_QUERIES_SERIES=1000000   its series
#   BENCH_SCALE_COUNT=1    rounds of the 1M-series all-in-one against the real
#                          Prometheus (TestAllInOneMillionSeries; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

count="${BENCH_COUNT:-6}"
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

run() { # run <-bench regexp> <benchtime>
	go test -run='^$' -bench="$1$filter" -benchmem -cpu=1 -count=1 -benchtime="$2" \
		-timeout=30m "$pkg" | tee -a "$raw"
}

echo "bench: raw output in $raw" >&2
echo "# $(go version) on $(nproc) cores, GOMAXPROCS=1, $(date -u +%FT%TZ)" >"$raw"
# One go test per round, each running both sides back to back, so that the
# noise of a shared machine hits Argus and Prometheus alike rather than
# whichever ran during a burst.
for ((i = 1; i <= count; i++)); do
	echo "bench: timed benchmarks, round $i of $count" >&2
	# b.Loop runs each for benchtime.
	run '^(BenchmarkAppend|BenchmarkAppendPrometheusReference|BenchmarkRangeQuery|BenchmarkHistogramAppend|BenchmarkHistogramRangeQuery)$' "$benchtime"
done
# Out-of-order appends (BenchmarkAppendOutOfOrder): 60 ops fill a chunk
# once, so a count, not a time. BENCH_OOO_COUNT=3 rounds (0 skips them).
for ((i = 1; i <= ${BENCH_OOO_COUNT:-3}; i++)); do
	echo "bench: out-of-order appends, round $i of ${BENCH_OOO_COUNT:-3}" >&2
	run '^BenchmarkAppendOutOfOrder$' 60x
done
for ((i = 1; i <= oneshot_count; i++)); do
	echo "bench: one-shot benchmarks, round $i of $oneshot_count" >&2
	# An op ingests a whole data set; the metrics are (nearly)
	# deterministic, so a few rounds suffice.
	run '^(BenchmarkPersistedBytes|BenchmarkSeriesMemory)$' 1x
done

# Range reads of persisted data (BenchmarkPersistedRangeQuery): Argus's
# storage.DB against Prometheus blocks holding the same 24h of chunks, in
# this process. Its setup builds both stores (a minute or more), so it runs
# in rounds of its own: BENCH_PERSISTED_COUNT=1 (0 skips it),
# BENCH_PERSISTED_SERIES=10000, BENCH_PERSISTED_TIME=5x (a read of one metric
# over 24h takes about a second, so a count: the first read is cold).
persisted_count="${BENCH_PERSISTED_COUNT:-1}"
pn="${BENCH_PERSISTED_SERIES:-10000}"
for ((i = 1; i <= persisted_count; i++)); do
	echo "bench: persisted range reads, round $i of $persisted_count" >&2
	BENCH_PERSISTED_SERIES="$pn" run '^BenchmarkPersistedRangeQuery$' "${BENCH_PERSISTED_TIME:-5x}"
done

# The table: the median of each metric over the runs, per side, and the ratio.
# Rows are: title | Argus benchmark | Prometheus benchmark | unit | goal op |
# goal ratio | divisor and unit for display.
table="$out/bench-$stamp.table"
A=BenchmarkAppend/impl=argus
P=BenchmarkAppend/impl=prometheus
R=BenchmarkAppendPrometheusReference/series=100000/labels=prebuilt
B=BenchmarkPersistedBytes
M=BenchmarkSeriesMemory
Q=BenchmarkRangeQuery
PQ=BenchmarkPersistedRangeQuery
HA=BenchmarkHistogramAppend
HQ=BenchmarkHistogramRangeQuery
O=BenchmarkAppendOutOfOrder
# awk_median is the median of the space-separated numbers in s, for the
# table scripts below.
awk_median='
function median(s,    v, n, i, j, t) {
	n = split(s, v, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++) {
		t = v[i] + 0
		for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
	return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}'

# raw_file <step> creates the raw output file of a server step,
# $out/bench-$stamp-<step>.txt, with a header naming the Go version, the
# machine and its load, and prints its path.
raw_file() {
	local f="$out/bench-$stamp-$1.txt"
	echo "# $(go version) on $(nproc) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >"$f"
	echo "$f"
}

# summarize <raw file> <benchmark name> <metric regexp> prints the metrics
# of a benchmark's result lines that match the regexp, one a line.
summarize() {
	grep "^$2" "$1" | tr '\t' '\n' | grep -E "$3" | sed 's/^ */  /'
}

# set_prometheus_bin sets PROMETHEUS_BIN, unless set, to the cached build of
# scripts/install-tools.sh.
set_prometheus_bin() {
	[[ -n "${PROMETHEUS_BIN:-}" ]] || PROMETHEUS_BIN="$(./scripts/install-tools.sh | tail -n 1)/prometheus"
}

# set_argus_bin sets argus_bin to the argus binary to run: $ARGUS_BIN, or
# one built once into a temporary directory removed at exit. (Not a $(...):
# a subshell would remove its build at its own exit.)
argus_bin=""
set_argus_bin() {
	if [[ -n "$argus_bin" ]]; then
		return
	fi
	if [[ -n "${ARGUS_BIN:-}" ]]; then
		argus_bin="$ARGUS_BIN"
		return
	fi
	bindir="$(mktemp -d)"
	trap 'rm -rf "$bindir"' EXIT
	go build -o "$bindir/argus" ./cmd/argus
	argus_bin="$bindir/argus"
}

awk -v rows="$(cat <<EOF
append, 10K series (samples/s per core)|$A/series=10000|$P/series=10000|samples/s|>=|1.0|1|
append, 100K series (samples/s per core)|$A/series=100000|$P/series=100000|samples/s|>=|1.0|1|
reference: append 100K, Prometheus given prebuilt labels|$A/series=100000|$R/refs=none|samples/s|ref||1|
reference: append 100K, Prometheus with cached refs (scrape loop)|$A/series=100000|$R/refs=cached|samples/s|ref||1|
append in order, 1 h out-of-order window, 10K series (CPU ns/sample)|$O/order=inorder/impl=argus/series=10000|$O/order=inorder/impl=prometheus/series=10000|cpu-ns/sample|-||1|
append, every other sample one scrape late (CPU ns/sample)|$O/order=late1/impl=argus/series=10000|$O/order=late1/impl=prometheus/series=10000|cpu-ns/sample|-||1|
append, every other sample 30 min late (CPU ns/sample)|$O/order=late60/impl=argus/series=10000|$O/order=late60/impl=prometheus/series=10000|cpu-ns/sample|-||1|
persisted chunk bytes/sample, 10K series x 3h|$B/impl=argus/series=10000|$B/impl=prometheus/series=10000|chunk-bytes/sample|<=|1.0|1|
persisted file bytes/sample, 10K series x 3h|$B/impl=argus/series=10000|$B/impl=prometheus/series=10000|file-bytes/sample|<=|1.0|1|
heap bytes per in-memory series (HeapInuse), 100K|$M/impl=argus/series=100000|$M/impl=prometheus/series=100000|heap-inuse-bytes/series|<=|0.7|1|
heap bytes per in-memory series (HeapAlloc), 100K|$M/impl=argus/series=100000|$M/impl=prometheus/series=100000|heap-alloc-bytes/series|<=|0.7|1|
range query sum by (job) (rate[5m]), 10K series, 3h/60s|$Q/impl=argus/series=10000/query=sum_rate|$Q/impl=prometheus/series=10000/query=sum_rate|ns/op|-||1e6| ms
range query selecting 8 series, 3h/60s|$Q/impl=argus/series=10000/query=selective|$Q/impl=prometheus/series=10000/query=selective|ns/op|-||1e6| ms
persisted 24h read of one metric ($((pn / 5)) series), day compacted (CPU ns/sample)|$PQ/impl=argus/series=$pn/layout=day/query=metric|$PQ/impl=prometheus/series=$pn/layout=day/query=metric|cpu-ns/sample|<=|1.0|1|
persisted 24h read of one metric, 2h parts / blocks (CPU ns/sample)|$PQ/impl=argus/series=$pn/layout=2h/query=metric|$PQ/impl=prometheus/series=$pn/layout=2h/query=metric|cpu-ns/sample|<=|1.0|1|
persisted 24h read of one metric, day compacted (wall)|$PQ/impl=argus/series=$pn/layout=day/query=metric|$PQ/impl=prometheus/series=$pn/layout=day/query=metric|ns/op|-||1e6| ms
persisted 24h read of one metric, 2h parts / blocks (wall)|$PQ/impl=argus/series=$pn/layout=2h/query=metric|$PQ/impl=prometheus/series=$pn/layout=2h/query=metric|ns/op|-||1e6| ms
persisted 24h read of one metric for the wire (XOR rebuilt), day compacted (CPU ns/sample)|$PQ/impl=argus-wire/series=$pn/layout=day/query=metric|$PQ/impl=prometheus/series=$pn/layout=day/query=metric|cpu-ns/sample|-||1|
persisted 24h read of one metric for the wire (XOR rebuilt), 2h parts / blocks (CPU ns/sample)|$PQ/impl=argus-wire/series=$pn/layout=2h/query=metric|$PQ/impl=prometheus/series=$pn/layout=2h/query=metric|cpu-ns/sample|-||1|
persisted 24h read of one series, day compacted (CPU ns/sample)|$PQ/impl=argus/series=$pn/layout=day/query=series|$PQ/impl=prometheus/series=$pn/layout=day/query=series|cpu-ns/sample|-||1|
persisted 24h read of one series, 2h parts / blocks (CPU ns/sample)|$PQ/impl=argus/series=$pn/layout=2h/query=series|$PQ/impl=prometheus/series=$pn/layout=2h/query=series|cpu-ns/sample|-||1|
native histogram append, 1K series (histograms/s per core)|$HA/impl=argus/series=1000|$HA/impl=prometheus/series=1000|histograms/s|>=|1.0|1|
range query histogram_quantile by job, 1K histogram series, 1h/60s|$HQ/impl=argus/series=1000/query=quantile_by_job|$HQ/impl=prometheus/series=1000/query=quantile_by_job|ns/op|-||1e6| ms
range query histogram_count of one histogram series, 1h/60s|$HQ/impl=argus/series=1000/query=count_one_series|$HQ/impl=prometheus/series=1000/query=count_one_series|ns/op|-||1e6| ms
EOF
)" "$awk_median"'
function fmtnum(x, div, suffix) {
	if (x == "") return "n/a"
	x = x / div
	if (x >= 1e6) return sprintf("%.3gM%s", x / 1e6, suffix)
	if (x >= 1e4) return sprintf("%.0fk%s", x / 1e3, suffix)
	if (x >= 100) return sprintf("%.0f%s", x, suffix)
	return sprintf("%.3g%s", x, suffix)
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
		if (split(r[k], f, "|") < 8) continue
		ma = median(vals[f[2] SUBSEP f[4]]); mp = median(vals[f[3] SUBSEP f[4]])
		ratio = "n/a"; verdict = ""
		if (ma != "" && mp != "" && mp + 0 != 0) {
			q = ma / mp
			ratio = sprintf("%.2fx", q)
			if (f[5] == ">=") verdict = (q >= f[6]) ? " ok" : " MISSED"
			if (f[5] == "<=") verdict = (q <= f[6]) ? " ok" : " MISSED"
		}
		if (f[5] == "-") goal = "(none)"
		else if (f[5] == "ref") goal = "(reference)"
		else goal = sprintf("%s %sx%s", f[5], f[6], verdict)
		printf "| %s | %s | %s | %s | %s |\n", f[1], fmtnum(ma, f[7], f[8]), fmtnum(mp, f[7], f[8]), ratio, goal
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
	"$benchstat" -col '/impl@(prometheus argus)' "$raw" >"$out/bench-$stamp.benchstat" &&
		echo "benchstat (Prometheus as the base): $out/bench-$stamp.benchstat"
fi

# Cluster ingest (internal/benchcluster): the real argus binary, all-in-one
# against 3 ingesters (RF=3) and 1 distributor on memberlist, fed the same
# load. Unlike the benchmarks above, GOMAXPROCS is the default in the argus
# processes and in the load generator: all of them share the machine's cores.
# Each round is its own `go test -count=1` running all-in-one then cluster, so
# that the ratios the cluster reports compare two runs seconds apart. About
# 10 s a round. Knobs: BENCH_CLUSTER_COUNT=5 rounds (0 skips this step),
# BENCH_CLUSTER_ROUNDS=40 timed pushes of 12K samples per topology, and
# ARGUS_BIN, a built binary to use (otherwise one is built here).
cluster_count="${BENCH_CLUSTER_COUNT:-5}"
cluster_rounds="${BENCH_CLUSTER_ROUNDS:-40}"
if ((cluster_count > 0)); then
	craw="$(raw_file cluster)"
	ctable="$out/bench-$stamp-cluster.table"
	set_argus_bin
	for ((i = 1; i <= cluster_count; i++)); do
		echo "bench: cluster ingest, round $i of $cluster_count" >&2
		ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkClusterIngest$' -count=1 \
			-benchtime="${cluster_rounds}x" -timeout=10m ./internal/benchcluster/ | tee -a "$craw"
	done

	# Rows: title | all-in-one benchmark and metric | cluster benchmark and
	# metric | the paired ratio metric the cluster reports (empty: the
	# ratio of the medians).
	CA=BenchmarkClusterIngest/topology=all-in-one
	CC=BenchmarkClusterIngest/topology=3-ingesters-rf3
	awk -v rows="$(cat <<EOF
accepted samples/s (wall)|$CA samples/s|$CC samples/s|x-samples/s
CPU µs/sample, all argus processes|$CA cpu-µs/sample|$CC cpu-µs/sample|x-cpu/sample
CPU µs/sample, cluster: the 3 ingesters together (vs all-in-one)|$CA cpu-µs/sample|$CC ingester-cpu-µs/sample|x-ingester-cpu/sample
CPU µs/sample, cluster: per ingester replica (vs all-in-one)|$CA cpu-µs/sample|$CC ingester-cpu-µs/replica|
CPU µs/sample, cluster: the distributor (vs all-in-one)|$CA cpu-µs/sample|$CC distributor-cpu-µs/sample|x-distributor-cpu/sample
cores busy (argus CPU time / wall time)|$CA cpu-cores|$CC cpu-cores|
CPU µs/sample, load generator (the test process)|$CA loadgen-cpu-µs/sample|$CC loadgen-cpu-µs/sample|
EOF
)" "$awk_median"'
function fmtnum(x) {
	if (x == "") return "n/a"
	if (x >= 1e4) return sprintf("%.0fk", x / 1e3)
	if (x >= 100) return sprintf("%.0f", x)
	return sprintf("%.3g", x)
}
# vals returns the values of "benchmark metric"
function vals(key,    k) { split(key, k, " "); return v[k[1] SUBSEP k[2]] }
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	for (i = 3; i < NF; i += 2) v[name SUBSEP $(i + 1)] = v[name SUBSEP $(i + 1)] " " $i
}
END {
	printf "| metric | all-in-one | 3 ingesters RF=3 + distributor | ratio (cluster/all-in-one) |\n"
	printf "| --- | ---: | ---: | ---: |\n"
	n = split(rows, r, "\n")
	for (k = 1; k <= n; k++) {
		if (split(r[k], f, "|") < 4) continue
		ma = median(vals(f[2])); mc = median(vals(f[3]))
		ratio = "n/a"
		if (f[4] != "") {
			split(f[3], c, " ")
			mr = median(v[c[1] SUBSEP f[4]])
			if (mr != "") ratio = sprintf("%.2fx", mr)
		} else if (ma != "" && mc != "" && ma + 0 != 0) {
			ratio = sprintf("%.2fx", mc / ma)
		}
		printf "| %s | %s | %s | %s |\n", f[1], fmtnum(ma), fmtnum(mc), ratio
	}
}' "$craw" >"$ctable"
	echo
	echo "Cluster ingest, medians of $cluster_count rounds in $(basename "$craw") (ratios: median of the per-round ratios where the benchmark reports them, else ratio of the medians; see docs/benchmarks.md):"
	cat "$ctable"
fi

# Query limits (internal/benchquery): the peak RSS of a querier process
# answering a query over 200K series, without a limit and with
# -querier.max-fetched-series-per-query=10000. One shot (-benchtime=1x): a
# second query would raise the unlimited querier's peak with the garbage of
# the first. About 5 s. Knobs: BENCH_QUERY_COUNT=1 (0 skips this step),
# BENCH_QUERY_SERIES=200000, ARGUS_BIN.
query_count="${BENCH_QUERY_COUNT:-1}"
if ((query_count > 0)); then
	qraw="$(raw_file query)"
	set_argus_bin
	ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkQuerierPeakRSS$' -count="$query_count" \
		-benchtime=1x -timeout=10m ./internal/benchquery/ | tee -a "$qraw"
	echo
	echo "Querier peak RSS with and without a fetched-series limit: $(basename "$qraw") (see docs/benchmarks.md)"
fi

# The storage comparison against the real Prometheus and VictoriaMetrics
# servers. set_peer_bins sets PROMETHEUS_BIN (scripts/install-tools.sh
# builds it once) and VICTORIAMETRICS_BIN (built here once, into a
# temporary directory renamed into place so that an interrupted build
# leaves no half-filled cache entry).
vm_version=v1.151.0
set_peer_bins() {
	set_prometheus_bin
	export PROMETHEUS_BIN
	if [[ -z "${VICTORIAMETRICS_BIN:-}" ]]; then
		local tools dest tmp
		tools="$(go env GOCACHE)/../argus-tools"
		mkdir -p "$tools"
		tools="$(cd "$tools" && pwd -P)"
		dest="$tools/victoria-metrics-$vm_version"
		if [[ ! -x "$dest/victoria-metrics" ]]; then
			echo "bench: building victoria-metrics $vm_version into $dest (a few minutes)" >&2
			tmp="$(mktemp -d "$tools/.victoria-metrics-$vm_version.XXXXXX")"
			# Outside the argus module, so that its go.mod does not interfere.
			(cd "$tmp" && GOBIN="$tmp" GOFLAGS= go install \
				"github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$vm_version") || {
				rm -rf "$tmp"
				return 1
			}
			chmod 755 "$tmp"
			rm -rf "$dest"
			mv "$tmp" "$dest"
		fi
		VICTORIAMETRICS_BIN="$dest/victoria-metrics"
	fi
	export VICTORIAMETRICS_BIN
}

# peer_table prints the Markdown table of the medians in the raw output
# file $1 for the rows read from stdin: title | Argus "benchmark metric" |
# Prometheus "benchmark metric" | VictoriaMetrics "benchmark metric" | goal
# op (<= or -) | goal ratio against Prometheus.
peer_table() {
	awk -v rows="$(cat)" "$awk_median"'
function fmtnum(x) {
	if (x == "") return "n/a"
	if (x >= 1e4) return sprintf("%.0fk", x / 1e3)
	if (x >= 100) return sprintf("%.0f", x)
	return sprintf("%.3g", x)
}
function ratio(a, b) { return (a != "" && b != "" && b + 0 != 0) ? sprintf("%.2fx", a / b) : "n/a" }
# vals returns the values of "benchmark metric"
function vals(key,    k) { split(key, k, " "); return v[k[1] SUBSEP k[2]] }
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	for (i = 3; i < NF; i += 2) v[name SUBSEP $(i + 1)] = v[name SUBSEP $(i + 1)] " " $i
}
END {
	printf "| metric | Argus | Prometheus | VictoriaMetrics | Argus/Prometheus | Argus/VictoriaMetrics | goal |\n"
	printf "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
	n = split(rows, r, "\n")
	for (k = 1; k <= n; k++) {
		if (split(r[k], f, "|") < 6) continue
		ma = median(vals(f[2])); mp = median(vals(f[3])); mv = median(vals(f[4]))
		goal = "(none)"
		if (f[5] == "<=") {
			goal = sprintf("<= %sx Prometheus", f[6])
			if (ma != "" && mp != "" && mp + 0 != 0) goal = goal ((ma / mp <= f[6]) ? " ok" : " MISSED")
		}
		printf "| %s | %s | %s | %s | %s | %s | %s |\n", f[1], fmtnum(ma), fmtnum(mp), fmtnum(mv), ratio(ma, mp), ratio(ma, mv), goal
	}
}' "$1"
}

# Bytes on disk (internal/benchcmp BenchmarkDiskBytes): each server in turn
# receives hours of 15 s scrapes of the series of the benchmarks above by
# remote write and is stopped cleanly; one op per round (the 24h push is
# 57.6M samples per server). Prometheus persists no block before its head
# spans 3h, so its 3h persisted figure is n/a: the in-process
# BenchmarkPersistedBytes above compacts its head by hand for that one.
disk_count="${BENCH_DISK_COUNT:-1}"
if ((disk_count > 0)); then
	set_argus_bin
	set_peer_bins
	draw="$(raw_file disk)"
	for ((i = 1; i <= disk_count; i++)); do
		echo "bench: bytes on disk (argus, prometheus, victoria-metrics), round $i of $disk_count" >&2
		ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkDiskBytes$' -count=1 -benchtime=1x \
			-timeout=90m ./internal/benchcmp/ | tee -a "$draw"
	done
	rows=""
	dn="${BENCH_DISK_SERIES:-10000}"
	IFS=, read -ra dhours <<<"${BENCH_DISK_HOURS:-3,24}"
	for h in "${dhours[@]}"; do
		D="BenchmarkDiskBytes/hours=$h/impl"
		rows+="sealed bytes/sample: Argus's level-1/2 parts, Prometheus's blocks, $dn series x ${h}h|$D=argus/series=$dn sealed-bytes/sample|$D=prometheus/series=$dn persisted-bytes/sample|$D=victoriametrics/series=$dn persisted-bytes/sample|<=|0.8"$'\n'
		rows+="persisted bytes/sample, store directory (Argus: level-0 files too), $dn series x ${h}h|$D=argus/series=$dn persisted-bytes/sample|$D=prometheus/series=$dn persisted-bytes/sample|$D=victoriametrics/series=$dn persisted-bytes/sample|<=|0.8"$'\n'
		rows+="whole data dir bytes/sample after a clean stop, $dn series x ${h}h|$D=argus/series=$dn dir-bytes/sample|$D=prometheus/series=$dn dir-bytes/sample|$D=victoriametrics/series=$dn dir-bytes/sample|<=|0.8"$'\n'
		rows+="share of the pushed samples that are persisted, ${h}h|$D=argus/series=$dn persisted-fraction|$D=prometheus/series=$dn persisted-fraction|$D=victoriametrics/series=$dn persisted-fraction|-|"$'\n'
	done
	echo
	echo "Bytes on disk, medians of $disk_count rounds in $(basename "$draw") (see docs/benchmarks.md):"
	peer_table "$draw" <<<"$rows" | tee "$out/bench-$stamp-disk.table"
fi

# Queries over many series (internal/benchquery BenchmarkSeriesQueries):
# each server in turn receives the same series and answers the same label,
# regex and count queries, every answer checked; one op per round.
sq_count="${BENCH_SERIES_QUERIES_COUNT:-1}"
if ((sq_count > 0)); then
	set_argus_bin
	set_peer_bins
	sraw="$(raw_file series-queries)"
	for ((i = 1; i <= sq_count; i++)); do
		echo "bench: queries over many series (argus, prometheus, victoria-metrics), round $i of $sq_count" >&2
		ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkSeriesQueries$' -count=1 -benchtime=1x \
			-timeout=90m ./internal/benchquery/ | tee -a "$sraw"
	done
	sn="${BENCH_SERIES_QUERIES_SERIES:-1000000}"
	S="BenchmarkSeriesQueries/series=$sn"
	echo
	echo "Queries over $sn series, ms (median of 5 after a warm-up), medians of $sq_count rounds in $(basename "$sraw"):"
	peer_table "$sraw" <<ROWS | tee "$out/bench-$stamp-series-queries.table"
GET /api/v1/labels, last hour (ms)|$S argus-labels-ms|$S prometheus-labels-ms|$S victoriametrics-labels-ms|<=|1.0
GET /api/v1/label/instance/values, last hour (ms)|$S argus-label_values-ms|$S prometheus-label_values-ms|$S victoriametrics-label_values-ms|<=|1.0
max by (instance) ({__name__=~"app_requests_.*_total"}), half the series, 9 min (ms)|$S argus-regex_max-ms|$S prometheus-regex_max-ms|$S victoriametrics-regex_max-ms|<=|1.0
count({job="app"}), every series (ms)|$S argus-count-ms|$S prometheus-count-ms|$S victoriametrics-count-ms|<=|1.0
peak RSS after the pushes and queries (MiB)|$S argus-peak-rss-MiB|$S prometheus-peak-rss-MiB|$S victoriametrics-peak-rss-MiB|<=|0.7
ROWS
fi

# Ingest CPU per request shape and group commit (internal/benchingest), the
# real servers. BenchmarkIngestCPU: each of Argus (all-in-one), Prometheus
# (remote-write receiver) and VictoriaMetrics, fresh, receives the same
# BENCH_INGEST_SERIES series with 1, 40 and 120 samples per series per
# request; CPU per sample from /proc/<pid>/stat, and Prometheus's deferred
# head-to-block write (an admin snapshot after the timed window) apart.
# About 10 min on a loaded
# 2-core machine at 200K series. BenchmarkGroupCommit: 1 pusher, 64 pushers
# of one tenant and 64 of 64 tenants with -ingester.wal-sync-period=0, with
# the fsyncs per push of each; about 20 s. Knobs:
# BENCH_INGEST_COUNT=1 rounds (0 skips this step), BENCH_INGEST_SERIES=200000,
# BENCH_INGEST_SERVERS (e.g. argus,prometheus), ARGUS_BIN.
ingest_count="${BENCH_INGEST_COUNT:-1}"
if ((ingest_count > 0)); then
	set_argus_bin
	set_peer_bins
	iraw="$(raw_file ingest)"
	for ((i = 1; i <= ingest_count; i++)); do
		echo "bench: ingest CPU per request shape and group commit, round $i of $ingest_count" >&2
		ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^(BenchmarkIngestCPU|BenchmarkGroupCommit)$' -count=1 \
			-benchtime=1x -timeout=90m ./internal/benchingest/ | tee -a "$iraw"
	done
	in="${BENCH_INGEST_SERIES:-200000}"
	I="BenchmarkIngestCPU/series=$in/per-request"
	echo
	echo "Ingest CPU per sample (ns), medians of $ingest_count rounds in $(basename "$iraw"); the goal is Argus at most 1/1.5 of Prometheus's CPU:"
	peer_table "$iraw" <<ROWS | tee "$out/bench-$stamp-ingest.table"
CPU ns/sample, 1 sample per series per request|$I=1 argus-cpu-ns/sample|$I=1 prometheus-cpu-ns/sample|$I=1 victoriametrics-cpu-ns/sample|<=|0.67
CPU ns/sample, 40 samples per series per request|$I=40 argus-cpu-ns/sample|$I=40 prometheus-cpu-ns/sample|$I=40 victoriametrics-cpu-ns/sample|<=|0.67
CPU ns/sample, 120 samples per series per request|$I=120 argus-cpu-ns/sample|$I=120 prometheus-cpu-ns/sample|$I=120 victoriametrics-cpu-ns/sample|<=|0.67
ROWS
	echo
	echo "Prometheus's deferred head-to-block write (admin snapshot after the timed window), and Argus's ratio to Prometheus plus it (docs/benchmarks.md):"
	summarize "$iraw" BenchmarkIngestCPU 'per-request|persist'
	echo
	echo "Group commit, -ingester.wal-sync-period=0 (see docs/benchmarks.md):"
	summarize "$iraw" BenchmarkGroupCommit 'pushes/s|fsyncs|-x-'
fi

# Remote write 1.0, 2.0 and OTLP (internal/benchingest,
# BenchmarkIngestProtocols): Argus (all-in-one) and Prometheus, each fresh
# for each protocol, receive the same BENCH_PROTOCOL_SERIES series (default
# 50000) x 10 samples, 2000 a request, in each protocol; CPU per sample from
# /proc/<pid>/stat. About 2 min. BENCH_PROTOCOL_COUNT=1 rounds (0 skips it).
proto_count="${BENCH_PROTOCOL_COUNT:-1}"
if ((proto_count > 0)); then
	set_argus_bin
	set_peer_bins
	praw="$(raw_file protocols)"
	for ((i = 1; i <= proto_count; i++)); do
		echo "bench: ingest CPU per protocol, round $i of $proto_count" >&2
		ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkIngestProtocols$' -count=1 \
			-benchtime=1x -timeout=60m ./internal/benchingest/ | tee -a "$praw"
	done
	echo
	echo "Ingest CPU per sample by protocol (ns), and ratios; the goal is argus-rw2-cpu-x-rw1 <= 1:"
	summarize "$praw" BenchmarkIngestProtocols 'cpu'
fi

# Scrape throughput (internal/benchscrape), the real servers one after the
# other: argus -target=all with -scraper.config-file, then Prometheus, each
# fresh, scraping the same BENCH_SCRAPE_TARGETS (50) targets of
# BENCH_SCRAPE_SERIES (1000) moving counters at 1 s for BENCH_SCRAPE_SECONDS
# (20) after a warm-up; samples stored per CPU second of each server. About a
# minute per round. BENCH_SCRAPE_COUNT=1 rounds (0 skips this step).
scrape_count="${BENCH_SCRAPE_COUNT:-1}"
if ((scrape_count > 0)); then
	set_argus_bin
	set_prometheus_bin
	sraw="$(raw_file scrape)"
	echo "bench: scrape throughput, $scrape_count rounds" >&2
	ARGUS_BIN="$argus_bin" PROMETHEUS_BIN="$PROMETHEUS_BIN" go test -run='^$' -bench='^BenchmarkScrapeCPU$' \
		-count="$scrape_count" -benchtime=1x -timeout=30m ./internal/benchscrape/ | tee -a "$sraw"
	echo
	echo "Scrape throughput (samples stored per CPU second; see docs/benchmarks.md), per round:"
	summarize "$sraw" BenchmarkScrapeCPU 'samples/cpu-s|-x$'
fi

# The public gRPC query API against the HTTP JSON API (internal/benchquery
# BenchmarkRangeQueryGRPCvsHTTP): one range query over BENCH_GRPC_SERIES
# (10000) series x 60 points, end to end from a Go program, through package
# client and through client_golang's HTTP API client (plain and gzip), in
# the same run against one all-in-one argus: time, bytes on the wire and
# client allocations per query, and their ratios gRPC/HTTP (below 1: gRPC
# is cheaper). BENCH_GRPC_COUNT=1 rounds of BENCH_GRPC_TIME=5x queries (0
# skips this step).
grpc_count="${BENCH_GRPC_COUNT:-1}"
if ((grpc_count > 0)); then
	set_argus_bin
	graw="$(raw_file grpc)"
	echo "bench: gRPC against HTTP range query, $grpc_count rounds" >&2
	ARGUS_BIN="$argus_bin" go test -run='^$' -bench='^BenchmarkRangeQueryGRPCvsHTTP$' -count="$grpc_count" \
		-benchtime="${BENCH_GRPC_TIME:-5x}" -timeout=30m ./internal/benchquery/ | tee -a "$graw"
	echo
	echo "gRPC query API against the HTTP JSON API (per query, and ratios gRPC/HTTP):"
	summarize "$graw" BenchmarkRangeQueryGRPCvsHTTP '/op$|grpc/'
fi

# Rule evaluation (internal/benchquery BenchmarkRuleEvaluation): 1,000
# recording rules (10 groups of 100 at 10 s) over BENCH_RULES_SERIES
# (100000) series, the real Prometheus loading them as a rule file, then
# argus with them uploaded to its ruler, each fresh and filled alike: the
# mean evaluation time of a group of 100 rules and the server's CPU time per
# 1,000 rule evaluations (medians of 6 intervals), and the ratios
# Argus/Prometheus. About 3 minutes per round. BENCH_RULES_COUNT=1 rounds (0 skips this step).
rules_count="${BENCH_RULES_COUNT:-1}"
if ((rules_count > 0)); then
	set_argus_bin
	set_prometheus_bin
	rraw="$(raw_file rules)"
	echo "bench: rule evaluation, $rules_count rounds" >&2
	ARGUS_BIN="$argus_bin" PROMETHEUS_BIN="$PROMETHEUS_BIN" go test -run='^$' -bench='^BenchmarkRuleEvaluation$' \
		-count="$rules_count" -benchtime=1x -timeout=30m ./internal/benchquery/ | tee -a "$rraw"
	echo
	echo "Rule evaluation, 1000 recording rules (a group of 100 rules, CPU per 1000 evaluations, ratios Argus/Prometheus):"
	summarize "$rraw" BenchmarkRuleEvaluation 'group-eval-ms$|1000-evals$|-ratio$'
fi

# A single user's Prometheus of 1M series (internal/e2e
# TestAllInOneMillionSeries, ARGUS_SCALE_1M=1): 10 targets of 100K series
# scraped every 15 s by the real Prometheus, remote-written with its default
# queue to an all-in-one argus with every default, checked exactly against
# Prometheus's own answers; it prints both processes' RSS and CPU. `make
# test` runs it at 200K series (TestAllInOneScale). 3 to 5 minutes; about
# 4 GB of memory. BENCH_SCALE_COUNT=1 rounds (0 skips this step).
scale_count="${BENCH_SCALE_COUNT:-1}"
if ((scale_count > 0)); then
	set_argus_bin
	set_prometheus_bin
	sraw="$(raw_file scale)"
	echo "bench: 1M series all-in-one, $scale_count rounds" >&2
	ARGUS_SCALE_1M=1 ARGUS_BIN="$argus_bin" PROMETHEUS_BIN="$PROMETHEUS_BIN" go test -run='^TestAllInOneMillionSeries$' \
		-count="$scale_count" -v -timeout=40m ./internal/e2e/ | tee -a "$sraw"
	echo
	echo "1M series at 15 s into a default all-in-one (argus against Prometheus):"
	grep -E 'series at 15s' "$sraw" | sed 's/^ */  /'
fi
