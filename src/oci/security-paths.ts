/** Paths under /proc and /sys a container must not see (bind-mounted over with /dev/null or an empty tmpfs). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

/** Paths a container may read but not write. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** kubelet sends the defaults itself; an empty list means "use ours"; privileged means none. */
export function maskedAndReadonly(privileged: boolean, masked: readonly string[], readonly: readonly string[]) {
  if (privileged) return { maskedPaths: [], readonlyPaths: [] };
  return {
    maskedPaths: masked.length > 0 ? [...masked] : [...DEFAULT_MASKED_PATHS],
    readonlyPaths: readonly.length > 0 ? [...readonly] : [...DEFAULT_READONLY_PATHS],
  };
}
