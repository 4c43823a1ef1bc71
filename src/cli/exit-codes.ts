/**
 * What a script can rely on from `cricket`:
 *   0  done
 *   1  the runtime refused or failed (the message names the gRPC code and why)
 *   2  bad usage: unknown command or flag, bad value, a name or id that matches nothing or too much
 *   N  exec, attach and run -it/-a end with the code of the process they ran
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad usage: exit 2 with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that ends with a given code (the remote process's), with nothing more to say. */
export class ExitWith extends Error {
  override readonly name = 'ExitWith';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
