import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ContainerState, MountPropagation } from '../../src/gen/runtime/v1/api.js';
import { startDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { create, createStart, ctrConfig, isCode, leftovers, logText, runPod, setUpEnv, waitExited, waitState, type Env } from './containers-env.js';

// Kubernetes' ImageVolume: a CRI mount whose `image` is set mounts that image's layers,
// read-only, at the container path, straight from the unpacked layers.

let env: Env;
let vol: PushedImage;
before(async () => {
  env = await setUpEnv();
  // Two layers, the upper one replacing a file of the lower: the volume shows the merge.
  vol = await pushBusyboxImage(env.reg.host, 'ctr/volume', 'v1', {
    layers: [
      { entries: [{ path: 'data/', type: 'directory' }, { path: 'data/hello.txt', content: 'old\n' }, { path: 'data/lower.txt', content: 'lower\n' }] },
      { entries: [{ path: 'data/hello.txt', content: 'from the image\n' }] },
    ],
  });
  await env.d.client.call('PullImage', { image: { image: vol.ref } });
});
after(async () => {
  await env?.cleanup();
});

/** Mount points of our mount namespace under a daemon's run root that belong to a container's image volumes. */
function volumeMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((t) => t.startsWith(env.d.runRoot) && t.includes('/image-volumes/'));
}

test('an image volume shows the image read-only, holds the image, survives a restart and leaves no mount', async () => {
  const pod = await runPod(env);
  const mount = { containerPath: '/vol', image: { image: vol.ref }, readonly: false, propagation: MountPropagation.PROPAGATION_PRIVATE };
  const cmd = 'cat /vol/data/hello.txt /vol/data/lower.txt; touch /vol/data/x && echo wrote; echo ready; sleep 1000';
  const id = await createStart(env, pod, ctrConfig(env, ['sh', '-c', cmd], { mounts: [mount] }));
  await waitState(env, id, ContainerState.CONTAINER_RUNNING);
  const st = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
  let log = '';
  for (let i = 0; i < 400 && !/ready/.test(log); i++) {
    await new Promise((r) => setTimeout(r, 25));
    log = logText(st.logPath);
  }
  assert.match(log, /^from the image$/m, 'the upper layer wins');
  assert.match(log, /^lower$/m, 'the lower layer shows through');
  assert.doesNotMatch(log, /^wrote$/m, 'read-only even though readonly was false');
  assert.match(log, /Read-only file system/);
  const m = st.mounts.find((x) => x.containerPath === '/vol');
  assert.equal(m?.image?.image, vol.ref, 'ContainerStatus names the image');
  assert.equal(m?.readonly, true);
  assert.equal(volumeMounts().length, 1);

  // Held while a container mounts it, and the refusal names the container.
  const removeVol = () => env.d.client.call('RemoveImage', { image: { image: vol.ref } });
  await assert.rejects(removeVol(), (e: unknown) => isCode(status.FAILED_PRECONDITION)(e) && String((e as Error).message).includes(id.slice(0, 12)));

  // A restart finds it mounted and held again.
  await env.d.stop();
  env.d = await startDaemon({ dir: env.d.dir, configToml: readFileSync(join(env.d.dir, 'cricket.toml'), 'utf8') });
  assert.equal((await env.d.client.call('ContainerStatus', { containerId: id })).status!.state, ContainerState.CONTAINER_RUNNING);
  assert.equal(volumeMounts().length, 1);
  await assert.rejects(removeVol(), isCode(status.FAILED_PRECONDITION));

  await env.d.client.call('StopContainer', { containerId: id, timeout: 0n });
  await waitExited(env, id);
  await env.d.client.call('RemoveContainer', { containerId: id });
  assert.deepEqual(volumeMounts(), [], 'no mount left');
  assert.deepEqual(await leftovers(env, id), []);
  await removeVol(); // free once the container is gone
  await env.d.client.call('PullImage', { image: { image: vol.ref } });
  await env.d.client.call('StopPodSandbox', { podSandboxId: pod.id });
  await env.d.client.call('RemovePodSandbox', { podSandboxId: pod.id });
});

test('an image volume of an image not on the node is NotFound naming it, and nothing is left', async () => {
  const pod = await runPod(env);
  const ghost = `${env.reg.host}/ctr/not-pulled:v9`;
  await assert.rejects(
    create(env, pod, ctrConfig(env, ['true'], { mounts: [{ containerPath: '/vol', image: { image: ghost }, readonly: true }] })),
    (e: unknown) => isCode(status.NOT_FOUND)(e) && String((e as Error).message).includes(ghost),
  );
  assert.deepEqual(await leftovers(env), []);
  assert.deepEqual(volumeMounts(), []);
  await env.d.client.call('StopPodSandbox', { podSandboxId: pod.id });
  await env.d.client.call('RemovePodSandbox', { podSandboxId: pod.id });
});
