import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

// Fault injection for the programs cricketd runs (runc, conmon, CNI plugins). A
// failpoint is a wrapper script placed where the daemon is configured to look for the
// program; it runs the real one unless the armed rule matches its arguments (or the
// CNI_COMMAND), and then fails, hangs, or crashes after the real call — the three
// ways a real component lets a multi-step RPC down. Rules are files, so a test can
// arm and disarm them while the daemon runs. A hung call is a `sleep` whose
// environment holds FAILPOINT_HANG=<rules dir>, so a test can check it was killed.

/** `slow:N`: sleep N seconds, then run the real program (a call that outlives its caller's deadline). */
/** `kill-after:<pid file>` runs the real call, then SIGKILLs the process whose pid the file holds (the daemon). */
/**
 * `hold-pid-file:<dir>` runs the real call with its `--pid-file` written into `<dir>`
 * instead (the test's to remove), and moves it into place only once `<dir>/release`
 * exists (then touches `<dir>/published`): the window of `runc exec` between starting
 * the process and writing the pid file, held open for as long as a test needs.
 */
export type FailMode = 'fail' | 'hang' | 'crash-after' | `slow:${number}` | `kill-after:${string}` | `hold-pid-file:${string}`;

export interface Failpoints {
  /** Directory holding the wrappers: pass it to the daemon instead of the real dir/path. */
  dir: string;
  /** Path of the wrapper named `name`. */
  path(name: string): string;
  /** Arms a rule: when `name` runs with an argument (or CNI_COMMAND) equal to `match` (`*`: any call), do `mode`. */
  arm(name: string, match: string, mode: FailMode): void;
  disarm(name: string): void;
  /** Deletes the wrappers and rules. */
  remove(): void;
}

/**
 * Wraps `programs` (name → real path). CNI plugin dirs can be wrapped whole with
 * wrapCniDir(): every plugin in the real dir gets a wrapper of the same name.
 */
export function makeFailpoints(root: string, programs: Record<string, string>): Failpoints {
  const dir = join(root, 'failpoints');
  const rules = join(dir, '.rules');
  mkdirSync(rules, { recursive: true });
  for (const [name, real] of Object.entries(programs)) writeWrapper(dir, rules, name, real);
  return {
    dir,
    path: (name) => join(dir, name),
    arm(name, match, mode) {
      writeFileSync(join(rules, name), `${match}\n${mode}\n`);
    },
    disarm(name) {
      rmSync(join(rules, name), { force: true });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function wrapCniDir(root: string, realDir: string): Failpoints {
  const programs: Record<string, string> = {};
  for (const name of readdirSync(realDir)) programs[name] = join(realDir, name);
  return makeFailpoints(root, programs);
}

function writeWrapper(dir: string, rules: string, name: string, real: string): void {
  if (!existsSync(real)) throw new Error(`cannot wrap ${real}: it does not exist`);
  const script = `#!/bin/sh
# failpoint wrapper for ${real}
rule="${rules}/${name}"
if [ -f "$rule" ]; then
  match=$(sed -n 1p "$rule"); mode=$(sed -n 2p "$rule")
  hit=0
  [ "$match" = "*" ] && hit=1
  [ "\${CNI_COMMAND:-}" = "$match" ] && hit=1
  for a in "$@"; do [ "$a" = "$match" ] && hit=1; done
  if [ $hit = 1 ]; then
    case "$mode" in
      fail) echo "failpoint: ${name} $match failed on purpose" >&2; exit 42 ;;
      hang) FAILPOINT_HANG="${rules}" exec sleep 3600 ;;
      crash-after) "${real}" "$@"; kill -9 $$ ;;
      slow:*) sleep "\${mode#slow:}" ;;
      kill-after:*) "${real}" "$@"; rc=$?; kill -9 "$(cat "\${mode#kill-after:}")"; exit $rc ;;
      hold-pid-file:*)
        d="\${mode#hold-pid-file:}"; held=; next=0
        for a in "$@"; do
          shift
          if [ $next = 1 ]; then held=$a; set -- "$@" "$d/pid.$$"; next=0; continue; fi
          [ "$a" = --pid-file ] && next=1
          set -- "$@" "$a"
        done
        # <&0: an asynchronous command would otherwise get /dev/null as stdin.
        "${real}" "$@" <&0 &
        rpid=$!
        while [ -n "$held" ] && kill -0 $rpid 2>/dev/null; do
          if [ -e "$d/release" ] && [ -e "$d/pid.$$" ]; then mv "$d/pid.$$" "$held"; touch "$d/published"; break; fi
          sleep 0.02
        done
        wait $rpid; exit $? ;;
    esac
  fi
fi
exec "${real}" "$@"
`;
  writeFileSync(join(dir, name), script);
  chmodSync(join(dir, name), 0o755);
}
