#!/usr/bin/env bash
# build-image.sh builds the Argus container image from deploy/Dockerfile:
# a static binary with the version stamped, copied onto an empty base. It is
# built as the Makefile builds everything (CGO_ENABLED=0, no -trimpath), so
# that under `make test` it reuses the build cache and only links. Environment:
#
#   IMAGE     image name (default ghcr.io/argus-tsdb/argus, the name the
#             overlays of deploy/kubernetes use)
#   VERSION   version stamped into the binary and the image tag (default 0.1.0-dev)
#   REVISION  revision stamped (default: git rev-parse --short HEAD)
#   DOCKER    docker client (default docker); DOCKER_HOST as docker reads it
#
# The last line printed on stdout is the image reference, IMAGE:VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-ghcr.io/argus-tsdb/argus}"
version="${VERSION:-0.1.0-dev}"
revision="${REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
docker="${DOCKER:-docker}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 go build \
	-ldflags "-s -w -X main.Version=$version -X main.Revision=$revision" \
	-o "$ctx/argus" ./cmd/argus
echo 'argus:x:10001:10001:argus:/data:/sbin/nologin' >"$ctx/passwd"
echo 'argus:x:10001:' >"$ctx/group"
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
else
	echo "build-image: no /etc/ssl/certs/ca-certificates.crt here: the image trusts no CA (https scrape targets fail)" >&2
	: >"$ctx/ca-certificates.crt"
fi
mkdir "$ctx/data" "$ctx/tmp"
cp deploy/Dockerfile "$ctx/Dockerfile"

"$docker" build -q --build-arg VERSION="$version" --build-arg REVISION="$revision" -t "$image:$version" "$ctx" >&2
echo "$image:$version"
