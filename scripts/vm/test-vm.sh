#!/bin/bash
# `make test-vm`: the integration suites on cgroup v2 with systemd as PID 1, in a Debian 12
# guest under qemu (TCG: KVM guests hang on this kind of host), once per cgroup driver.
#
#   CRICKET_VM_CACHE   where the built image is kept (default /var/cache/cricket-vm)
#   VM_TEST_FILES      the suites (default: the ones that exercise cgroups, see below)
#   VM_DRIVERS         default "cgroupfs systemd"
#   VM_BEFORE          a shell command the guest runs in the checkout before the suites
#   VM_MEMORY_MB, VM_CPUS, VM_TIMEOUT_MINUTES (4096, 2, 45)
#
# The console streams to this terminal; the exit code is the suites' (0 only when every
# driver's run passed); TAP logs are left in $out (printed at the end).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CRICKET_VM_CACHE:-/var/cache/cricket-vm}
img=$("$repo/scripts/vm/build-image.sh" "$cache")
out=$(mktemp -d "${TMPDIR:-/tmp}/cricket-vm-out.XXXXXX")
files=${VM_TEST_FILES:-$(printf "dist/test/integration/%s.test.js " pods-lifecycle containers-lifecycle containers-input containers-security host-cgroups-race)}
printf 'TEST_FILES=%q\nDRIVERS=%q\nBEFORE=%q\n' "$files" "${VM_DRIVERS-cgroupfs systemd}" "${VM_BEFORE:-}" > "$out/env"
echo "test-vm: image $img; results in $out"
start=$(date +%s)
# -nic none: no network but the guest's loopback and the namespaces the tests make.
# snapshot=on: the image stays as built; the run's writes go to a temporary file.
timeout --foreground "$(( ${VM_TIMEOUT_MINUTES:-45} * 60 ))" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "${VM_CPUS:-2}" -m "${VM_MEMORY_MB:-4096}" \
  -nographic -no-reboot -nic none \
  -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet panic=-1" \
  -drive "file=$img/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$repo,mount_tag=cricket,security_model=none,readonly=on" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none" </dev/null || echo "test-vm: qemu exited with $?"
echo "test-vm: guest ran $(( $(date +%s) - start )) s"
for f in "$out"/*.rc; do [ -e "$f" ] && echo "test-vm: $(basename "$f" .rc): exit $(cat "$f")"; done
if [ ! -f "$out/rc" ]; then echo "test-vm: the guest did not finish its run (no $out/rc)"; exit 1; fi
exit "$(cat "$out/rc")"
