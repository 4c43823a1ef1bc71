import assert from 'node:assert/strict';
import { notOnRunsc, ON_RUNSC } from '../helpers/handler.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ContainerState, SecurityProfile_ProfileType, SupplementalGroupsPolicy } from '../../src/gen/runtime/v1/api.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { decodeCapMask } from '../../src/host/capabilities.js';
import { createStart, ctrConfig, isCode, logText, runPod, setUpEnv, waitExited, waitState, type Env } from './containers-env.js';

let env: Env;
let pod: Awaited<ReturnType<typeof runPod>>;
before(async () => {
  env = await setUpEnv({ User: 'app' });
  pod = await runPod(env);
});
after(async () => {
  await env?.cleanup();
});

async function runToEnd(cmd: string, extra: Parameters<typeof ctrConfig>[2] = {}) {
  const id = await createStart(env, pod, ctrConfig(env, ['sh', '-c', cmd], extra));
  const s = await waitExited(env, id);
  return { id, status: s, log: logText(s.logPath) };
}

test('a process over its memory limit is OOMKilled', { skip: notOnRunsc("a container's own limit does not bound it inside the pod's one sandbox: the pod cgroup does (pods-gvisor.test.ts)") }, async () => {
  const limit = 16n << 20n;
  const r = await runToEnd('dd if=/dev/zero bs=1M count=256 2>/dev/null | tail -c 200000000 >/dev/null', {
    // No swap either, where the kernel accounts it (so the limit cannot be dodged by swapping).
    linux: { resources: { memoryLimitInBytes: limit, memorySwapLimitInBytes: existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') ? limit : 0n } },
  });
  assert.equal(r.status.reason, 'OOMKilled', r.log);
  assert.equal(r.status.exitCode, 137);
});

test('read-only rootfs refuses writes; the image USER applies; run_as_user overrides it', async () => {
  const ro = await runToEnd('touch /probe && echo wrote; id -u', { linux: { securityContext: { readonlyRootfs: true } } });
  assert.doesNotMatch(ro.log, /wrote/);
  // gVisor's kernel answers EACCES where Linux says EROFS.
  assert.match(ro.log, ON_RUNSC ? /Read-only file system|Permission denied/ : /Read-only file system/);
  assert.match(ro.log, /^1000$/m, 'image USER app is uid 1000');

  const rw = await runToEnd('touch /tmp/probe && echo wrote; id -u; id -G', {
    linux: { securityContext: { runAsUser: { value: 0n }, supplementalGroups: [4242n] } },
  });
  assert.match(rw.log, /^wrote$/m);
  assert.match(rw.log, /^0$/m);
  assert.match(rw.log, /\b4242\b/);
  const byName = await runToEnd('id -u', { linux: { securityContext: { runAsUsername: 'nobody' } } });
  assert.match(byName.log, /^65534$/m);
});

test('the groups a process has are the groups ContainerStatus reports, for every image user, override, supplemental group and policy', async () => {
  // Images whose /etc/group makes root a member of wheel and app a member of staff.
  const group = { path: 'etc/group', content: 'root:x:0:\nwheel:x:10:root\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n' };
  const images: Record<string, string> = {};
  for (const [name, user] of [['root', undefined], ['app', 'app']] as const) {
    const img = await pushBusyboxImage(env.reg.host, `ctr/groups-${name}`, 'v1', { layers: [{ entries: [group] }], ...(user ? { User: user } : {}) });
    await env.d.client.call('PullImage', { image: { image: img.ref } });
    images[name] = img.ref;
  }
  const overrides = [{}, { runAsUser: { value: 1000n } }, { runAsUser: { value: 0n }, runAsGroup: { value: 50n } }];
  const ids = (text: string, key: string) => (new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  let checked = 0;
  for (const [imageName, ref] of Object.entries(images)) {
    for (const o of overrides) {
      for (const supplementalGroups of [[], [1234n]]) {
        for (const policy of [SupplementalGroupsPolicy.Merge, SupplementalGroupsPolicy.Strict]) {
          const what = `image user ${imageName}, ${JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}, groups [${supplementalGroups}], ${SupplementalGroupsPolicy[policy]}`;
          const r = await runToEnd('cat /proc/self/status', {
            image: { image: ref },
            linux: { securityContext: { ...o, supplementalGroups, supplementalGroupsPolicy: policy } },
          });
          const has = { uid: ids(r.log, 'Uid')[0], gid: ids(r.log, 'Gid')[0], groups: ids(r.log, 'Groups') };
          const u = r.status.user?.linux;
          assert.ok(u, `${what}: ContainerStatus.user is set`);
          assert.deepEqual({ uid: Number(u.uid), gid: Number(u.gid), groups: u.supplementalGroups.map(Number) }, has, what);
          // The primary gid is among them, as containerd sets them.
          assert.ok(has.groups.includes(has.gid!), `${what}: the primary gid ${has.gid} is in Groups ${has.groups}`);
          // Merge adds the image's memberships of the user, Strict does not.
          const member = has.uid === 0 ? 10 : has.uid === 1000 ? 50 : undefined;
          if (member !== undefined) assert.equal(has.groups.includes(member), policy === SupplementalGroupsPolicy.Merge, `${what}: image membership ${member}`);
          for (const g of supplementalGroups) assert.ok(has.groups.includes(Number(g)), `${what}: supplemental ${g}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 24);
});

test('a CRI device appears at its container path and is usable', async () => {
  const r = await runToEnd('ls -l /dev/xnull; echo data > /dev/xnull && echo wrote', { devices: [{ containerPath: '/dev/xnull', hostPath: '/dev/null', permissions: 'rwm' }] });
  assert.match(r.log, /^c.* 1, +3 .*\/dev\/xnull$/m);
  assert.match(r.log, /^wrote$/m);
});

test('dropped capabilities are gone and added ones present (within the daemon bounding set)', async () => {
  const capsOf = (log: string) => decodeCapMask(/CapEff:\s*([0-9a-f]+)/.exec(log)![1]!);
  const def = await runToEnd('grep CapEff /proc/self/status', { linux: { securityContext: { runAsUser: { value: 0n } } } });
  const defCaps = capsOf(def.log);
  // runsc drops CAP_NET_RAW unless started with --net-raw (raw sockets off by default).
  assert.ok(defCaps.includes('CAP_CHOWN') && (ON_RUNSC || defCaps.includes('CAP_NET_RAW')), defCaps.join(','));
  assert.ok(!defCaps.includes('CAP_SYS_ADMIN'));

  const dropped = await runToEnd('grep CapEff /proc/self/status; chown 1 /tmp && echo chowned', {
    linux: { securityContext: { runAsUser: { value: 0n }, capabilities: { dropCapabilities: ['CHOWN', 'CAP_NET_RAW'], addCapabilities: ['NET_ADMIN'] } } },
  });
  const caps = capsOf(dropped.log);
  assert.ok(!caps.includes('CAP_CHOWN') && !caps.includes('CAP_NET_RAW'), caps.join(','));
  assert.ok(caps.includes('CAP_NET_ADMIN'));
  assert.doesNotMatch(dropped.log, /chowned/);

  const none = await runToEnd('grep CapEff /proc/self/status', {
    linux: { securityContext: { runAsUser: { value: 0n }, capabilities: { dropCapabilities: ['ALL'] } } },
  });
  assert.deepEqual(capsOf(none.log), []);

  // ALL is cut to what the daemon itself holds, so the container still starts.
  const own = decodeCapMask(/CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]!);
  const all = await runToEnd('grep CapEff /proc/self/status', {
    linux: { securityContext: { runAsUser: { value: 0n }, capabilities: { addCapabilities: ['ALL'] } } },
  });
  assert.deepEqual(capsOf(all.log).sort(), own.filter((c) => !ON_RUNSC || c !== 'CAP_NET_RAW').sort());
});

test('seccomp RuntimeDefault blocks namespace creation that Unconfined allows', async () => {
  const cmd = 'unshare -U true && echo unshared || echo blocked';
  const unconfined = await runToEnd(cmd, {
    linux: { securityContext: { runAsUser: { value: 0n }, seccomp: { profileType: SecurityProfile_ProfileType.Unconfined } } },
  });
  assert.match(unconfined.log, /^unshared$/m);
  const confined = await runToEnd(cmd, {
    linux: { securityContext: { runAsUser: { value: 0n }, seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } },
  });
  assert.match(confined.log, /^blocked$/m);
  assert.match(confined.log, /Operation not permitted/);
  const seccompMode = await runToEnd('grep Seccomp: /proc/self/status', {
    linux: { securityContext: { seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } },
  });
  assert.match(seccompMode.log, /Seccomp:\s+2/);

  // A Localhost profile: everything allowed except mkdir/mkdirat, which fail with EPERM.
  const profile = join(env.dir, 'no-mkdir.json');
  writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
  const local = await runToEnd('mkdir /tmp/d && echo made || echo refused', {
    linux: { securityContext: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: profile } } },
  });
  assert.match(local.log, /^refused$/m);
});

test('ExecSync returns output and exit code, kills at its timeout, and refuses a stopped container', async () => {
  const id = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  await waitState(env, id, ContainerState.CONTAINER_RUNNING);
  const r = await env.d.client.call('ExecSync', { containerId: id, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'], timeout: 10n });
  assert.equal(r.stdout.toString(), 'out\n');
  assert.equal(r.stderr.toString(), 'err\n');
  assert.equal(r.exitCode, 4);
  const big = await env.d.client.call('ExecSync', { containerId: id, cmd: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" a'], timeout: 20n });
  assert.equal(big.stdout.length, 3_000_000);

  await assert.rejects(
    env.d.client.call('ExecSync', { containerId: id, cmd: ['sleep', '60'], timeout: 1n }, { timeoutMs: 30_000 }),
    (e: Error & { code?: number }) => e.code === status.DEADLINE_EXCEEDED,
  );
  // The timed-out process was killed, not left behind in the container.
  const ps = await env.d.client.call('ExecSync', { containerId: id, cmd: ['ps', '-o', 'args'], timeout: 10n });
  assert.doesNotMatch(ps.stdout.toString(), /sleep 60/);

  // An exec'd process runs as the container's user and groups (runsc exec, unlike
  // runc exec, needs to be told).
  const who = await createStart(env, pod, ctrConfig(env, ['sh', '-c', 'id; exec sleep 1000'], { linux: { securityContext: { runAsUser: { value: 1001n }, supplementalGroups: [50000n, 1234n] } } }));
  await waitState(env, who, ContainerState.CONTAINER_RUNNING);
  const whoLog = (await env.d.client.call('ContainerStatus', { containerId: who })).status!.logPath;
  for (let i = 0; i < 400 && !/uid=/.test(logText(whoLog)); i++) await new Promise((r) => setTimeout(r, 25));
  const ownId = /^uid=.*$/m.exec(logText(whoLog))![0];
  assert.match(ownId, /^uid=1001\b.*groups=.*\b1234\b.*\b50000\b/, 'groups listed in order');
  const execId = await env.d.client.call('ExecSync', { containerId: who, cmd: ['id'], timeout: 10n });
  assert.equal(execId.stdout.toString().trim(), ownId);
  await env.d.client.call('RemoveContainer', { containerId: who });

  await env.d.client.call('StopContainer', { containerId: id, timeout: 0n });
  await assert.rejects(env.d.client.call('ExecSync', { containerId: id, cmd: ['true'], timeout: 5n }), isCode(status.FAILED_PRECONDITION));
  await assert.rejects(env.d.client.call('ExecSync', { containerId: 'e'.repeat(64), cmd: ['true'] }), isCode(status.NOT_FOUND));
});
