#!/usr/bin/env bash
# Builds the Debian 12 guest of the VM suites (test/vm/guest-*.test.ts, backup-*.test.ts) into
# OUT_DIR: vmlinuz, initrd.img (Debian's initramfs-tools, root on virtio-blk) and rootfs.ext4 (made
# with mkfs.ext4 -d: no loop device). The guest has no systemd as PID 1: the kernel runs
# /sbin/shelfgate-init (test/vm/guest/init.sh), which mounts the 9p share "job", runs its run.sh
# and powers off. Needs root, debootstrap and the Debian mirror (MIRROR, default deb.debian.org).
# The test helper (test/helpers/guest-vm.ts) calls this once per content hash of this folder and
# caches the result in ~/.cache/shelfgate/guest-<hash>.
set -euo pipefail

out_dir=${1:?usage: build-image.sh OUT_DIR}
mirror=${MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${out_dir%/}.build.XXXXXX")
root="$work/root"
cleanup() {
  umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true
  # Never delete through a bind mount of the host's /dev or /sys.
  if grep -q " $root/" /proc/mounts; then
    echo "guest image: $root still has mounts; not removing $work" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT

step() { echo "guest image: $*" >&2; }

step "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -40 "$work/debootstrap.log" >&2; exit 1; }

# No service may start inside the chroot (packages' postinst scripts try).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"

# libencode-locale-perl: Amanda's Perl modules (Amanda::Message) need Encode::Locale, which
# Debian 12's amanda-common does not depend on.
packages=(
  linux-image-amd64 initramfs-tools kmod iproute2 procps
  open-iscsi sg3-utils lsscsi mt-st mtx tar e2fsprogs
  bacula-sd bacula-fd bacula-director bacula-director-sqlite3 bacula-console
  amanda-server amanda-client libencode-locale-perl
)
step "installing ${packages[*]}"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update >"$work/apt.log" 2>&1
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >>"$work/apt.log" 2>&1 \
  || { tail -40 "$work/apt.log" >&2; exit 1; }

# initramfs: the virtio drivers and 9p built in, so the root disk is found without udev rules.
cat >>"$root/etc/initramfs-tools/modules" <<'MODULES'
virtio_pci
virtio_blk
virtio_net
ext4
9p
9pnet_virtio
MODULES
chroot "$root" update-initramfs -u -k all >>"$work/apt.log" 2>&1

install -m 0755 "$here/init.sh" "$root/sbin/shelfgate-init"
echo "shelfgate-guest" >"$root/etc/hostname"
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
umount -R "$root/proc" "$root/sys" "$root/dev"

mkdir -p "$out_dir.tmp"
cp "$root"/boot/vmlinuz-* "$out_dir.tmp/vmlinuz"
cp "$root"/boot/initrd.img-* "$out_dir.tmp/initrd.img"
rm -rf "$root/boot"/*
used_kib=$(du -skx "$root" | cut -f1)
step "rootfs.ext4 ($((used_kib / 1024)) MiB used, 1 GiB free)"
mkfs.ext4 -q -L shelfgate-guest -d "$root" "$out_dir.tmp/rootfs.ext4" "$((used_kib + 1024 * 1024))K"
rm -rf "$out_dir"
mv "$out_dir.tmp" "$out_dir"
step "done: $out_dir"
