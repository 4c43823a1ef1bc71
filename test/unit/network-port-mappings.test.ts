import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CricketError } from '../../src/core/errors.js';
import { Protocol, type PortMapping } from '../../src/gen/runtime/v1/api.js';
import { bandwidthFromAnnotations, parseQuantity, portsConflict, validatePortMappings } from '../../src/cni/port-mappings.js';

const pm = (p: Partial<PortMapping>): PortMapping => ({ protocol: Protocol.TCP, containerPort: 80, hostPort: 0, hostIp: '', ...p });
const invalid = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && re.test(e.message));

test('port mappings become portmap capability args; unpublished ports are dropped', () => {
  assert.deepEqual(
    validatePortMappings([
      pm({ hostPort: 8080, containerPort: 80 }),
      pm({ protocol: Protocol.UDP, hostPort: 53, containerPort: 5353, hostIp: '127.0.0.1' }),
      pm({ containerPort: 9000 }),
      pm({ protocol: Protocol.SCTP, hostPort: 8080, containerPort: 80 }),
    ]),
    [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 53, containerPort: 5353, protocol: 'udp', hostIP: '127.0.0.1' },
      { hostPort: 8080, containerPort: 80, protocol: 'sctp' },
    ],
  );
});

test('bad port mappings are InvalidArgument naming the entry', () => {
  invalid(() => validatePortMappings([pm({ containerPort: 0 })]), /port_mappings\[0\]: container_port 0/);
  invalid(() => validatePortMappings([pm({ containerPort: 65536 })]), /container_port 65536/);
  invalid(() => validatePortMappings([pm({}), pm({ hostPort: 70000 })]), /port_mappings\[1\]: host_port 70000/);
  invalid(() => validatePortMappings([pm({ protocol: Protocol.UNRECOGNIZED })]), /protocol/);
  invalid(() => validatePortMappings([pm({ hostPort: 1, hostIp: 'localhost' })]), /host_ip "localhost"/);
  invalid(() => validatePortMappings([pm({ hostPort: 80 }), pm({ hostPort: 80, containerPort: 81 })]), /mapped twice/);
  invalid(() => validatePortMappings([pm({ hostPort: 80, hostIp: '10.0.0.1' }), pm({ hostPort: 80, containerPort: 81 })]), /mapped twice/);
  // Different addresses do not clash.
  assert.equal(validatePortMappings([pm({ hostPort: 80, hostIp: '10.0.0.1' }), pm({ hostPort: 80, hostIp: '10.0.0.2' })]).length, 2);
});

test('host ports conflict on same port+protocol over overlapping addresses', () => {
  const a = { hostPort: 80, containerPort: 1, protocol: 'tcp' as const };
  assert.ok(portsConflict(a, { ...a, containerPort: 2 }));
  assert.ok(!portsConflict(a, { ...a, protocol: 'udp' }));
  assert.ok(!portsConflict(a, { ...a, hostPort: 81 }));
  assert.ok(portsConflict({ ...a, hostIP: '1.1.1.1' }, { ...a, hostIP: '0.0.0.0' }));
  assert.ok(!portsConflict({ ...a, hostIP: '1.1.1.1' }, { ...a, hostIP: '1.1.1.2' }));
});

test('bandwidth annotations become bits per second', () => {
  assert.equal(parseQuantity('10M'), 10_000_000);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('1.5k'), 1500);
  assert.equal(parseQuantity('ten'), undefined);
  assert.deepEqual(bandwidthFromAnnotations({ 'kubernetes.io/ingress-bandwidth': '1M' }), { ingressRate: 1_000_000, ingressBurst: 2 ** 31 - 1 });
  assert.equal(bandwidthFromAnnotations({ other: '1' }), undefined);
  invalid(() => bandwidthFromAnnotations({ 'kubernetes.io/egress-bandwidth': 'fast' }), /egress-bandwidth/);
});
