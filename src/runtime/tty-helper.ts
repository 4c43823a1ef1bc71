import { existsSync } from 'node:fs';

// Why a Python helper and not a library or conmon (measured: 40 `exec -t` runs of
// `sh -c 'stty size'` each, interleaved, on the 2-core dev host under load; first output):
//
//                      start p50 / p95   host memory per idle session     after a daemon SIGKILL
//   this helper         62 / 88 ms       python3 9.7 MB + runc 10.3 MB    process ends (PDEATHSIG below)
//   npm node-pty        35 / 58 ms       runc 10.3 MB                     process ends
//   conmon -e -t        49 / 120 ms      conmon 2.9 MB (runc exits)       conmon and process keep running
//
// - node-pty is a native addon with no Linux prebuild: every install compiles it with
//   node-gyp (g++, make, python3 still; 63 MB in node_modules), tied to the daemon's
//   process. Its pty starts cooked (ECHO, ICRNL) and offers no termios call, so a line
//   typed at once is echoed twice (20 of 20 runs; 16 of 20 with an `stty raw` wrapper)
//   unless one reaches into its private socket. The gain, 26 ms on an interactive start
//   and 10 MB per session, does not pay for that.
// - conmon --exec --terminal --exec-attach (podman's exec; CRI-O uses conmon only for
//   ExecSync, and for streaming exec holds a pty itself, as here) would speak the attach
//   socket and ctl fifo we already use, and its process spec sets consoleSize, so the
//   first `stty size` is right (0 of 40 wrong, against 30 of 40 through `runc exec -t`,
//   which sizes the console only after the process started). But it needs the full
//   process spec built from the container's config, a three-pipe handshake, a session
//   directory, and it outlives the daemon by design: a daemon that dies mid-session
//   leaves every exec running with no client.
// Revisit if exec -t start time or per-session memory ever matters (many idle sessions).

/**
 * `runc exec --tty` in the foreground proxies between its OWN terminal and the
 * container's console, and it needs that terminal (it refuses plain pipes). The
 * alternative, `--console-socket`, hands the pty master over SCM_RIGHTS but only with
 * `--detach`, which loses the exit code. Node can neither create a pty nor receive a
 * file descriptor, so this small Python program (python3 is in every Debian base)
 * gives runc a pty, as CRI-O does with Go's pty package:
 *
 *   node ──pipes──► helper ──pty master/slave──► runc exec -t ──console──► process
 *
 * argv: the initial "<cols> <rows>" (or "-"), then runc's command line.
 * fd 0/1: the session's stdin/stdout; fd 3: resize lines "<cols> <rows>\n". A resize
 * sets the outer pty's size; the kernel signals SIGWINCH to runc, which copies the
 * size onto the container's console. stdin EOF is sent as ^D. The helper exits with
 * runc's exit status (which is the process's).
 */
export const TTY_HELPER_SOURCE = String.raw`
import ctypes, errno, fcntl, os, select, struct, sys, termios, tty
# Die with the daemon (PR_SET_PDEATHSIG = 1, SIGKILL): the pty master then closes, the
# kernel hangs up runc's terminal and runc passes SIGHUP on (a process that ignores it
# stays, as after a dropped ssh session). Without it a daemon killed mid-session leaves
# this helper, runc and the process running.
ctypes.CDLL(None).prctl(1, 9)
size = sys.argv[1]
argv = sys.argv[2:]
master, slave = os.openpty()
tty.setraw(slave)
if size != '-':
    cols, rows = (int(x) for x in size.split())
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.closerange(3, 1024)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
os.close(slave)
os.set_blocking(master, False)
pending = b''
stdin_open = True
ctl_open = True
ctl_buf = b''
def write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]
while True:
    r = [master]
    if stdin_open and not pending:
        r.append(0)
    if ctl_open:
        r.append(3)
    w = [master] if pending else []
    try:
        rl, wl, _ = select.select(r, w, [])
    except InterruptedError:
        continue
    if master in wl:
        try:
            n = os.write(master, pending)
            pending = pending[n:]
        except BlockingIOError:
            pass
        except OSError:
            pending = b''
            stdin_open = False
    if master in rl:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            data = None
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b''
        if data == b'':
            break
        if data:
            try:
                write_all(1, data)
            except BrokenPipeError:
                break
    if 0 in rl:
        data = os.read(0, 65536)
        if not data:
            stdin_open = False
            pending += b'\x04'
        else:
            pending += data
    if 3 in rl:
        data = os.read(3, 4096)
        if not data:
            ctl_open = False
        ctl_buf += data
        while b'\n' in ctl_buf:
            line, ctl_buf = ctl_buf.split(b'\n', 1)
            try:
                cols, rows = (int(x) for x in line.split())
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
            except (ValueError, OSError):
                pass
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;

/** The Debian python3, not whatever a login shell's PATH would pick. */
export function pythonPath(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}
