import { parseArgs } from 'node:util';
import { renderDefaults } from '../config/defaults-doc.js';
import { CriCallError, CriClient, DEFAULT_ENDPOINT } from '../client/cri-client.js';

// The cricket CLI: a small CRI client for operators. The endpoint comes from
// --endpoint, else CONTAINER_RUNTIME_ENDPOINT (as crictl reads it), else the default.

const USAGE = `usage: cricket [--endpoint unix:///path] [--timeout SECONDS] <command>

commands:
  version              runtime name and versions (CRI Version)
  info                 runtime status, conditions and config (CRI Status, verbose)
  config --defaults    print the full default cricketd configuration with comments`;

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      endpoint: { type: 'string', short: 'r' },
      timeout: { type: 'string', short: 't' },
      defaults: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  if (command === 'config') {
    if (!values.defaults) throw new Error('config: only --defaults is supported');
    process.stdout.write(renderDefaults());
    return 0;
  }
  const endpoint = values.endpoint ?? process.env['CONTAINER_RUNTIME_ENDPOINT'] ?? DEFAULT_ENDPOINT;
  const timeoutMs = Number(values.timeout ?? '10') * 1000;
  const client = new CriClient(endpoint);
  try {
    switch (command) {
      case 'version': {
        const v = await client.call('Version', {}, { timeoutMs });
        process.stdout.write(
          `Version:  ${v.version}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}\n`,
        );
        return 0;
      }
      case 'info': {
        const s = await client.call('Status', { verbose: true }, { timeoutMs });
        const info: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(s.info)) {
          try {
            info[k] = JSON.parse(v);
          } catch {
            info[k] = v;
          }
        }
        const out = { status: s.status, runtimeHandlers: s.runtimeHandlers, features: s.features, ...info };
        process.stdout.write(`${JSON.stringify(out, bigintJson, 2)}\n`);
        return 0;
      }
      default:
        throw new Error(`unknown command '${command}'`);
    }
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = err instanceof CriCallError ? err.message : (err as Error).message;
    process.stderr.write(`cricket: ${msg}\n`);
    process.exit(1);
  },
);
