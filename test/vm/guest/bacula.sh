#!/bin/sh
# Bacula 9.6 (Debian 12) with the gateway's changer and two drives (test/vm/backup-bacula.test.ts):
# btape's autochanger test (slot 1); label barcodes for three tapes (slots 2-4); a full and an incremental
# backup of a tree; a restore and a diff; an export with mtx-changer transfer to the I/E slot.
# The changer script and its settings are Debian's stock ones (mtx-changer.conf: offline=0).
. /job/env
. /job/lib.sh

check login discover_and_login mediachanger tapedrive-01 tapedrive-02
CHANGER=$(device_of mediachanger scsi_generic)
DRIVE_0=$(device_of tapedrive-01 scsi_tape)
DRIVE_1=$(device_of tapedrive-02 scsi_tape)
echo "devices: changer=$CHANGER drive0=$DRIVE_0 drive1=$DRIVE_1"

configure() {
  grep -q '^offline=0' /etc/bacula/scripts/mtx-changer.conf || { echo "mtx-changer.conf is not Debian's stock (offline=0)"; return 1; }
  for f in bacula-dir.conf bacula-fd.conf bconsole.conf; do cp "/job/bacula/$f" "/etc/bacula/$f" || return 1; done
  sed -e "s|CHANGER_DEVICE|$CHANGER|" -e "s|DRIVE_0|$DRIVE_0|" -e "s|DRIVE_1|$DRIVE_1|" /job/bacula/bacula-sd.conf >/etc/bacula/bacula-sd.conf || return 1
  mkdir -p /run/bacula /var/log/bacula /tmp/bacula-restores
  if [ ! -s /var/lib/bacula/bacula.db ]; then
    /usr/share/bacula-director/make_sqlite3_tables bacula || return 1
  fi
  bacula-dir -t -c /etc/bacula/bacula-dir.conf && bacula-sd -t -c /etc/bacula/bacula-sd.conf && bacula-fd -t -c /etc/bacula/bacula-fd.conf
}
check bacula-config configure

# btape before the Storage daemon holds the drive: its autochanger test (it wants a blank tape in
# slot 1 that it may write on). btape's "test" command is not run: it writes and reads twice
# 10,000 records, which under emulation (TCG, ~80 records/s here) takes longer than the suite.
btape_autochanger() {
  mtx -f "$CHANGER" load 1 0 || return 1 # btape opens the drive first
  # "autochanger", yes to the test, then quit.
  printf 'autochanger\ny\nquit\n' | btape -c /etc/bacula/bacula-sd.conf Drive-0 >/job/out/btape.txt 2>&1
  cat /job/out/btape.txt
  grep -q "The test autochanger worked" /job/out/btape.txt || return 1
  if ! mtx -f "$CHANGER" status | grep -q "Data Transfer Element 0:Empty"; then
    /etc/bacula/scripts/mtx-changer "$CHANGER" unload 1 "$DRIVE_0" 0 || return 1
  fi
}
check btape-autochanger btape_autochanger

start_daemons() { bacula-fd -c /etc/bacula/bacula-fd.conf && bacula-sd -c /etc/bacula/bacula-sd.conf && bacula-dir -c /etc/bacula/bacula-dir.conf; }
check bacula-start start_daemons

console() { bconsole -c /etc/bacula/bconsole.conf; }
# Jobs whose status is T (terminated normally), from the catalog.
ok_jobs() { printf 'list jobs\n' | console | grep -c '| T *|$\|| T  *|'; }

label_barcodes() {
  printf 'update slots storage=shelfgate drive=0\nlabel barcodes storage=shelfgate pool=Default slots=2-4 drive=0\nyes\nlist volumes pool=Default\n' | console >/job/out/label.txt
  cat /job/out/label.txt
  count=$(grep -c '| Append *|' /job/out/label.txt)
  [ "$count" = 3 ] || { echo "$count of 3 volumes labelled"; return 1; }
}
check bacula-label-barcodes label_barcodes

make_tree /srv/data 21 60
full_backup() {
  printf 'run job=BackupData level=Full yes\nwait\nmessages\n' | console
  [ "$(ok_jobs)" -ge 1 ]
}
check bacula-full-backup full_backup

incremental_backup() {
  head -c 500000 /dev/urandom >/srv/data/added-after-full
  head -c 1000 /dev/urandom >>/srv/data/f3
  printf 'run job=BackupData level=Incremental yes\nwait\nmessages\nlist jobs\n' | console >/job/out/incr.txt
  cat /job/out/incr.txt
  [ "$(ok_jobs)" -ge 2 ] && grep -q 'Incremental\|| I ' /job/out/incr.txt
}
check bacula-incremental-backup incremental_backup

restore_and_diff() {
  rm -rf /tmp/bacula-restores/*
  printf 'restore client=guest-fd fileset=Data where=/tmp/bacula-restores select current all done yes\nwait\nmessages\n' | console
  diff -r /srv/data /tmp/bacula-restores/srv/data
}
check bacula-restore-diff restore_and_diff

# Export: a labelled volume resting in its slot (not the one the jobs left in the drive) leaves
# through the first I/E slot (AWS's Bacula guide: mtx-changer transfer); update slots then shows
# it out of the changer.
export_volume() {
  set -- $(mtx -f "$CHANGER" status | sed -n 's/^ *Storage Element \([2-4]\):Full :VolumeTag=\([A-Z0-9]*\).*/\1 \2/p' | head -n 1)
  [ -n "${2:-}" ] || { echo "no labelled volume in slots 2-4"; return 1; }
  /etc/bacula/scripts/mtx-changer "$CHANGER" transfer "$1" "$IE_SLOT" || return 1
  echo "$2" >/job/exported
  printf 'update slots storage=shelfgate drive=0\nlist volumes pool=Default\n' | console >/job/out/after-export.txt
  cat /job/out/after-export.txt
  ! mtx -f "$CHANGER" status | grep -q "VolumeTag=$2" && grep -q "| $2 .*| 0 *| LTO-5" /job/out/after-export.txt
}
check bacula-export-to-ie-slot export_volume

finish
