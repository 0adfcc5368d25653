#!/usr/bin/env bash
# install-tools.sh builds the third-party binaries the end-to-end tests run
# against, once per version, into a cache outside the work tree:
#
#   $(go env GOCACHE)/../argus-tools/prometheus-<version>/{prometheus,promtool}
#
# The real Prometheus server is the remote-write client and the PromQL
# reference of internal/e2e. Debian's prometheus package is 2.x, too old, so it
# is built from the Go module proxy. A second run finds the binaries and builds
# nothing. The last line printed on stdout is the Prometheus directory;
# progress goes to stderr.
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}" # Prometheus 3.16

tools_dir="${TOOLS_DIR:-$(go env GOCACHE)/../argus-tools}"
mkdir -p "$tools_dir"
tools_dir="$(cd "$tools_dir" && pwd -P)"
dest="$tools_dir/prometheus-$PROMETHEUS_VERSION"

if [[ -x "$dest/prometheus" && -x "$dest/promtool" ]]; then
	echo "install-tools: prometheus $PROMETHEUS_VERSION already in $dest" >&2
else
	echo "install-tools: building prometheus and promtool $PROMETHEUS_VERSION into $dest (a few minutes)" >&2
	# Build into a temporary directory and rename it into place, so that an
	# interrupted build never leaves a half-filled cache entry behind.
	tmp="$(mktemp -d "$tools_dir/.prometheus-$PROMETHEUS_VERSION.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	# Run outside the argus module so that its go.mod does not interfere.
	(cd "$tmp" && GOBIN="$tmp" GOFLAGS= go install \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION")
	rm -rf "$dest"
	chmod 755 "$tmp"
	mv "$tmp" "$dest"
	trap - EXIT
	"$dest/prometheus" --version >&2
fi
echo "$dest"
