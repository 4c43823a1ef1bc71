import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setUpCliEnv, type CliEnv } from './cli-env.js';

// `cricket play`: a manifest with an init container, an emptyDir shared by two
// containers, fieldRef env and a container that fails twice under OnFailure runs,
// restarts with kubelet's back-off, survives a daemon restart, converges when played
// again, and `play --down` removes all of it.

interface Row {
  name: string;
  ready: string;
  status: string;
  restarts: number;
  sandboxId: string;
}

const manifest = (image: string) => `apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: { app: demo }
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  volumes:
    - name: shared
      emptyDir: {}
    - name: cfg
      configMap: { name: demo-config }
    - name: sec
      secret: { secretName: demo-secret, items: [{ key: token, path: nested/token }] }
    - name: hooks
      hostPath: { path: HOOKS_DIR }
  initContainers:
    - name: init
      image: ${image}
      command: [sh, -c, 'echo from-init > /shared/init.txt']
      volumeMounts: [{ name: shared, mountPath: /shared }]
  containers:
    - name: writer
      image: ${image}
      command: [sh, -c, 'echo "$POD_NAME $POD_NS" > /shared/who.txt; exec sleep 1000']
      env:
        - name: POD_NAME
          valueFrom: { fieldRef: { fieldPath: metadata.name } }
        - name: POD_NS
          valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
        - name: TOKEN
          valueFrom: { secretKeyRef: { name: demo-secret, key: token } }
      volumeMounts: [{ name: shared, mountPath: /shared }, { name: cfg, mountPath: /etc/cfg }, { name: sec, mountPath: /etc/sec }, { name: hooks, mountPath: /hooks }]
      lifecycle:
        postStart: { exec: { command: [sh, -c, 'echo started > /hooks/post'] } }
        preStop: { exec: { command: [sh, -c, 'echo stopping > /hooks/pre'] } }
    - name: flaky
      image: ${image}
      command: [sh, -c, 'n=$(cat /shared/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /shared/count; echo run-$n; [ $n -ge 3 ] && exec sleep 1000; exit 1']
      volumeMounts: [{ name: shared, mountPath: /shared }]
      terminationMessagePath: /dev/termination-log
---
apiVersion: v1
kind: ConfigMap
metadata: { name: demo-config }
data: { greeting: hello-config }
---
apiVersion: v1
kind: Secret
metadata: { name: demo-secret }
stringData: { token: s3cret }
`;

test('cricket play', { timeout: 240_000 }, async (t) => {
  const env: CliEnv = await setUpCliEnv({
    extraToml: (dir, logs) => {
      mkdirSync(join(dir, 'manifests'));
      return `[pods]\nmanifest_dir = ${JSON.stringify(join(dir, 'manifests'))}\nlog_dir = ${JSON.stringify(logs)}\n`;
    },
  });
  t.after(() => env.cleanup());
  const file = join(env.dir, 'demo.yaml');
  const hooks = join(env.dir, 'hooks');
  mkdirSync(hooks);
  writeFileSync(file, manifest(env.image.ref).replace('HOOKS_DIR', hooks));
  const play = (...args: string[]) => env.cli(['play', '--log-dir', env.logs, ...args]);
  const rows = async (): Promise<Row[]> => {
    const r = await env.cli(['get', 'pods', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { pods?: Row[] }).pods ?? [];
  };
  /** Polls the status until `want` holds (a wait, not a timing assertion); returns every status seen. */
  const until = async (want: (r: Row | undefined) => boolean, what: string, maxMs = 90_000) => {
    const seen = new Set<string>();
    const deadline = Date.now() + maxMs;
    for (;;) {
      const row = (await rows()).find((p) => p.name === 'demo');
      if (row) seen.add(row.status);
      if (want(row)) return { row, seen };
      if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(row)}, seen ${[...seen].join(', ')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  await t.test('an invalid manifest names the field and the line', async () => {
    const bad = join(env.dir, 'bad.yaml');
    writeFileSync(bad, 'kind: Pod\nmetadata:\n  name: x\nspec:\n  restartPolicy: Sometimes\n  containers: [{ name: c, image: i }]\n');
    const r = await play(bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:5: spec\.restartPolicy: must be one of Always, OnFailure, Never/);
    assert.equal((await rows()).length, 0);
  });

  // A pod someone else made over the CRI (kubelet, say), with the same name: never the reconciler's to touch.
  const foreign = await env.d.client.call('RunPodSandbox', {
    config: {
      metadata: { name: 'demo', namespace: 'default', uid: 'kubelets-own-uid', attempt: 0 },
      logDirectory: join(env.logs, 'foreign'),
      linux: { securityContext: { namespaceOptions: { network: 2 } } },
    },
  });

  let firstSandbox = '';
  await t.test('init first, then both containers; the flaky one restarts with back-off', async () => {
    const r = await play(file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'pod/default/demo created\n');
    assert.match(r.stderr, /demo\.yaml:\d+: spec\.containers\[1\]\.terminationMessagePath is not supported/);
    const { seen, row } = await until((p) => p?.restarts === 1, 'a first restart of flaky');
    assert.ok([...seen].some((s) => s === 'CrashLoopBackOff'), `back-off shown: ${[...seen].join(', ')}`);
    firstSandbox = row!.sandboxId;
    const init = await env.cli(['exec', 'writer', 'cat', '/shared/init.txt', '/shared/who.txt']);
    assert.equal(init.stdout, 'from-init\ndemo default\n');
    const cfg = await env.cli(['exec', 'writer', 'sh', '-c', 'cat /etc/cfg/greeting; echo; cat /etc/sec/nested/token; echo; echo "$TOKEN"; touch /etc/cfg/x 2>/dev/null || echo read-only']);
    assert.equal(cfg.stdout, 'hello-config\ns3cret\ns3cret\nread-only\n');
  });

  await t.test('a daemon restart mid-way: the pod is picked up again, not made twice', async () => {
    await env.restartDaemon();
    const { row } = await until((p) => p?.status === 'Running' && p.ready === '2/2', 'flaky running after its second failure');
    assert.equal(row!.restarts, 2);
    assert.equal(row!.sandboxId, firstSandbox);
    // The attempt before the running one said its last words in <attempt-1>.log.
    assert.equal((await env.cli(['logs', 'flaky'])).stdout, 'run-3\n');
    assert.equal((await env.cli(['logs', '--previous', 'flaky'])).stdout, 'run-2\n');
    const table = await env.cli(['get', 'pods']);
    assert.match(table.stdout, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(table.stdout, /default\s+demo\s+2\/2\s+Running\s+2\s+\d+[smh]\n/);
  });

  await t.test('playing the same file again converges', async () => {
    const r = await play(file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'pod/default/demo unchanged\n');
    const pods = (await env.d.client.call('ListPodSandbox', {})).items.filter((p) => p.id !== foreign.podSandboxId);
    assert.equal(pods.length, 1);
    assert.equal(pods[0]!.id, firstSandbox);
    assert.equal((await rows())[0]!.restarts, 2);
  });

  await t.test('probes: readiness (exec, httpGet) gates READY; a failing liveness probe restarts the container', async () => {
    const probes = join(env.dir, 'probes.yaml');
    writeFileSync(
      probes,
      `kind: Pod
metadata: { name: probed }
spec:
  terminationGracePeriodSeconds: 1
  volumes:
    - { name: mem, emptyDir: { medium: Memory, sizeLimit: 16Mi } }
  containers:
    - name: later
      image: ${env.image.ref}
      command: [sh, -c, 'exec sleep 1000']
      readinessProbe: { exec: { command: [cat, /tmp/ready] }, periodSeconds: 1 }
      volumeMounts: [{ name: mem, mountPath: /mem }]
    - name: web
      image: ${env.image.ref}
      command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www']
      readinessProbe: { httpGet: { path: /, port: 8080 }, periodSeconds: 1 }
---
kind: Pod
metadata: { name: doomed }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: doomed
      image: ${env.image.ref}
      command: [sh, -c, 'exec sleep 1000']
      livenessProbe: { exec: { command: ['false'] }, periodSeconds: 1, failureThreshold: 2 }
---
kind: Pod
metadata: { name: secured }
spec:
  terminationGracePeriodSeconds: 1
  securityContext: { runAsUser: 1000, runAsGroup: 1000 }
  containers:
    - name: secured
      image: ${env.image.ref}
      command: [sh, -c, 'exec sleep 1000']
      resources: { limits: { memory: 64Mi, cpu: 250m }, requests: { cpu: 100m } }
      securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
`,
    );
    const r = await play(probes);
    assert.equal(r.code, 0, r.stderr);
    const row = async (name: string) => (await rows()).find((p) => p.name === name);
    const wait = async (name: string, ok: (p: Row | undefined) => boolean, what: string) => {
      for (let i = 0; ; i++) {
        const p = await row(name);
        if (ok(p)) return p!;
        assert.ok(i < 400, `${what}: ${JSON.stringify(p)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    };
    // web answers HTTP, later has no /tmp/ready yet: one of two ready, both running.
    await wait('probed', (p) => p?.ready === '1/2' && p.status === 'Running', 'web ready over httpGet');
    const mem = await env.cli(['exec', 'later', 'sh', '-c', 'grep " /mem " /proc/mounts']);
    assert.match(mem.stdout, /^\S+ \/mem tmpfs \S*size=16384k/, 'a Memory emptyDir is a tmpfs of its sizeLimit');
    assert.equal((await env.cli(['exec', 'later', 'touch', '/tmp/ready'])).code, 0);
    await wait('probed', (p) => p?.ready === '2/2', 'later ready once its exec probe passes');
    await wait('secured', (p) => p?.ready === '1/1', 'secured running');
    // The limit as the container sees it: cgroup v1's memory hierarchy, or v2's own namespace root.
    const sec = await env.cli(['exec', 'secured', 'sh', '-c', 'id -u; id -g; touch /x 2>/dev/null && echo writable || echo read-only; grep NoNewPrivs /proc/self/status; grep CapEff /proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max']);
    assert.equal(sec.code, 0, sec.stderr);
    assert.match(sec.stdout, /^1000\n1000\nread-only\nNoNewPrivs:\s+1\nCapEff:\s+0+\n67108864\n$/);
    const doomed = await wait('doomed', (p) => (p?.restarts ?? 0) >= 1, 'doomed restarted by its liveness probe');
    assert.ok(doomed.restarts >= 1);
    const down = await play('--down', probes);
    assert.equal(down.stdout, 'pod/default/probed deleted\npod/default/doomed deleted\npod/default/secured deleted\n');
    const { readFileSync } = await import('node:fs');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(join(env.d.root, 'play', 'volumes')), 'the tmpfs went with its pod');
  });

  await t.test('manifest_dir: a file added is played, play --down leaves it alone, removing the file removes its pod', async () => {
    const staticFile = join(env.dir, 'manifests', 'static.yaml');
    writeFileSync(staticFile, `kind: Pod\nmetadata: { name: static }\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - { name: s, image: ${env.image.ref}, command: [sleep, '1000'] }\n`);
    for (let i = 0; ; i++) {
      const p = (await rows()).find((x) => x.name === 'static');
      if (p?.status === 'Running') break;
      assert.ok(i < 200, `static pod not running: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const down = await play('--down', staticFile);
    assert.equal(down.code, 0);
    assert.match(down.stderr, /comes from .*static\.yaml; remove that file instead/);
    assert.ok((await rows()).some((x) => x.name === 'static'));
    rmSync(staticFile);
    for (let i = 0; ; i++) {
      if (!(await rows()).some((x) => x.name === 'static')) break;
      assert.ok(i < 200, 'static pod still there after its file went');
      await new Promise((r) => setTimeout(r, 250));
    }
    const left = (await env.d.client.call('ListPodSandbox', {})).items.filter((p) => p.metadata?.name === 'static');
    assert.deepEqual(left, []);
  });

  await t.test('play --down removes the pod, its containers and its volumes', async () => {
    const r = await play('--down', file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'pod/default/demo deleted\n');
    assert.equal(readFileSync(join(hooks, 'post'), 'utf8'), 'started\n', 'postStart ran');
    assert.equal(readFileSync(join(hooks, 'pre'), 'utf8'), 'stopping\n', 'preStop ran before the stop');
    const left = (await env.d.client.call('ListPodSandbox', {})).items;
    assert.deepEqual(left.map((p) => [p.id, p.state]), [[foreign.podSandboxId, 0]], 'only the pod the reconciler did not make is left, untouched');
    assert.equal((await env.d.client.call('ListContainers', {})).containers.length, 0);
    assert.deepEqual(await rows(), []);
    const vols = join(env.d.root, 'play', 'volumes');
    assert.deepEqual(existsSync(vols) ? readdirSync(vols) : [], []);
    assert.deepEqual(readdirSync(join(env.d.root, 'play', 'pods')), []);
  });
});
