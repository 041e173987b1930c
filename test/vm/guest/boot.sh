#!/bin/sh
# Runs in the guest once /sbin/shelfgate-init (init.sh) mounted the host's job folder on /job:
# network (QEMU user-mode networking: the guest is 10.0.2.15, the host 10.0.2.2), the SCSI
# upper-level drivers and iscsid, then the job's run.sh. Results go to the serial console as
# lines "SG-RESULT ok|fail NAME [detail]" (lib.sh), which the host's test parses.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root
echo "127.0.0.1 localhost shelfgate-guest" >/etc/hosts
hostname shelfgate-guest
dmesg -n 1 # kernel messages (ch's element scan) stay out of the results on the console
for module in virtio_net iscsi_tcp sd_mod st sg ch ext4; do modprobe "$module"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /etc/iscsi /run/lock
echo "InitiatorName=iqn.2026-11.dev.shelfgate.test:guest" >/etc/iscsi/initiatorname.iscsi
iscsid
echo "SG-BOOTED $(cut -d' ' -f1 /proc/uptime)"
cd /job && /bin/sh /job/run.sh
