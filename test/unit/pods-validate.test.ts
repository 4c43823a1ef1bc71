import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import { NamespaceMode, RunPodSandboxRequest, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { checkLogDirectoryOnDisk, planPod } from '../../src/services/pods/validate.js';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../helpers/daemon.js';

// Pinned to kubelet's layout (the default allows any root) so the checks below bite.
const config = { ...defaultConfig(), logs: { allowed_roots: ['/var/log/pods'] } };
const base = {
  config: {
    metadata: { name: 'web', namespace: 'default', uid: 'u1', attempt: 2 },
    hostname: 'web-0',
    logDirectory: '/var/log/pods/default_web_u1',
  },
};
const plan = (over: DeepPartial<RunPodSandboxRequest> = {}, host = 'node1') =>
  planPod(RunPodSandboxRequest.fromPartial({ ...base, ...over, config: { ...base.config, ...over.config } }), config, host);
const invalid = (over: DeepPartial<RunPodSandboxRequest>, re: RegExp) =>
  assert.throws(() => plan(over), (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && re.test(e.message), String(re));

test('a good request plans a pod with its name key, handler and namespaces', () => {
  const p = plan();
  assert.equal(p.nameKey, 'web_default_u1_2');
  assert.equal(p.runtimeHandler, 'runc');
  assert.equal(p.hostNetwork, false);
  assert.equal(p.sharedPid, true, 'POD is the proto default');
  assert.equal(p.hostname, 'web-0');
  assert.equal(p.logDirectory, '/var/log/pods/default_web_u1');
  assert.equal(p.cgroupParent, '');
  const hostNet = plan({
    config: { hostname: '', linux: { cgroupParent: '/kubepods/besteffort/pod1', securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } } } },
  });
  assert.equal(hostNet.hostNetwork, true);
  assert.equal(hostNet.sharedPid, false);
  assert.equal(hostNet.hostname, 'node1', 'a host-network pod keeps the node name');
  assert.equal(hostNet.cgroupParent, '/kubepods/besteffort/pod1');
  assert.equal(plan({ config: { hostname: '' } }).hostname, 'web');
  assert.equal(plan({ config: { hostname: '', metadata: { name: 'Web_Server!', namespace: 'd', uid: 'u' } } }).hostname, 'web-server');
});

test('bad requests are InvalidArgument with a sentence naming the field', () => {
  assert.throws(() => planPod(RunPodSandboxRequest.fromPartial({}), config, 'h'), /needs a config/);
  invalid({ config: { metadata: undefined } }, /needs metadata/);
  invalid({ config: { metadata: { name: '' } } }, /metadata\.name must not be empty/);
  invalid({ config: { metadata: { name: 'a/b' } } }, /metadata\.name "a\/b" must not contain/);
  invalid({ config: { metadata: { name: 'a', namespace: 'x..y' } } }, /metadata\.namespace/);
  invalid({ config: { metadata: { name: 'a', uid: 'u;K8S_POD_NAME=evil' } } }, /metadata\.uid/);
  invalid({ config: { metadata: { name: 'n'.repeat(254) } } }, /254 characters; at most 253/);
  invalid({ config: { hostname: 'bad_host' } }, /hostname "bad_host"/);
  invalid({ config: { hostname: 'h'.repeat(65) } }, /hostname/);
  invalid({ config: { logDirectory: '/tmp/logs' } }, /outside the allowed log roots \(\/var\/log\/pods\)/);
  invalid({ config: { logDirectory: '/var/log/pods/../../etc' } }, /must not contain/);
  invalid({ config: { logDirectory: 'relative' } }, /absolute/);
  invalid({ config: { logDirectory: '/var/log/podsX' } }, /outside/);
  invalid({ runtimeHandler: 'kata' }, /runtime handler "kata" is not configured; known handlers: runc/);
  invalid({ config: { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.CONTAINER } } } } }, /namespace_options\.network/);
  invalid({ config: { linux: { securityContext: { namespaceOptions: { usernsOptions: { mode: NamespaceMode.POD } } } } } }, /a POD user namespace needs exactly one uid mapping, got 0/);
  invalid({ config: { linux: { sysctls: { 'kernel.panic': '1' } } } }, /not namespaced/);
  invalid({ config: { linux: { sysctls: { 'net.ipv4.ip_forward': '1' }, securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } } }, /host network/);
  invalid({ config: { linux: { sysctls: { 'kernel.shmmax': '1' }, securityContext: { namespaceOptions: { ipc: NamespaceMode.NODE } } } } }, /host IPC/);
  invalid({ config: { linux: { sysctls: { 'net/../../x': '1' } } } }, /not a valid sysctl/);
  invalid({ config: { linux: { cgroupParent: 'relative/path' } } }, /cgroup_parent/);
  invalid({ config: { linux: { cgroupParent: '/kubepods/../x' } } }, /invalid element/);
  invalid({ config: { dnsConfig: { servers: ['dns.example'] } } }, /dns_config\.servers/);
  invalid({ config: { portMappings: [{ containerPort: 0 }] } }, /container_port/);
  invalid({ config: { annotations: { 'cni.cricket.dev/ips': '10.0.0.1,nope' } } }, /nope/);
});

test('namespaced sysctls, allowed roots and IPs pass through', () => {
  const p = plan({
    config: {
      linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shm_rmid_forced': '1', 'net/ipv4/conf/all/forwarding': '1' } },
      annotations: { 'cni.cricket.dev/ips': '10.1.0.9, fd00::9' },
      portMappings: [{ containerPort: 80, hostPort: 8080 }],
    },
  });
  assert.equal(Object.keys(p.sysctls).length, 3);
  assert.deepEqual(p.ips, ['10.1.0.9', 'fd00::9']);
  assert.deepEqual(p.portMappings, [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  const open = { ...config, logs: { allowed_roots: [] } };
  assert.equal(planPod(RunPodSandboxRequest.fromPartial({ config: { ...base.config, logDirectory: '/tmp/x/' } }), open, 'h').logDirectory, '/tmp/x');
});

test('a log directory reached through a symlink out of the allowed roots is refused', (t) => {
  const root = tempDir('cricket-logroot-');
  const outside = tempDir('cricket-outside-');
  t.after(() => {
    removeDir(root);
    removeDir(outside);
  });
  symlinkSync(outside, join(root, 'escape'));
  mkdirSync(join(root, 'fine'));
  assert.throws(() => checkLogDirectoryOnDisk(join(root, 'escape', 'pod'), [root]), /resolves to .*outside the allowed log roots/);
  checkLogDirectoryOnDisk(join(root, 'fine', 'new', 'pod'), [root]);
  checkLogDirectoryOnDisk(join(root, 'not-yet'), [join(root, 'not-yet')]);
  checkLogDirectoryOnDisk(join(outside, 'x'), []);
});
