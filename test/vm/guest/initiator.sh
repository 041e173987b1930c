#!/bin/sh
# The kernel initiator against the gateway (test/vm/guest-initiator.test.ts): discovery and login
# to a volume, the changer and two drives; ext4 on the volume; mtx; mt; tar in variable and fixed
# records and on two drives at once; an export to the I/E slot, the shelf, and the retrieved tape
# read back. /job/env gives GATEWAY_HOST, GATEWAY_PORT and IE_SLOT (mtx's number of the first I/E
# slot).
. /job/env
. /job/lib.sh

check login discover_and_login vol1 mediachanger tapedrive-01 tapedrive-02
DISK=$(device_of vol1 block)
CHANGER=$(device_of mediachanger scsi_generic)
TAPE0=$(device_of tapedrive-01 scsi_tape)
TAPE1=$(device_of tapedrive-02 scsi_tape)
echo "devices: disk=$DISK changer=$CHANGER drive0=$TAPE0 drive1=$TAPE1"
check devices test -b "$DISK" -a -c "$CHANGER" -a -c "$TAPE0" -a -c "$TAPE1"

# ---- the volume: raw I/O, then ext4 -------------------------------------------------------------
raw_io() {
  head -c 8388608 /dev/urandom >/tmp/raw
  dd if=/tmp/raw of="$DISK" bs=1M seek=64 oflag=direct conv=fsync status=none || return 1
  dd if="$DISK" of=/tmp/raw.back bs=1M skip=64 count=8 iflag=direct status=none || return 1
  cmp /tmp/raw /tmp/raw.back
}
check volume-raw-io raw_io

ext4_cycle() {
  mkfs.ext4 -q -F "$DISK" || return 1
  mkdir -p /mnt/vol && mount "$DISK" /mnt/vol || return 1
  make_tree /mnt/vol/data 11 40
  (cd /mnt/vol/data && find . -type f -exec sha256sum {} + >/tmp/sums) || return 1
  sync -f /mnt/vol/data/sub/big || return 1
  umount /mnt/vol || return 1
  fsck.ext4 -f -n "$DISK" || return 1
  mount "$DISK" /mnt/vol || return 1
  (cd /mnt/vol/data && sha256sum -c --quiet /tmp/sums) || return 1
  umount /mnt/vol
}
check volume-ext4 ext4_cycle

# ---- the changer ----------------------------------------------------------------------------------
barcode_in_slot() { mtx -f "$CHANGER" status | sed -n "s/^ *Storage Element $1:Full :VolumeTag=\([A-Z0-9]*\).*/\1/p"; }
mtx_basics() {
  mtx -f "$CHANGER" status || return 1
  mtx -f "$CHANGER" status | grep -q "Data Transfer Element 0:Empty" || return 1
  mtx -f "$CHANGER" load 1 0 && mtx -f "$CHANGER" status | grep -q "Data Transfer Element 0:Full (Storage Element 1 Loaded)" || return 1
  mtx -f "$CHANGER" unload 1 0 && mtx -f "$CHANGER" status | grep -q "Storage Element 1:Full" || return 1
  first=$(barcode_in_slot 1)
  mtx -f "$CHANGER" transfer 1 12 || return 1
  [ "$(barcode_in_slot 12)" = "$first" ] || { echo "slot 12 does not hold $first"; return 1; }
  mtx -f "$CHANGER" transfer 12 1
}
check mtx-status-load-unload-transfer mtx_basics

# ---- one drive: mt and tar ------------------------------------------------------------------------
make_tree /tmp/a 1 30
make_tree /tmp/b 2 20
make_tree /tmp/c 3 10
mt_and_tar() {
  mtx -f "$CHANGER" load 1 0 || return 1
  mt -f "$TAPE0" status || return 1
  mt -f "$TAPE0" setblk 0 && mt -f "$TAPE0" rewind || return 1
  tar -cf "$TAPE0" -C /tmp a || return 1                 # file 0 (st writes the filemark on close)
  tar -cf "$TAPE0" -C /tmp b || return 1                 # file 1
  mt -f "$TAPE0" weof 1 || return 1                      # file 2: empty
  end=$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')
  mt -f "$TAPE0" rewind && mt -f "$TAPE0" fsf 1 || return 1
  rm -rf /tmp/out && mkdir /tmp/out && tar -xf "$TAPE0" -C /tmp/out && same_tree /tmp/b /tmp/out/b || return 1
  # st (BSD semantics) left the tape after the last record tar read, before file 1's filemark:
  # back over file 0's filemark, then forward over it again.
  mt -f "$TAPE0" bsf 1 && mt -f "$TAPE0" fsf 1 || return 1
  second=$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')
  mt -f "$TAPE0" rewind && mt -f "$TAPE0" fsf 1 || return 1
  [ "$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')" = "$second" ] || { echo "bsf/fsf ended at $second"; return 1; }
  mt -f "$TAPE0" eod || return 1
  [ "$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')" = "$end" ] || { echo "eod is not block $end"; return 1; }
  # From EOD back over the two filemarks that end the tape (file 1's and the empty file 2's).
  mt -f "$TAPE0" bsf 2 || return 1
  [ "$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')" = "$((end - 2))" ] || { echo "bsf 2 from EOD did not end at block $((end - 2))"; return 1; }
  mt -f "$TAPE0" seek "$second" && [ "$(mt -f "$TAPE0" tell | sed -n 's/At block \([0-9]*\)\./\1/p')" = "$second" ] || return 1
  rm -rf /tmp/out && mkdir /tmp/out && tar -xf "$TAPE0" -C /tmp/out && same_tree /tmp/b /tmp/out/b || return 1
  mt -f "$TAPE0" rewind && rm -rf /tmp/out && mkdir /tmp/out && tar -xf "$TAPE0" -C /tmp/out && same_tree /tmp/a /tmp/out/a
}
check mt-tar-variable mt_and_tar

fixed_records() {
  mt -f "$TAPE0" rewind && mt -f "$TAPE0" setblk 65536 || return 1
  mt -f "$TAPE0" status | grep -qi "block size 65536\|Tape block size 65536" || { mt -f "$TAPE0" status; return 1; }
  tar -cf "$TAPE0" -b 128 -C /tmp c || return 1
  mt -f "$TAPE0" rewind && rm -rf /tmp/out && mkdir /tmp/out && tar -xf "$TAPE0" -b 128 -C /tmp/out && same_tree /tmp/c /tmp/out/c || return 1
  mt -f "$TAPE0" setblk 0
}
check mt-tar-fixed-64k fixed_records

two_drives() {
  mtx -f "$CHANGER" load 2 1 || return 1
  mt -f "$TAPE1" setblk 0 && mt -f "$TAPE0" rewind && mt -f "$TAPE1" rewind || return 1
  tar -cf "$TAPE0" -C /tmp a & p0=$!
  tar -cf "$TAPE1" -C /tmp b & p1=$!
  wait $p0 || return 1
  wait $p1 || return 1
  mt -f "$TAPE0" rewind && mt -f "$TAPE1" rewind || return 1
  rm -rf /tmp/o0 /tmp/o1 && mkdir /tmp/o0 /tmp/o1
  tar -xf "$TAPE0" -C /tmp/o0 & p0=$!
  tar -xf "$TAPE1" -C /tmp/o1 & p1=$!
  wait $p0 && wait $p1 || return 1
  same_tree /tmp/a /tmp/o0/a && same_tree /tmp/b /tmp/o1/b
}
check tar-two-drives-at-once two_drives

# Debian's mtx-changer (offline=0) unloads with MOVE MEDIUM alone: the library unloads the drive.
unload_without_offline() {
  mt -f "$TAPE0" rewind && mtx -f "$CHANGER" unload 1 0 || return 1
  mt -f "$TAPE1" rewind && mtx -f "$CHANGER" unload 2 1 || return 1
  mtx -f "$CHANGER" status | grep -q "Data Transfer Element 0:Empty" && mtx -f "$CHANGER" status | grep -q "Data Transfer Element 1:Empty"
}
check mtx-unload-without-mt-offline unload_without_offline

# ---- export to the I/E slot, the shelf, retrieval ---------------------------------------------------
EXPORTED=$(barcode_in_slot 1)
export_tape() {
  mtx -f "$CHANGER" transfer 1 "$IE_SLOT" || return 1
  mtx -f "$CHANGER" status
  ! mtx -f "$CHANGER" status | grep -q "VolumeTag=$EXPORTED"
}
check mtx-export-to-ie-slot export_tape
echo "$EXPORTED" >/job/exported
# The host waits for ARCHIVED, retrieves the tape and says so in /job/retrieved.
wait_retrieved() {
  for _ in $(seq 1 3000); do [ -e /job/retrieved ] && return 0; sleep 0.2; done
  echo "the host never retrieved $EXPORTED"
  return 1
}
read_retrieved() {
  wait_retrieved || return 1
  mtx -f "$CHANGER" status >/dev/null 2>&1       # the first command reports the inventory change (UNIT ATTENTION)
  mtx -f "$CHANGER" status || return 1
  slot=$(mtx -f "$CHANGER" status | sed -n "s/^ *Storage Element \([0-9]*\):Full :VolumeTag=$EXPORTED.*/\1/p")
  [ -n "$slot" ] || { echo "$EXPORTED is not back in a storage slot"; return 1; }
  mtx -f "$CHANGER" load "$slot" 0 || return 1
  mt -f "$TAPE0" rewind && rm -rf /tmp/out && mkdir /tmp/out && tar -xf "$TAPE0" -C /tmp/out && same_tree /tmp/a /tmp/out/a || return 1
  if tar -cf "$TAPE0" -C /tmp c 2>/dev/null; then echo "a retrieved tape took a write"; return 1; fi
  mt -f "$TAPE0" rewind && mtx -f "$CHANGER" unload "$slot" 0
}
check retrieved-tape-reads-back read_retrieved

finish
