#!/bin/bash
# Runs inside the guest of `make test-vm` (from its systemd unit, output on the serial
# console): says what the guest is, runs the chosen integration suites once per cgroup
# driver over a writable copy of the checkout, and leaves each driver's exit code and a
# TAP log in the host's results share. The unit powers the guest off afterwards.
set -u
echo "cricket-vm: kernel $(uname -r), PID 1 $(cat /proc/1/comm), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup)," \
  "controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null), $(nproc) CPUs, $(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 )) MiB"
mkdir -p /out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /out
# shellcheck source=/dev/null
. /out/env   # TEST_FILES, DRIVERS (written by scripts/vm/test-vm.sh)

# The checkout is shared read-only; the tests and npm's runtime may write beside it, so
# they run on an overlay of it (upper layer on the guest's own disk, thrown away).
mkdir -p /var/tmp/ovl/upper /var/tmp/ovl/work /cricket
if ! mount -t overlay overlay -o lowerdir=/mnt/cricket,upperdir=/var/tmp/ovl/upper,workdir=/var/tmp/ovl/work /cricket; then
  echo "cricket-vm: overlay over the 9p share failed; copying the checkout"
  cp -a /mnt/cricket/. /cricket/
fi
cd /cricket
ip link set lo up
# VM_BEFORE (test-vm.sh): a command run in the checkout before the suites, e.g. to look around.
if [ -n "${BEFORE:-}" ]; then echo "cricket-vm: before: $BEFORE"; bash -c "$BEFORE"; fi
rc_all=0
for driver in $DRIVERS; do
  echo "cricket-vm: === cgroup_driver = \"$driver\": node --test $TEST_FILES"
  start=$(date +%s)
  CRICKET_TEST_CGROUP_DRIVER=$driver CRICKET_TEST_TIMEOUT_SCALE=4 CRICKET_TEST_DAEMON_LOGS=/out/daemon-logs-$driver node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="/out/$driver.tap" $TEST_FILES
  rc=$?
  echo "$rc" > "/out/$driver.rc"
  echo "cricket-vm: === cgroup_driver = \"$driver\": exit $rc after $(( $(date +%s) - start )) s"
  # Leftovers of the run: cgroups and units a test did not remove.
  find /sys/fs/cgroup -type d \( -name 'cricket*' -o -name 'kubepods*' \) ! -name 'cricket-vm-test.service' 2>/dev/null | head -20 | sed 's/^/cricket-vm: left behind: /'
  [ "$rc" = 0 ] || rc_all=$rc
done
echo "$rc_all" > /out/rc
sync
