#!/usr/bin/env bash
# Builds a stand-in for the Dockerfile's base image, node:20-bookworm-slim, where registries of
# container images cannot be reached (this project's CI): Debian 12 "bookworm" minbase from the
# Debian mirror with debootstrap, plus this machine's Node.js 20 runtime laid out as the official
# image has it (/usr/local/bin/node, npm and npx, a user "node" with uid/gid 1000), imported into
# podman under the base image's name. Needs root, debootstrap, podman and node 20 on the PATH.
#
#   docker/stand-in-base.sh            build it unless podman already has the image
#   SHELFGATE_CACHE=DIR                where the root file system tarball is cached
#                                      (default ~/.cache/shelfgate/container-base)
set -euo pipefail

IMAGE="docker.io/library/node:20-bookworm-slim"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${SHELFGATE_CACHE:-$HOME/.cache/shelfgate/container-base}"
podman_flags=(--runtime runc --cgroup-manager=cgroupfs)

if podman "${podman_flags[@]}" image exists "$IMAGE"; then
  echo "stand-in base: $IMAGE is already in podman"
  exit 0
fi

node_bin="$(command -v node)"
node_version="$("$node_bin" --version)"
if [[ "$node_version" != v20.* ]]; then
  echo "stand-in base: node:20 needs Node.js 20 on this machine, found $node_version" >&2
  exit 1
fi
npm_dir="$(dirname "$(readlink -f "$(command -v npm)")")/.."
npm_dir="$(cd "$npm_dir" && pwd)"

# The cached tarball is keyed by what it is built from: the Debian suite, Node's version and npm's.
key="$(printf '%s\n' bookworm minbase "$MIRROR" "$node_version" "$(cat "$npm_dir/package.json" | sha256sum)" | sha256sum | cut -c1-16)"
tarball="$cache/node20-bookworm-slim-$key.tar"
mkdir -p "$cache"
if [[ ! -f "$tarball" ]]; then
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  echo "stand-in base: debootstrap bookworm (minbase) from $MIRROR"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  # As debian:bookworm-slim: no apt lists, no docs, no man pages.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  # As node:20-bookworm-slim: the runtime in /usr/local, npm and npx beside it, user node 1000:1000.
  install -m 0755 "$node_bin" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  tar -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$root"
  trap - EXIT
fi
echo "stand-in base: importing $tarball as $IMAGE"
podman "${podman_flags[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  "$tarball" "$IMAGE" >/dev/null
