import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../test/helpers/daemon.js';
import { makeTestNet } from '../../test/helpers/pod-net.js';
import { imagesConfigToml } from '../../test/helpers/registry.js';
import { pidsWhere } from './procfs.js';
import { releaseHost, removeAllPods, type Runtime } from './runtime.js';

/**
 * cricketd as bench/*.ts start it (test/helpers/daemon.ts): private socket, root, run
 * root and config, on its own bridge and subnet, images from the loopback registry.
 */
export async function startCricket(base: string, registryHost: string, cgroupRoot: string): Promise<Runtime> {
  const dir = join(base, 'cricket');
  const ddir = join(dir, 'daemon');
  mkdirSync(ddir, { recursive: true });
  const net = makeTestNet(dir);
  const logRoot = join(dir, 'logs');
  mkdirSync(logRoot);
  let d;
  try {
    d = await startDaemon({
      dir: ddir,
      args: ['--cni-conf-dir', net.confDir],
      configToml: `${imagesConfigToml(dir, registryHost)}\n[logs]\nallowed_roots = [${JSON.stringify(logRoot)}]\n`,
    });
  } catch (err) {
    net.destroy();
    throw err;
  }
  const daemon = d;
  const pid = Number(readFileSync(join(daemon.runRoot, 'cricketd.pid'), 'utf8'));
  const conmonArgv = (argv: string[]) => argv[0] === '/usr/bin/conmon' || argv[0] === 'conmon';
  return {
    name: 'Cricket',
    client: daemon.client,
    net,
    logRoot,
    cgroupRoot,
    helperName: 'conmon',
    daemonPid: () => pid,
    helperPids: () => pidsWhere((argv) => conmonArgv(argv) && argv.some((a) => a.includes(daemon.runRoot))),
    async destroy() {
      const left: string[] = [];
      await removeAllPods(daemon.client).catch((err: unknown) => left.push(`removing pods: ${String(err)}`));
      daemon.client.close();
      await daemon.stop();
      const conmons = pidsWhere((argv) => conmonArgv(argv) && argv.some((a) => a.includes(daemon.runRoot)));
      if (conmons.length > 0) {
        left.push(`${conmons.length} conmon still running (killed)`);
        for (const p of conmons) process.kill(p, 'SIGKILL');
      }
      left.push(...releaseHost(net, cgroupRoot, dir));
      return left.map((s) => `Cricket: ${s}`);
    },
  };
}
