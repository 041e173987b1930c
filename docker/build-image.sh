#!/usr/bin/env bash
# Builds the shelfgate container image from docker/Dockerfile, tagged shelfgate:<version> and
# shelfgate:latest. With podman (preferred when both are present) and no node:20-bookworm-slim
# image at hand, the offline stand-in base is built first (docker/stand-in-base.sh). Prints the
# image's size and its size above the base image.
#
#   docker/build-image.sh [--engine podman|docker] [--tag NAME]
set -euo pipefail
cd "$(dirname "$0")/.."

engine=""
tag="shelfgate"
while (($# > 0)); do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$engine" ]]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else echo "build-image: needs podman or docker" >&2; exit 1
  fi
fi
version="$(node -p 'require("./package.json").version')"
base="docker.io/library/node:20-bookworm-slim"

build_flags=(--build-arg "VERSION=$version" -f docker/Dockerfile -t "$tag:$version" -t "$tag:latest")
# The CA bundle npm trusts here goes in as the npm_cafile build secret (a TLS-inspecting proxy's
# certificate must reach npm ci inside the build; nothing of it stays in the image).
cafile="$(npm config get cafile 2>/dev/null || true)"
if [[ -z "$cafile" || "$cafile" == null || "$cafile" == undefined ]]; then cafile="${NODE_EXTRA_CA_CERTS:-}"; fi
if [[ -n "$cafile" && -f "$cafile" ]]; then
  build_flags+=(--secret "id=npm_cafile,src=$cafile")
fi
cmd=("$engine")
if [[ "$engine" == podman ]]; then
  # runc and cgroupfs: what podman needs on hosts without systemd's cgroup manager (this CI);
  # docker format keeps HEALTHCHECK, which the OCI format has no field for; the host network
  # lets npm ci reach the registry without netavark's firewall rules.
  cmd+=(--runtime runc --cgroup-manager=cgroupfs)
  build_flags+=(--format docker --network host)
  if ! "${cmd[@]}" image exists "$base"; then
    docker/stand-in-base.sh
  fi
  # Never pull the base: on this machine only the stand-in exists.
  build_flags+=(--pull=never)
fi
"${cmd[@]}" build "${build_flags[@]}" .

image_bytes="$("${cmd[@]}" image inspect --format '{{.Size}}' "$tag:$version")"
base_bytes="$("${cmd[@]}" image inspect --format '{{.Size}}' "$base" 2>/dev/null || echo 0)"
echo "built $tag:$version: $((image_bytes / 1000000)) MB, $(((image_bytes - base_bytes) / 1000000)) MB above $base"
