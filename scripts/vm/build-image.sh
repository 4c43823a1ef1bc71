#!/bin/bash
# Builds the guest of `make test-vm` once: a Debian 12 root (systemd as PID 1, cgroup v2
# unified as Debian 12 boots by default) with the runtime's and the tests' Debian packages
# and this machine's node, as a raw ext4 image made without mounting (mkfs.ext4 -d), plus
# the guest's own kernel and initrd for qemu's -kernel/-initrd.
#
#   build-image.sh CACHE_DIR      prints the directory holding rootfs.img, vmlinuz, initrd.img
#
# The result is kept under CACHE_DIR/<key>, the key a hash of this recipe and of the node
# binary: a change to either builds a new image; an unchanged recipe reuses the old one.
# The checkout is not in the image (the guest mounts it over 9p), so code changes need no rebuild.
set -euo pipefail
cache=${1:?usage: build-image.sh CACHE_DIR}
node_bin=$(readlink -f "$(command -v node)")
key=$( { cat "$0"; sha256sum "$node_bin"; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi

MIRROR=${CRICKET_VM_MIRROR:-http://deb.debian.org/debian}
# systemd + dbus: PID 1 and the bus runc's --systemd-cgroup talks to. kmod: the kernel's
# module requests (9p, bridge, veth, nf_tables). The rest: DEB_RUNTIME and the tests'
# packages of the Makefile (no runsc: gVisor under TCG is out of scope; no prometheus:
# the metrics suites are not in the guest's set).
PKGS=systemd,systemd-sysv,dbus,kmod,linux-image-amd64,initramfs-tools,procps,e2fsprogs,\
runc,conmon,containernetworking-plugins,catatonit,iptables,util-linux,iproute2,attr,zstd,socat,python3,\
docker-registry,busybox-static,openssl,ca-certificates

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
echo "building the test VM image in $work (debootstrap from $MIRROR)" >&2
debootstrap --variant=minbase --include="$PKGS" bookworm "$root" "$MIRROR" >&2

# Boot: root given on the kernel command line (no fstab entry, so no udev is needed to
# see /dev/vda); the console on ttyS0; no network but loopback.
: > "$root/etc/fstab"
echo cricket-vm > "$root/etc/hostname"
echo "127.0.0.1 localhost cricket-vm" > "$root/etc/hosts"
passwd -R "$root" -d root >/dev/null
# Services that would only slow the boot or hold the tests' ports (the tests start their own registry).
for u in docker-registry.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
cp "$node_bin" "$root/usr/bin/node"

# The test run: the checkout's scripts/vm/guest-run.sh (so what runs changes without a
# rebuild), its output on the serial console, then poweroff whatever happened.
cat > "$root/etc/systemd/system/cricket-vm-test.service" <<'UNIT'
[Unit]
Description=Cricket test run (make test-vm)
After=local-fs.target dbus.service
Wants=dbus.service

[Service]
Type=oneshot
ExecStartPre=/bin/mkdir -p /mnt/cricket
ExecStartPre=/bin/mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose cricket /mnt/cricket
ExecStart=/bin/bash /mnt/cricket/scripts/vm/guest-run.sh
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
ExecStopPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/cricket-vm-test.service "$root/etc/systemd/system/multi-user.target.wants/cricket-vm-test.service"

cp "$(ls "$root"/boot/vmlinuz-* | head -1)" "$work/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$work/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
size_mb=$(( $(du -sm "$root" | cut -f1) + 3072 ))
mkfs.ext4 -q -F -L cricket-vm -d "$root" "$work/rootfs.img" "${size_mb}M" >&2
rm -rf "$root"
touch "$work/done"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
echo "$out"
