#!/usr/bin/env bash
# install-tools.sh builds the third-party binaries the end-to-end tests run
# against, once per version, into a cache outside the work tree:
#
#   $(go env GOCACHE)/../argus-tools/prometheus-<version>/{prometheus,promtool}
#   $(go env GOCACHE)/../argus-tools/kube-<k8s version>-etcd-<etcd version>/{kube-apiserver,etcd}
#   $(go env GOCACHE)/../argus-tools/grpcurl-<version>/grpcurl
#
# The real Prometheus server is the remote-write client and the PromQL
# reference of internal/e2e. Debian's prometheus package is 2.x, too old, so it
# is built from the Go module proxy. kube-apiserver and etcd are the real
# Kubernetes API of internal/kubetest; they are built from the pinned module
# tools/kube (go install refuses k8s.io/kubernetes: its go.mod replaces the
# k8s.io staging modules). A second run finds the binaries and builds nothing.
#
# Without an argument Prometheus is built and the last line printed on stdout
# is its directory; with the argument "kube" kube-apiserver and etcd are built
# instead and the last line is their directory (the KUBEBUILDER_ASSETS of
# internal/kubetest); with "grpcurl" grpcurl is built from its Go module (the
# gRPC client of the query API's end-to-end test, GRPCURL_BIN) and the last
# line is the binary's path; with "alertmanager", Alertmanager and amtool
# (alertmanager-<version>/{alertmanager,amtool}, the ALERTMANAGER_BIN of
# internal/e2e and the amtool beside it) and the last line is its directory;
# with "mimirtool", mimirtool from tools/mimirtool and the last line is the
# binary's path (MIMIRTOOL_BIN). Progress goes to stderr.
set -euo pipefail

what="${1:-all}"

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}" # Prometheus 3.16
GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.3}"

tools_dir="${TOOLS_DIR:-$(go env GOCACHE)/../argus-tools}"
mkdir -p "$tools_dir"
tools_dir="$(cd "$tools_dir" && pwd -P)"

# install_kube builds kube-apiserver and etcd from tools/kube into a directory
# named after their versions and prints that directory.
install_kube() {
	local module kube_version etcd_version kdest tmp
	module="$(cd "$(dirname "$0")/../tools/kube" && pwd -P)"
	kube_version="$(cd "$module" && GOFLAGS= go list -m -f '{{.Version}}' k8s.io/kubernetes)"
	etcd_version="$(cd "$module" && GOFLAGS= go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
	kdest="$tools_dir/kube-$kube_version-etcd-$etcd_version"
	if [[ -x "$kdest/kube-apiserver" && -x "$kdest/etcd" ]]; then
		echo "install-tools: kube-apiserver $kube_version and etcd $etcd_version already in $kdest" >&2
	else
		echo "install-tools: building kube-apiserver $kube_version and etcd $etcd_version into $kdest (5-15 minutes)" >&2
		tmp="$(mktemp -d "$tools_dir/.kube.XXXXXX")"
		(cd "$module" && GOFLAGS= go build -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) || { rm -rf "$tmp"; return 1; }
		(cd "$module" && GOFLAGS= go build -o "$tmp/etcd" go.etcd.io/etcd/server/v3) || { rm -rf "$tmp"; return 1; }
		rm -rf "$kdest"
		chmod 755 "$tmp"
		mv "$tmp" "$kdest"
		"$kdest/etcd" --version >&2
	fi
	echo "$kdest"
}

# install_alertmanager builds Alertmanager (the receiver of the ruler's
# alerts in internal/e2e) and amtool (its command-line client, which the
# ruler's end-to-end test lists the alerts with) into a directory named after
# their version and prints that directory. go install fails on its embedded UI (ui/web.go embeds
# app/dist, which the module does not ship), so the module is copied from the
# module cache, the two embedded index pages are stubbed, and it is built
# there.
install_alertmanager() {
	local version adest tmp src
	version="${ALERTMANAGER_VERSION:-v0.35.0}"
	adest="$tools_dir/alertmanager-$version"
	if [[ -x "$adest/alertmanager" && -x "$adest/amtool" ]]; then
		echo "install-tools: alertmanager and amtool $version already in $adest" >&2
	else
		echo "install-tools: building alertmanager and amtool $version into $adest (about a minute)" >&2
		tmp="$(mktemp -d "$tools_dir/.alertmanager-$version.XXXXXX")"
		src="$(cd "$tmp" && GOFLAGS= go mod download -json "github.com/prometheus/alertmanager@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
		[[ -n "$src" ]] || { rm -rf "$tmp"; echo "install-tools: alertmanager $version not in the module cache" >&2; return 1; }
		cp -r "$src" "$tmp/src"
		chmod -R u+w "$tmp/src"
		mkdir -p "$tmp/src/ui/app/dist/elm" "$tmp/src/ui/app/dist/mantine"
		echo '<!doctype html><title>Alertmanager</title>' >"$tmp/src/ui/app/dist/elm/index.html"
		echo '<!doctype html><title>Alertmanager</title>' >"$tmp/src/ui/app/dist/mantine/index.html"
		(cd "$tmp/src" && GOFLAGS= go build -o "$tmp/alertmanager" ./cmd/alertmanager && GOFLAGS= go build -o "$tmp/amtool" ./cmd/amtool) || { rm -rf "$tmp"; return 1; }
		rm -rf "$tmp/src" "$adest"
		chmod 755 "$tmp"
		mv "$tmp" "$adest"
		"$adest/alertmanager" --version >&2
	fi
	echo "$adest"
}

if [[ "$what" == alertmanager ]]; then
	install_alertmanager
	exit 0
fi

# install_grpcurl builds grpcurl into a directory named after its version
# and prints the binary's path.
install_grpcurl() {
	local gdest tmp
	gdest="$tools_dir/grpcurl-$GRPCURL_VERSION"
	if [[ -x "$gdest/grpcurl" ]]; then
		echo "install-tools: grpcurl $GRPCURL_VERSION already in $gdest" >&2
	else
		echo "install-tools: building grpcurl $GRPCURL_VERSION into $gdest" >&2
		tmp="$(mktemp -d "$tools_dir/.grpcurl-$GRPCURL_VERSION.XXXXXX")"
		(cd "$tmp" && GOBIN="$tmp" GOFLAGS= go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION") || { rm -rf "$tmp"; return 1; }
		rm -rf "$gdest"
		chmod 755 "$tmp"
		mv "$tmp" "$gdest"
	fi
	echo "$gdest/grpcurl"
}

# install_mimirtool builds mimirtool (the rules client of the ruler's
# end-to-end test, MIMIRTOOL_BIN) from the pinned module tools/mimirtool into
# a directory named after mimir's version and prints the binary's path.
install_mimirtool() {
	local module version mdest tmp
	module="$(cd "$(dirname "$0")/../tools/mimirtool" && pwd -P)"
	version="$(cd "$module" && GOFLAGS= go list -m -f '{{.Version}}' github.com/grafana/mimir)"
	mdest="$tools_dir/mimirtool-$version"
	if [[ -x "$mdest/mimirtool" ]]; then
		echo "install-tools: mimirtool $version already in $mdest" >&2
	else
		echo "install-tools: building mimirtool $version into $mdest (a few minutes)" >&2
		tmp="$(mktemp -d "$tools_dir/.mimirtool.XXXXXX")"
		(cd "$module" && GOFLAGS= go build -o "$tmp/mimirtool" github.com/grafana/mimir/cmd/mimirtool) || { rm -rf "$tmp"; return 1; }
		rm -rf "$mdest"
		chmod 755 "$tmp"
		mv "$tmp" "$mdest"
	fi
	echo "$mdest/mimirtool"
}

if [[ "$what" == mimirtool ]]; then
	install_mimirtool
	exit 0
fi
if [[ "$what" == kube ]]; then
	install_kube
	exit 0
fi
if [[ "$what" == grpcurl ]]; then
	install_grpcurl
	exit 0
fi

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
