// Human forms of what the CRI reports: ages, sizes, short ids, enum names.

/** "3 minutes ago", as crictl prints CREATED, from CRI nanoseconds. */
export function ago(ns: bigint, now = Date.now()): string {
  if (ns === 0n) return '';
  const s = Math.max(0, Math.floor((now - Number(ns / 1_000_000n)) / 1000));
  return `${duration(s)} ago`;
}

/** kubectl's AGE column: 5s, 3m, 2h, 4d. */
export function age(ns: bigint, now = Date.now()): string {
  if (ns === 0n) return '';
  const s = Math.max(0, Math.floor((now - Number(ns / 1_000_000n)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function duration(s: number): string {
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? '' : 's'}`;
  if (s < 60) return s < 1 ? 'Less than a second' : unit(s, 'second');
  if (s < 3600) return unit(Math.floor(s / 60), 'minute');
  if (s < 86400) return unit(Math.floor(s / 3600), 'hour');
  return unit(Math.floor(s / 86400), 'day');
}

/** 1000-based sizes as crictl and docker print them: 4.2MB. */
export function bytes(n: number | bigint): string {
  let v = Number(n);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${units[i]}`;
}

/** Ids shown in tables: 13 hex digits, as crictl does, unless --no-trunc. */
export function shortId(id: string, noTrunc = false): string {
  const hex = id.replace(/^sha256:/, '');
  return noTrunc ? id : hex.slice(0, 13);
}

/** CONTAINER_RUNNING → Running; SANDBOX_NOTREADY → NotReady. */
export function stateName(enumName: string): string {
  const tail = enumName.replace(/^(CONTAINER|SANDBOX)_/, '');
  if (tail === 'NOTREADY') return 'NotReady';
  return tail.charAt(0) + tail.slice(1).toLowerCase();
}
