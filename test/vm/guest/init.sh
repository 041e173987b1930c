#!/bin/sh
# PID 1 of the test guest (installed as /sbin/shelfgate-init by build-image.sh). Kept to what
# cannot change without rebuilding the image: mount the kernel file systems and the 9p share
# "job" that the host prepared, then hand over to its boot.sh (test/vm/guest/boot.sh). The
# guest powers off when that returns, whatever happens.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /job
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
modprobe 9pnet_virtio
modprobe 9p
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /job; then
  /bin/sh /job/boot.sh
  echo "shelfgate-guest: boot.sh exited $?"
else
  echo "shelfgate-guest: cannot mount the 9p share 'job'"
fi
sync
echo o >/proc/sysrq-trigger
sleep 60
