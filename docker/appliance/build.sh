#!/usr/bin/env bash
# Builds the shelfgate VM appliance (docs/deploy.md): a bootable Debian 12 disk (debootstrap, the
# Debian kernel, this machine's Node.js 20, shelfgate as a systemd service, DHCP on every
# Ethernet interface, the data on a separate disk), converted with qemu-img to
#   shelfgate-appliance.qcow2      KVM, Proxmox
#   shelfgate-appliance.vhdx       Hyper-V (Generation 1)
#   shelfgate-appliance.ova        VMware ESXi: OVF descriptor + streamOptimized VMDKs (system, data)
# The images go to OUT/<key>/, where key is a hash of everything they are built from, so a second
# run with the same inputs only prints the directory. Needs root, debootstrap, qemu-img, mkfs.ext4,
# mkfs.vfat, mtools, syslinux, sfdisk and npm; no loop devices or mounts.
#
#   npm run appliance               (= docker/appliance/build.sh)
#   SHELFGATE_APPLIANCE_OUT=DIR     default ~/.cache/shelfgate/appliance
#   DEBIAN_MIRROR=URL               default http://deb.debian.org/debian
# The last line printed is the output directory.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${SHELFGATE_APPLIANCE_OUT:-$HOME/.cache/shelfgate/appliance}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="linux-image-amd64,systemd-sysv,udev,dbus,initramfs-tools,kmod,e2fsprogs,iproute2,ca-certificates"
root_size_mib=3072
boot_size_mib=128
data_size_gib=64

for tool in debootstrap qemu-img mkfs.ext4 mkfs.vfat mcopy syslinux sfdisk npm node; do
  command -v "$tool" >/dev/null || { echo "appliance: $tool is missing (apt-get install debootstrap qemu-utils e2fsprogs dosfstools mtools syslinux syslinux-common fdisk)" >&2; exit 1; }
done
[[ "$(id -u)" == 0 ]] || { echo "appliance: debootstrap needs root" >&2; exit 1; }
node_version="$(node --version)"
[[ "$node_version" == v20.* ]] || { echo "appliance: needs Node.js 20 on this machine (found $node_version)" >&2; exit 1; }
mbr=/usr/lib/syslinux/mbr/mbr.bin

# What the images are built from: the sources, the lock file, this directory, Node and Debian.
key="$(
  cd "$repo"
  {
    find src iscsi docker/appliance -type f | LC_ALL=C sort | xargs sha256sum
    sha256sum package.json package-lock.json tsconfig.json
    echo "$node_version $mirror $packages $root_size_mib $boot_size_mib $data_size_gib"
  } | sha256sum | cut -c1-16
)"
dest="$out/$key"
if [[ -f "$dest/shelfgate-appliance.ova" ]]; then
  echo "appliance: up to date"
  echo "$dest"
  exit 0
fi
mkdir -p "$out"
work="$(mktemp -d "$out/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { echo "appliance: $* ($(date -u +%H:%M:%S))"; }

# 1. The Debian system, cached by its package list (debootstrap is the slow part).
base_key="$(echo "bookworm minbase $mirror $packages" | sha256sum | cut -c1-16)"
base_tar="$out/debian-$base_key.tar"
if [[ ! -f "$base_tar" ]]; then
  step "debootstrap bookworm with $packages"
  mkdir "$work/base"
  debootstrap --variant=minbase --include="$packages" bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -30 "$work/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$work/base"/var/lib/apt/lists/* "$work/base"/var/cache/apt/archives/*.deb
  tar -C "$work/base" -cf "$base_tar.part" . && mv "$base_tar.part" "$base_tar"
  rm -rf "$work/base"
fi
root="$work/root"
mkdir "$root"
tar -C "$root" -xf "$base_tar"

# 2. shelfgate: the compiled sources and production dependencies in /opt/shelfgate, node in /usr/local.
step "shelfgate into /opt/shelfgate"
(cd "$repo" && npm run build >/dev/null)
app="$root/opt/shelfgate"
mkdir -p "$app/dist"
cp "$repo/package.json" "$repo/package-lock.json" "$app/"
cp -r "$repo/dist/src" "$repo/dist/iscsi" "$app/dist/"
find "$app/dist" -name '*.map' -delete
(cd "$app" && npm ci --omit=dev --no-audit --no-fund >/dev/null 2>"$work/npm.log") || { cat "$work/npm.log" >&2; exit 1; }
install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"
cp -r "$here/rootfs/." "$root/"
chmod 0755 "$root/usr/local/sbin/"*
chroot "$root" useradd --system --home-dir /var/lib/shelfgate --no-create-home --shell /usr/sbin/nologin shelfgate
mkdir -p "$root/var/lib/shelfgate"
chroot "$root" chown shelfgate:shelfgate /var/lib/shelfgate
echo shelfgate >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tshelfgate\n' >"$root/etc/hosts"
root_uuid="$(cat /proc/sys/kernel/random/uuid)"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$root/etc/fstab"
chroot "$root" systemctl enable systemd-networkd.service shelfgate-prepare.service shelfgate.service >/dev/null 2>&1
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# The console banner (shelfgate-prepare) replaces a login prompt; root has no password.
chroot "$root" passwd --lock root >/dev/null

# 3. The disk: MBR (syslinux) | FAT boot partition (kernel, initrd, syslinux) | ext4 root, built
#    from directories (mkfs.ext4 -d, mtools), so no loop device or mount is needed.
step "disk image"
kernel="$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -1)"
initrd="initrd.img-${kernel#vmlinuz-}"
mkfs.vfat -n SGBOOT -C "$work/boot.img" $((boot_size_mib * 1024)) >/dev/null
cat >"$work/syslinux.cfg" <<CFG
DEFAULT shelfgate
PROMPT 0
TIMEOUT 10
LABEL shelfgate
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200n8
CFG
mcopy -i "$work/boot.img" "$root/boot/$kernel" ::/vmlinuz
mcopy -i "$work/boot.img" "$root/boot/$initrd" ::/initrd.img
mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$work/boot.img"
mkfs.ext4 -q -L shelfgate-root -U "$root_uuid" -d "$root" "$work/root.img" "${root_size_mib}M"
disk="$work/shelfgate-appliance.raw"
truncate -s $(((1 + boot_size_mib + root_size_mib) * 1024 * 1024)) "$disk"
sfdisk --quiet "$disk" <<PART
label: dos
start=2048, size=$((boot_size_mib * 2048)), type=c, bootable
start=$(((1 + boot_size_mib) * 2048)), type=83
PART
dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/boot.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$disk" bs=1M seek=$((1 + boot_size_mib)) conv=notrunc,sparse status=none

# 4. The formats.
step "qcow2, VHDX, VMDK, OVA"
mkdir -p "$work/out"
qemu-img convert -c -O qcow2 "$disk" "$work/out/shelfgate-appliance.qcow2"
qemu-img convert -O vhdx -o subformat=dynamic "$disk" "$work/out/shelfgate-appliance.vhdx"
qemu-img convert -O vmdk -o subformat=streamOptimized "$disk" "$work/shelfgate-system.vmdk"
qemu-img create -q -f raw "$work/data.raw" "${data_size_gib}G"
qemu-img convert -O vmdk -o subformat=streamOptimized "$work/data.raw" "$work/shelfgate-data.vmdk"
node "$here/ovf.mjs" \
  --name shelfgate --version "$(node -p "require('$repo/package.json').version")" \
  --disk "$work/shelfgate-system.vmdk:$(stat -c %s "$disk")" \
  --disk "$work/shelfgate-data.vmdk:$((data_size_gib * 1024 * 1024 * 1024))" \
  >"$work/shelfgate-appliance.ovf"
(
  cd "$work"
  for f in shelfgate-appliance.ovf shelfgate-system.vmdk shelfgate-data.vmdk; do
    printf 'SHA256(%s)= %s\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
  done >shelfgate-appliance.mf
  # OVF 2.0 (DSP0243) 5.3: the descriptor first, then the manifest, then the files, in ustar.
  tar --format=ustar -cf out/shelfgate-appliance.ova shelfgate-appliance.ovf shelfgate-appliance.mf shelfgate-system.vmdk shelfgate-data.vmdk
)
rm -rf "$dest"
mv "$work/out" "$dest"
step "done: $(du -sh "$dest" | cut -f1) in $dest"
ls -l "$dest" | tail -n +2
echo "$dest"
