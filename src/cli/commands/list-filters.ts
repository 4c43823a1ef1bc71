import { UsageError } from '../exit-codes.js';

/** Repeatable --label key=value into a map (crictl's form). */
/** `--last N`: a whole count; anything else is a usage error. */
export function parseLast(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--last takes a count, not "${v}"`);
  return n;
}

export function collectLabel(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new UsageError(`--label takes key=value, not "${v}"`);
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

export function matchesLabels(have: Record<string, string>, want: Record<string, string> | undefined): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => have[k] === v);
}

/** A state flag compared with an enum name, case-insensitively and without its prefix. */
export function stateMatches(enumName: string, want: string | undefined): boolean {
  if (want === undefined) return true;
  const tail = enumName.replace(/^(CONTAINER|SANDBOX)_/, '').toLowerCase();
  return tail === want.toLowerCase().replace(/[-_]/g, '');
}
