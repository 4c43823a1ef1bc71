// The runtime handler the integration suites for pods, containers and streaming run
// under: CRICKET_TEST_HANDLER=runsc runs them on gVisor (make test runs them once per
// handler), anything else or unset on runc. Specs gVisor cannot pass are skipped in
// the runsc run with the reason.

export const TEST_HANDLER = process.env['CRICKET_TEST_HANDLER'] === 'runsc' ? 'runsc' : 'runc';
export const ON_RUNSC = TEST_HANDLER === 'runsc';

/** The gVisor handler as the README shows it; configured in every run, used in the runsc one. */
export const RUNSC_HANDLER_TOML = `
[runtime.handlers.runsc]
path = "/usr/bin/runsc"
runtime_type = "sandbox"
runtime_args = ["--platform=systrap"]
allowed_annotations = ["dev.gvisor.*"]
privileged_without_host_devices = true
`;

/** A reason to skip a spec in the runsc run, or false. */
export const notOnRunsc = (why: string): string | false => (ON_RUNSC ? `gVisor: ${why}` : false);
