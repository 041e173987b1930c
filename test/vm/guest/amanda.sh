#!/bin/sh
# Amanda 3.5 (Debian 12) with chg-robot over the gateway's changer and a drive
# (test/vm/backup-amanda.test.ts): amlabel by barcode, amcheck, amdump, amfetchdump, compare.
. /job/env
. /job/lib.sh

check login discover_and_login mediachanger tapedrive-01
CHANGER=$(device_of mediachanger scsi_generic)
DRIVE_0=$(device_of tapedrive-01 scsi_tape)
echo "devices: changer=$CHANGER drive0=$DRIVE_0"
as_backup() { su backup -s /bin/sh -c "$*"; }

configure() {
  # No udev in the guest: give the backup user its devices as Debian's udev rules would (group tape).
  chgrp tape "$CHANGER" "$DRIVE_0" && chmod 660 "$CHANGER" "$DRIVE_0" || return 1
  mkdir -p /etc/amanda/shelfgate /var/lib/amanda/shelfgate /var/lib/amanda/holding || return 1
  sed -e "s|CHANGER_DEVICE|$CHANGER|" -e "s|DRIVE_0|$DRIVE_0|" /job/amanda/amanda.conf >/etc/amanda/shelfgate/amanda.conf || return 1
  cp /job/amanda/disklist /etc/amanda/shelfgate/disklist || return 1
  touch /etc/amanda/shelfgate/tapelist
  chown -R backup:backup /etc/amanda/shelfgate /var/lib/amanda || return 1
  make_tree /srv/data 31 50
  chmod -R a+rX /srv/data
}
check amanda-config configure

label_by_barcode() {
  as_backup amtape shelfgate inventory || return 1
  for slot in 1 2 3; do as_backup amlabel shelfgate slot "$slot" || return 1; done
  as_backup amtape shelfgate inventory >/job/out/inventory.txt 2>&1
  cat /job/out/inventory.txt
  [ "$(grep -c 'label' /job/out/inventory.txt)" -ge 3 ]
}
check amanda-amlabel-barcodes label_by_barcode

check amanda-amcheck as_backup amcheck shelfgate

dump() {
  as_backup amdump shelfgate
  status=$?
  echo "amdump exit $status"
  ls -l /var/lib/amanda/shelfgate
  tail -n 40 /var/lib/amanda/shelfgate/amdump* /var/lib/amanda/shelfgate/log.* 2>/dev/null
  return $status
}
check amanda-amdump dump

fetch_and_compare() {
  rm -rf /tmp/fetched && mkdir /tmp/fetched && cd /tmp/fetched || return 1
  as_backup "amfetchdump -p shelfgate localhost /srv/data >/tmp/fetched.tar" || return 1
  tar -xf /tmp/fetched.tar -C /tmp/fetched || return 1
  cd / && diff -r /srv/data /tmp/fetched
}
check amanda-amfetchdump-compare fetch_and_compare

finish
