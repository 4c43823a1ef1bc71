import { UsageError } from '../exit-codes.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseFormat(v: string | undefined, allowed: readonly OutputFormat[] = ['table', 'json', 'yaml']): OutputFormat {
  const f = (v ?? allowed[0]!) as OutputFormat;
  if (!allowed.includes(f)) throw new UsageError(`-o must be one of ${allowed.join(', ')}, not "${v}"`);
  return f;
}

/**
 * JSON or YAML of plain data (the protos' own toJSON form: enum names, int64 as
 * strings). The YAML library is loaded only when YAML is asked for: every module a
 * command imports up front is paid for by every run of the CLI.
 */
export async function renderData(data: unknown, format: 'json' | 'yaml'): Promise<string> {
  const plain = JSON.parse(JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown;
  if (format === 'json') return `${JSON.stringify(plain, null, 2)}\n`;
  const { stringify } = await import('yaml');
  return stringify(plain);
}
