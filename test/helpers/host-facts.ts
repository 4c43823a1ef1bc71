import type { HostFacts } from '../../src/oci/spec.js';

/** What buildSpec is told of the host in unit tests: a cgroup v1 x64 host, 2 CPUs; each test sets what it is about. */
export function testFacts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    bounding: new Set(['CAP_CHOWN']),
    arch: 'x64',
    apparmorEnabled: false,
    cpuCount: 2,
    cgroupV2: false,
    ownOomScoreAdj: 0,
    clampOomScoreAdj: true,
    hugepageSizes: [],
    ...over,
  };
}
