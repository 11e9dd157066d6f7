#!/bin/bash
# Builds the lab's base initramfs: busybox, the SAN tools with their shared
# libraries, the kernel modules the lab loads (in dependency order) and the
# guest scripts (init, san.sh). Our own Go binaries are not in it: run.sh
# appends them as a second archive on every run.
#
# Usage: mkbase.sh KROOT KVER ROOTFS OUT.cpio
#   KROOT   the kernel package extracted with dpkg-deb -x and indexed with depmod -b
#   KVER    its version (the folder name under lib/modules)
#   ROOTFS  scratch folder (emptied)
set -euo pipefail
KROOT=$1 KVER=$2 R=$3 OUT=$4
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C

rm -rf "$R"; mkdir -p "$R"
cd "$R"
mkdir -p bin sbin usr/bin usr/sbin lib64 etc/lvm etc/iscsi proc sys dev run tmp mnt host var/lib/iscsi root lab

# busybox provides the shell and the small tools; its applets run before PATH.
cp "$(command -v busybox)" bin/busybox
for a in $(bin/busybox --list); do [ -e "bin/$a" ] || ln -s busybox "bin/$a"; done

# copy_bin PATH: a dynamically linked tool and every library ldd names.
copy_bin() {
	local b=$1 l
	mkdir -p "$R$(dirname "$b")"
	cp -L "$b" "$R$b"
	ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r l; do
		[ -e "$R$l" ] && continue
		mkdir -p "$R$(dirname "$l")"
		cp -L "$l" "$R$l"
	done
}
# The SAN tools. Each must exist on the host: run.sh installs their packages.
TOOLS=(sg_persist sg_inq sg_turs sg_readcap lvm dmsetup mke2fs e2fsck fsck ip tc iscsiadm iscsid)
for t in "${TOOLS[@]}"; do
	p=$(command -v "$t") || { echo "mkbase: $t not found on the host" >&2; exit 1; }
	p=$(readlink -f "$p")
	copy_bin "$p"
	# Every tool is reachable as /usr/sbin/NAME whatever its real path.
	[ "$p" = "/usr/sbin/$t" ] || ln -sf "$p" "usr/sbin/$t"
done
# busybox's ip lacks netns; prefer iproute2's.
rm -f bin/ip bin/tc
# lvmconfig: package lvm reads lvm.conf with it; fsck.ext4: fsck (util-linux)
# runs it before a package's mount.
for t in pvcreate pvs pvremove vgcreate vgs vgchange vgremove lvcreate lvs lvchange lvremove lvmconfig; do
	ln -sf lvm "usr/sbin/$t"
done
ln -sf mke2fs usr/sbin/mkfs.ext4
ln -sf e2fsck usr/sbin/fsck.ext4
[ -e lib64/ld-linux-x86-64.so.2 ] || cp -L /lib64/ld-linux-x86-64.so.2 lib64/

# LVM without udev or lvmetad; every node's identity comes from --config.
cat >etc/lvm/lvm.conf <<'CONF'
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
	md_component_detection = 0
	multipath_component_detection = 0
	scan_lvs = 0
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	event_activation = 0
	system_id_source = "none"
}
CONF
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf etc/
[ -f /etc/iscsi/iscsid.conf ] && cp /etc/iscsi/iscsid.conf etc/iscsi/
echo "root:x:0:0:root:/root:/bin/sh" >etc/passwd
echo "root:x:0:" >etc/group

# Kernel modules: the dependency closure of what the lab uses, in load
# order, decompressed (busybox insmod reads plain .ko only). softdog is the
# watchdog of the watchdog phase: loaded at boot, armed only once opened.
# sch_ingress, cls_u32, act_gact: tc drops one initiator's packets
# (labkit.ISCSISilence). veth, bridge: the failover benchmark's node
# namespaces on one bridge (TestFailoverPR); xfrm_user, nfnetlink: the
# netlink families a netlink handle opens besides rtnetlink (a Debian host
# loads them on demand; the guest has no modprobe for the kernel to call).
MODS=(crc32c_generic crc32c_intel virtio_pci virtio_blk 9pnet_virtio 9p configfs
	target_core_mod target_core_file target_core_iblock iscsi_target_mod iscsi_tcp
	scsi_mod sd_mod sg dm_mod dm_delay ext4 softdog sch_ingress cls_u32 act_gact
	veth bridge xfrm_user nfnetlink)
: >etc/modules.order
for m in "${MODS[@]}"; do
	modprobe -d "$KROOT" -S "$KVER" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r f; do
	rel=${f#"$KROOT"}
	mkdir -p "$R$(dirname "$rel")"
	case $f in
	*.xz) rel=${rel%.xz}; xz -dc "$f" >"$R$rel" ;;
	*.zst) rel=${rel%.zst}; zstd -qdc "$f" >"$R$rel" ;;
	*) cp "$f" "$R$rel" ;;
	esac
	echo "$rel" >>etc/modules.order
done
cp "$KROOT"/lib/modules/"$KVER"/modules.builtin* "$KROOT"/lib/modules/"$KVER"/modules.order "lib/modules/$KVER/"
depmod -b "$R" "$KVER"

install -m 0755 "$HERE/init" init
install -m 0755 "$HERE/san.sh" lab/san.sh

# Uncompressed: unpacking is faster than gunzip under emulation, and the
# kernel then reads the archive run.sh appends without any padding concern.
find . | cpio -o -H newc --quiet >"$OUT"
echo "mkbase: $(wc -l <etc/modules.order) modules, $(du -h "$OUT" | cut -f1)"
