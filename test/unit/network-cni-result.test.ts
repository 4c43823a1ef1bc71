import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, describePluginError, podIpsFromResult, versionAtLeast } from '../../src/cni/cni-result.js';
import { cniArgsString, pluginStdin } from '../../src/cni/cni-exec.js';

test('pod IPs come from addresses on interfaces inside the sandbox, IPv4 first', () => {
  const cases: { name: string; result: Record<string, unknown>; want: string[] }[] = [
    {
      name: '1.0.0 bridge result: host-side bridge and veth are skipped',
      result: {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'cni0', mac: 'aa' }, { name: 'veth1', mac: 'bb' }, { name: 'eth0', mac: 'cc', sandbox: '/run/netns/x' }],
        ips: [
          { address: 'fd00::5/64', interface: 2 },
          { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 2 },
          { address: '10.9.9.9/24', interface: 0 },
        ],
      },
      want: ['10.1.0.5', 'fd00::5'],
    },
    { name: '0.3.1 result without interface indexes', result: { cniVersion: '0.3.1', ips: [{ version: '4', address: '10.2.0.7/16' }] }, want: ['10.2.0.7'] },
    { name: '0.2.0 result', result: { cniVersion: '0.2.0', ip4: { ip: '10.3.0.2/24' }, ip6: { ip: 'fd01::2/64' } }, want: ['10.3.0.2', 'fd01::2'] },
    { name: 'garbage is ignored', result: { ips: [{ address: 'not-an-ip/24' }, null, { address: 5 }] }, want: [] },
    { name: 'duplicates collapse', result: { ips: [{ address: '10.0.0.1/8' }, { address: '10.0.0.1/8' }] }, want: ['10.0.0.1'] },
  ];
  for (const c of cases) assert.deepEqual(podIpsFromResult(c.result), c.want, c.name);
});

test('CNI versions compare numerically', () => {
  assert.ok(compareVersions('1.0.0', '0.4.0') > 0);
  assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  assert.equal(compareVersions('1.1.0', '1.1.0'), 0);
  assert.ok(versionAtLeast('1.1.0', '1.1.0'));
  assert.ok(!versionAtLeast('1.0.0', '1.1.0'));
  assert.ok(!versionAtLeast('0.3.1', '0.4.0'));
});

test('plugin errors are reported with msg, details and code', () => {
  assert.equal(describePluginError('{"code":7,"msg":"bad config","details":"no bridge"}'), 'bad config: no bridge (CNI error code 7)');
  assert.equal(describePluginError('not json'), undefined);
  assert.equal(describePluginError('{"code":1}'), undefined);
});

test('a plugin sees name, cniVersion, prevResult and only the capability args it declares', () => {
  const stdin = pluginStdin({
    command: 'ADD',
    plugin: { type: 'portmap', capabilities: { portMappings: true, bandwidth: false }, runtimeConfig: { stale: 1 } },
    networkName: 'net1',
    cniVersion: '1.0.0',
    prevResult: { cniVersion: '1.0.0', ips: [] },
    capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }], bandwidth: { ingressRate: 1 }, dns: {} },
    binDirs: ['/x'],
    timeoutMs: 1000,
  });
  assert.equal(stdin['name'], 'net1');
  assert.equal(stdin['cniVersion'], '1.0.0');
  assert.deepEqual(stdin['prevResult'], { cniVersion: '1.0.0', ips: [] });
  assert.deepEqual(stdin['runtimeConfig'], { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] });

  const plain = pluginStdin({ command: 'ADD', plugin: { type: 'bridge' }, networkName: 'n', cniVersion: '0.4.0', binDirs: [], timeoutMs: 1, capabilityArgs: { portMappings: [] } });
  assert.equal('runtimeConfig' in plain, false);
  assert.equal('prevResult' in plain, false);
  assert.equal(cniArgsString({ IgnoreUnknown: '1', K8S_POD_NAME: 'p' }), 'IgnoreUnknown=1;K8S_POD_NAME=p');
});
