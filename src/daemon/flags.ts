import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_DIR, DEFAULT_CONFIG_FILE } from '../config/load.js';

export interface DaemonFlags {
  configFile: string;
  configFileGiven: boolean;
  configDir: string;
  overrides: Record<string, Record<string, unknown>>;
  help: boolean;
  version: boolean;
}

export const DAEMON_USAGE = `usage: cricketd [flags]

  --config FILE           main config file (default ${DEFAULT_CONFIG_FILE})
  --config-dir DIR        drop-in directory merged over it (default ${DEFAULT_CONFIG_DIR})
  --listen PATH           unix socket to serve the CRI on (default /run/cricket/cricket.sock)
  --root DIR              durable state (default /var/lib/cricket)
  --run-root DIR          runtime state, gone at reboot (default /run/cricket)
  --log-level LEVEL       trace, debug, info, warn, error
  --cni-conf-dir DIR      CNI network configs (default /etc/cni/net.d)
  --cni-bin-dir DIR       CNI plugin dir; repeat for several (default /usr/lib/cni, /opt/cni/bin)
  --registries-conf FILE  containers-registries.conf(5) file
  --stream-address ADDR   streaming server address (default 127.0.0.1)
  --stream-port PORT      streaming server port (default 0: any free port)
  --metrics-address ADDR  serve Prometheus metrics on host:port (default: off)
  --version               print the version and exit
  -h, --help              this text`;

/** Parses argv strictly: an unknown flag or a missing value throws with the flag named. */
export function parseDaemonFlags(argv: string[]): DaemonFlags {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'config-dir': { type: 'string' },
      listen: { type: 'string' },
      root: { type: 'string' },
      'run-root': { type: 'string' },
      'log-level': { type: 'string' },
      'cni-conf-dir': { type: 'string' },
      'cni-bin-dir': { type: 'string', multiple: true },
      'registries-conf': { type: 'string' },
      'stream-address': { type: 'string' },
      'stream-port': { type: 'string' },
      'metrics-address': { type: 'string' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals.length > 0) throw new Error(`unexpected argument '${positionals[0]}'`);
  const daemon: Record<string, unknown> = {};
  const network: Record<string, unknown> = {};
  const images: Record<string, unknown> = {};
  const streaming: Record<string, unknown> = {};
  const metrics: Record<string, unknown> = { address: values['metrics-address'] };
  const path = (flag: string, v: string | undefined) => {
    if (v !== undefined && !v.startsWith('/')) throw new Error(`--${flag} must be an absolute path, got '${v}'`);
    return v;
  };
  daemon['listen'] = path('listen', values.listen?.replace(/^unix:\/\//, ''));
  daemon['root'] = path('root', values.root);
  daemon['run_root'] = path('run-root', values['run-root']);
  daemon['log_level'] = values['log-level'];
  network['cni_conf_dir'] = path('cni-conf-dir', values['cni-conf-dir']);
  network['cni_bin_dirs'] = values['cni-bin-dir']?.map((d) => path('cni-bin-dir', d));
  images['registries_conf'] = path('registries-conf', values['registries-conf']);
  streaming['address'] = values['stream-address'];
  if (values['stream-port'] !== undefined) {
    const p = values['stream-port'];
    if (!/^\d+$/.test(p) || Number(p) > 65535) throw new Error(`--stream-port must be a port number 0-65535, got '${p}'`);
    streaming['port'] = Number(p);
  }
  return {
    configFile: values.config ?? DEFAULT_CONFIG_FILE,
    configFileGiven: values.config !== undefined,
    configDir: values['config-dir'] ?? DEFAULT_CONFIG_DIR,
    overrides: { daemon, network, images, streaming, metrics },
    help: values.help ?? false,
    version: values.version ?? false,
  };
}
