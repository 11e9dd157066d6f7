#!/bin/sh
# The lab's SAN, inside the guest: every virtio disk whose serial is
# lab-NAME becomes an LIO fileio backstore NAME (over a linear dm map
# san-NAME), exported as one LUN of an iSCSI target on 127.0.0.1:3260.
# Each simulated node (node1..nodeN) logs in with its own initiator name,
# so each reaches every LUN through its own
# I_T nexus, as separate hosts on a SAN do. Which /dev/sdX is whose path is
# read back from sysfs by labkit (labctl paths).
#
# LUN numbers follow the order of LUNS. Variables: nodes=N (default 3).
set -e
T=/sys/kernel/config/target
IQN=iqn.2026-01.org.mtcluster.lab:san
LUNS="quorum data1 data2"
NODES=${nodes:-3}
up() { cut -d' ' -f1 /proc/uptime; }

/usr/sbin/ip link set lo up

TPG=$T/iscsi/$IQN/tpgt_1
mkdir -p $TPG
i=0
for name in $LUNS; do
	dev=
	for d in /sys/block/vd*; do
		[ "$(cat $d/serial 2>/dev/null)" = "lab-$name" ] && dev=/dev/${d##*/}
	done
	[ -n "$dev" ] || { echo "san: no virtio disk with serial lab-$name" >&2; exit 1; }
	# The storage behind the target: a linear dm map san-NAME over the
	# disk, which a test may slow down (dm-delay) to keep commands in
	# flight inside the target.
	dmsetup create san-$name --table "0 $(cat /sys/block/${dev#/dev/}/size) linear $dev 0" >/dev/null
	dmsetup mknodes san-$name
	BS=$T/core/fileio_$i/$name
	mkdir -p $BS
	echo "fd_dev_name=/dev/mapper/san-$name" >$BS/control
	# A distinct, stable unit serial per LUN (VPD page 0x83).
	printf '6001405a-b0c1-4d2e-8f00-5a4e1ab0000%d\n' $i >$BS/wwn/vpd_unit_serial
	echo 1 >$BS/enable
	mkdir -p $TPG/lun/lun_$i
	ln -s $BS $TPG/lun/lun_$i/$name
	i=$((i + 1))
done
mkdir $TPG/np/127.0.0.1:3260
# Any initiator may log in and sees every LUN, read-write, without CHAP.
echo 1 >$TPG/attrib/generate_node_acls
echo 1 >$TPG/attrib/cache_dynamic_acls
echo 0 >$TPG/attrib/demo_mode_write_protect
echo 0 >$TPG/attrib/authentication
echo 1 >$TPG/enable
# LIO records PR state here on every PR OUT; without it PR OUT says NOT READY.
mkdir -p /var/target/pr /var/target/alua

mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-01.org.mtcluster.lab:default" >/etc/iscsi/initiatorname.iscsi
iscsid
ifaces=
for n in $(seq 1 $NODES); do
	iscsiadm -m iface -I node$n -o new >/dev/null
	iscsiadm -m iface -I node$n -o update -n iface.initiatorname -v iqn.2026-01.org.mtcluster.lab:node$n >/dev/null
	ifaces="$ifaces -I node$n"
done
# iscsid may need a moment before it answers.
for try in 1 2 3 4 5 6 7 8 9 10; do
	iscsiadm -m discovery -t st -p 127.0.0.1 $ifaces >/dev/null 2>&1 && break
	sleep 0.5
done
for n in $(seq 1 $NODES); do
	iscsiadm -m node -T $IQN -p 127.0.0.1 -I node$n --login >/dev/null
done
want=$((NODES * i))
for try in $(seq 1 100); do
	[ "$(ls /sys/block | grep -c '^sd')" -ge $want ] && break
	sleep 0.1
done
have=$(ls /sys/block | grep -c '^sd')
echo "LAB: SAN: $i LUNs x $NODES nodes over iSCSI, $have of $want paths (uptime $(up)s)"
[ "$have" -ge $want ]
