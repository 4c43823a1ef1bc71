import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { parse as parseYaml } from 'yaml';
import { setUpCliEnv, type CliEnv } from './cli-env.js';

// The `cricket` CLI driven as a person drives it, against a real cricketd (runc,
// conmon, CNI, a loopback registry): exit codes, tables, -o json|yaml, names and id
// prefixes, logs, exec (also in a terminal), port-forward, run, removal.

const ok = (r: { code: number | null; stdout: string; stderr: string }) => assert.equal(r.code, 0, `exit ${r.code}: ${r.stdout}${r.stderr}`);

test('cricket CLI against a real daemon', { timeout: 300_000 }, async (t) => {
  const env: CliEnv = await setUpCliEnv();
  t.after(() => env.cleanup());
  const img = env.image.ref;
  const logDir = ['--log-dir', env.logs];

  await t.test('usage errors exit 2, help exits 0, every command has --help', async () => {
    assert.equal((await env.cli(['nope'])).code, 2);
    assert.equal((await env.cli(['ps', '--bogus'])).code, 2);
    assert.equal((await env.cli(['ps', '-o', 'xml'])).code, 2);
    const help = await env.cli(['--help']);
    ok(help);
    for (const c of ['pods', 'ps', 'images', 'pull', 'rmi', 'inspect', 'inspectp', 'inspecti', 'logs', 'exec', 'attach', 'port-forward', 'stats', 'top', 'stop', 'stopp', 'rm', 'rmp', 'prune', 'run', 'play', 'get', 'completion']) {
      assert.match(help.stdout, new RegExp(`\\n  ${c}[ |]`), `${c} in the help`);
      const r = await env.cli([c, '--help']);
      ok(r);
      assert.match(r.stdout, new RegExp(`^Usage: cricket ${c}`));
    }
  });

  await t.test('pull (not a terminal: plain progress lines), images, inspecti', async () => {
    const r = await env.cli(['pull', img]);
    ok(r);
    assert.equal(r.stdout, `Image is up to date for ${env.image.configDigest}\n`);
    assert.match(r.stderr, /100%.*1\/1 layers\s+done/);
    assert.doesNotMatch(r.stderr, /\x1b\[/, 'no terminal codes in a pipe');
    const table = await env.cli(['images']);
    ok(table);
    assert.match(table.stdout, /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE\n/);
    assert.match(table.stdout, new RegExp(`${env.reg.host}/cli/busybox\\s+v1\\s+${env.image.configDigest.slice(7, 20)}`));
    const json = JSON.parse((await env.cli(['images', '-o', 'json'])).stdout) as { images: { id: string }[] };
    assert.ok(json.images.some((i) => i.id === env.image.configDigest));
    assert.equal((await env.cli(['images', '-q'])).stdout.trim(), env.image.configDigest);
    // An id prefix, without sha256:, names the image.
    const inspected = JSON.parse((await env.cli(['inspecti', env.image.configDigest.slice(7, 15)])).stdout) as { status: { id: string } };
    assert.equal(inspected.status.id, env.image.configDigest);
    assert.equal((await env.cli(['inspecti', 'no-such-image:1'])).code, 2);
  });

  let webId = '';
  await t.test('run -d, ps, pods, inspect by name and by id prefix', async () => {
    const r = await env.cli(['run', '-d', '--name', 'web', ...logDir, '-e', 'GREETING=hello', '-p', `${20000 + Math.floor(Math.random() * 20000)}:9000`, img, 'sh', '-c', 'echo $GREETING; echo oops >&2; nc -ll -p 9000 -e /bin/cat']);
    ok(r);
    webId = r.stdout.trim();
    assert.match(webId, /^[0-9a-f]{64}$/);
    const ps = await env.cli(['ps']);
    ok(ps);
    assert.match(ps.stdout, /^CONTAINER\s+IMAGE\s+CREATED\s+STATE\s+NAME\s+ATTEMPT\s+POD ID\s+POD\n/);
    assert.match(ps.stdout, new RegExp(`${webId.slice(0, 13)}\\s.*Running\\s+web\\s+0\\s+[0-9a-f]{13}\\s+web`));
    const yaml = parseYaml((await env.cli(['ps', '-o', 'yaml'])).stdout) as { containers: { id: string; state: string }[] };
    assert.deepEqual(
      yaml.containers.map((c) => [c.id, c.state]),
      [[webId, 'CONTAINER_RUNNING']],
    );
    const pods = await env.cli(['pods', '--name', 'web']);
    assert.match(pods.stdout, /Ready\s+web\s+default\s+0/);
    for (const ref of ['web', webId.slice(0, 6)]) {
      const st = JSON.parse((await env.cli(['inspect', ref])).stdout) as { status: { id: string; state: string } };
      assert.equal(st.status.id, webId);
      assert.equal(st.status.state, 'CONTAINER_RUNNING');
    }
    const podSt = JSON.parse((await env.cli(['inspectp', 'default/web'])).stdout) as { status: { state: string; metadata: { name: string } } };
    assert.equal(podSt.status.metadata.name, 'web');
    assert.equal((await env.cli(['inspect', 'nobody'])).code, 2);
  });

  await t.test('a table fits the terminal it is printed on', async () => {
    const r = await env.inTerminal(['ps'], 60);
    assert.equal(r.code, 0, r.stdout);
    for (const line of r.stdout.split(/\r?\n/).filter((l) => l.trim() !== '')) assert.ok([...line].length <= 60, `"${line}" is wider than 60`);
    assert.match(r.stdout, /…/);
  });

  await t.test('logs: both streams, --tail, --timestamps, --since', async () => {
    // The container's first two lines are written before nc listens: wait on the log, not on time.
    for (let i = 0; ; i++) {
      const r = await env.cli(['logs', 'web']);
      if (r.stdout.includes('hello') && r.stderr.includes('oops')) break;
      assert.ok(i < 100, `no log lines: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const all = await env.cli(['logs', 'web']);
    assert.equal(all.stdout, 'hello\n');
    assert.equal(all.stderr, 'oops\n');
    const tail = await env.cli(['logs', '--tail', '1', 'web']);
    assert.equal(tail.stdout + tail.stderr, 'oops\n');
    const ts = await env.cli(['logs', '--timestamps', 'web']);
    assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) hello\n$/);
    const future = await env.cli(['logs', '--since', new Date(Date.now() + 3_600_000).toISOString(), 'web']);
    assert.equal(future.stdout + future.stderr, '');
    assert.equal((await env.cli(['logs', '--since', 'yesterday-ish', 'web'])).code, 2);
  });

  await t.test('exec: output, stdin, exit codes, and a terminal with -it', async () => {
    const r = await env.cli(['exec', 'web', 'sh', '-c', 'echo out; echo err >&2']);
    ok(r);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal((await env.cli(['exec', 'web', 'sh', '-c', 'exit 3'])).code, 3);
    const cat = await env.cli(['exec', '-i', 'web', 'cat'], { stdin: 'piped in\n' });
    ok(cat);
    assert.equal(cat.stdout, 'piped in\n');
    const sync = await env.cli(['exec', '-s', 'web', 'echo', 'synced']);
    assert.equal(sync.stdout, 'synced\n');
    // The terminal size travels on its own stream and may land just after the command
    // starts (as with kubectl): the command waits for it rather than racing it.
    const tty = await env.inTerminal(['exec', '-it', 'web', 'sh', '-c', 'tty; until [ "$(stty size)" = "30 77" ]; do sleep 0.1; done; stty size; exit 4'], 77);
    assert.equal(tty.code, 4, tty.stdout);
    assert.match(tty.stdout, /\/dev\/pts\/\d+\r*\n/);
    assert.match(tty.stdout, /30 77/);
  });

  await t.test('port-forward carries a connection into the pod', async () => {
    const child = env.spawnCli(['port-forward', 'web', ':9000']);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 9000/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`port-forward exited ${code}`)));
      });
      for (const word of ['ping', 'again']) {
        const echoed = await new Promise<string>((resolve, reject) => {
          const sock = net.connect(port, '127.0.0.1', () => sock.write(word));
          sock.once('data', (b) => {
            resolve(b.toString());
            sock.destroy();
          });
          sock.once('error', reject);
        });
        assert.equal(echoed, word);
      }
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
  });

  await t.test('stats prints a row per running container', async () => {
    const r = await env.cli(['stats', '-s', '0.2']);
    ok(r);
    assert.match(r.stdout, /^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES\n/);
    assert.match(r.stdout, new RegExp(`${webId.slice(0, 13)}\\s+web\\s+\\d+\\.\\d\\d\\s+\\S+B`));
  });

  await t.test('top redraws a live table on a terminal until Ctrl-C', async () => {
    const { spawn } = await import('node:child_process');
    const { CRICKET } = await import('../helpers/daemon.js');
    const child = spawn('script', ['-qefc', `stty cols 100; exec ${CRICKET} -r unix://${env.d.socket} top -s 0.2`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if ((out.match(/\x1b\[H\x1b\[2J/g) ?? []).length >= 2 && new RegExp(`${webId.slice(0, 13)}\\s+web`).test(out)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`top ended (${code}): ${out}`)));
    });
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    assert.match(out, /CONTAINER\s+NAME\s+CPU %\s+MEM/);
  });

  await t.test('attach -i: stdin to a running container, its output back', async () => {
    const r = await env.cli(['run', '-d', '-i', '--name', 'catter', ...logDir, '--net', 'host', img, 'cat']);
    assert.equal(r.code, 0, r.stderr);
    const a = await env.cli(['attach', '-i', 'catter'], { stdin: 'through attach\n' });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, 'through attach\n');
    assert.equal((await env.cli(['rmp', '-f', 'catter'])).code, 0);
  });

  await t.test('run --rm: output, exit code, and nothing left', async () => {
    const before = (await env.d.client.call('ListPodSandbox', {})).items.length;
    const r = await env.cli(['run', '--rm', ...logDir, '--net', 'host', img, 'sh', '-c', 'echo from-run; echo err-run >&2; exit 7']);
    assert.equal(r.code, 7, r.stdout + r.stderr);
    assert.equal(r.stdout, 'from-run\n');
    assert.equal(r.stderr, 'err-run\n');
    assert.equal((await env.d.client.call('ListPodSandbox', {})).items.length, before);
    const it = await env.inTerminal(['run', '-it', '--rm', ...logDir, '--net', 'host', img, 'sh', '-c', 'tty; exit 0']);
    assert.equal(it.code, 0, it.stdout);
    assert.match(it.stdout, /\/dev\/pts\/\d+/);
    assert.equal((await env.d.client.call('ListPodSandbox', {})).items.length, before);
  });

  await t.test('stop, rm refusing a running container, rmp, prune', async () => {
    assert.equal((await env.cli(['rm', 'web'])).code, 2);
    ok(await env.cli(['stop', '-t', '0', 'web']));
    assert.match((await env.cli(['ps', '-a'])).stdout, /Exited\s+web/);
    ok(await env.cli(['rm', 'web']));
    assert.equal((await env.cli(['ps', '-a', '-q'])).stdout, '');
    assert.equal((await env.cli(['pods', '-l', '-q'])).stdout.trim().length, 64, 'pods -l: the newest only');
    assert.equal((await env.cli(['rmp', 'web'])).code, 2, 'a ready pod needs -f');
    ok(await env.cli(['rmp', '-f', 'web']));
    assert.equal((await env.cli(['pods', '-q'])).stdout, '');
    const pruned = await env.cli(['prune']);
    ok(pruned);
    assert.equal(pruned.stdout, `Deleted: ${env.image.configDigest}\n`);
    assert.equal((await env.cli(['images', '-q'])).stdout, '');
  });

  await t.test('bash completion knows the commands and their flags', async () => {
    const r = await env.cli(['completion', 'bash']);
    ok(r);
    assert.match(r.stdout, /complete -F _cricket cricket/);
    assert.match(r.stdout, /ps\) words="-a --all/);
  });
});
