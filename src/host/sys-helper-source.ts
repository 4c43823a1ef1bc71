/**
 * The program sys-helper.ts runs: python3 (a runtime dependency already, see
 * runtime/tty-helper.ts) calling mount(2), umount2(2), unshare(2) and setns(2) through
 * ctypes. Node has no binding for these, and each `mount`/`umount`/`unshare`/`nsenter`
 * spawned from the daemon cost 5–12 ms here (a fork of a ~100 MB process, then
 * util-linux parsing the whole mount table, which grows with every pod). One
 * long-lived helper answers each request in well under a millisecond.
 *
 * It also starts the short-lived programs of the hot paths (runc, CNI plugins, conmon):
 * Node forks the whole daemon for each child (fork(2) copies the page tables of a
 * ~100 MB process; a spawn of /bin/true cost 7 ms quiet, 12–15 ms under load here),
 * while python's subprocess uses vfork(2) (1.5–3 ms for the same).
 *
 * Protocol: one JSON object a line on stdin, {"id": N, "op": "...", ...}; one JSON line
 * a reply on stdout, {"id": N, "ok": true, ...} or {"id": N, "ok": false, "errno": E,
 * "error": "..."}. The syscall ops are served one at a time, in order, on the main
 * thread; run and conmon each get a thread of their own (they wait on a child, with the
 * GIL released), so a slow CNI plugin never holds up a mount.
 *
 * Ops:
 *   mount   {source, target, fstype, flags: [names], data}
 *   umount  {target}: not mounted (EINVAL) or missing (ENOENT) is success, {"was": false};
 *           busy (EBUSY) falls back to a lazy detach, as `umount -l` does
 *   pin     {net?, ipc?, uts?, hostname?, sysctls: [[procSysPath, value]...]}: a forked
 *           child unshares the asked namespaces, bind-mounts each onto its file (as
 *           `unshare --net=FILE` does), then sets the hostname, brings lo up and writes
 *           the sysctls from inside them, and exits
 *   netdev  {netns}: /proc/net/dev as seen inside that network namespace (setns there
 *           and back: setns(2) moves only the calling thread, the main one, and run/conmon
 *           threads never serve syscall ops, so nothing else sees the switch)
 *   run     {file, args, env, cwd?, input?: base64, timeoutMs?, maxOutputBytes}: runs a
 *           program to its end; {exitCode, signal, stdout, stderr (base64), truncated,
 *           timedOut}. Killed (SIGKILL) at its timeout or on a cancel.
 *   conmon  {file, args, env, cwd, timeoutMs}: starts conmon with a sync and a start pipe
 *           (their fd numbers in _OCI_SYNCPIPE/_OCI_STARTPIPE), in a session of its own,
 *           writes the start byte and waits for the container's pid on the sync pipe:
 *           {pid} or {pid: -1, message, stderr}. conmon double-forks: the monitor outlives
 *           this helper and is reaped by the daemon's subreaper.
 *   cancel  {target}: kills the child of the run/conmon request with that id, if any
 *   execfifo {path, pid, timeoutMs}: starts a runc-created container the way `runc start`
 *           does it (libcontainer's exec()): open the container's exec.fifo for reading,
 *           which lets the waiting `runc init` write a byte and exec the process; read to
 *           EOF (the exec closed the fifo), then remove the fifo, which is what makes
 *           runc report the container running. {started: false} when there is no fifo
 *           (another runtime's layout, or not a created container): the caller runs the
 *           runtime's start instead. The init gone before writing is an error, as in runc.
 */
export const SYS_HELPER_SOURCE = String.raw`
import base64, ctypes, json, os, select, selectors, signal, socket, struct, subprocess, sys, threading, time, fcntl
libc = ctypes.CDLL(None, use_errno=True)
# Die with the daemon (PR_SET_PDEATHSIG = 1, SIGKILL); stdin EOF also ends the loop.
libc.prctl(1, 9)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
FLAGS = {'ro': 1, 'nosuid': 2, 'nodev': 4, 'noexec': 8, 'bind': 4096, 'rec': 16384}
CLONE = {'net': 0x40000000, 'ipc': 0x08000000, 'uts': 0x04000000}
EINVAL, ENOENT, EBUSY, MNT_DETACH = 22, 2, 16, 2

class Fail(Exception):
    def __init__(self, err, what):
        super().__init__(what)
        self.err = err

def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise Fail(e, '%s: %s' % (what, os.strerror(e)))

def b(s):
    return None if s is None else s.encode()

def do_mount(r):
    flags = 0
    for f in r.get('flags', []):
        flags |= FLAGS[f]
    check(libc.mount(b(r['source']), b(r['target']), b(r.get('fstype')), flags, b(r.get('data'))),
          'mount %s on %s' % (r.get('fstype') or r['source'], r['target']))
    return {}

def do_umount(r):
    # Until nothing is mounted there: a path mounted twice (a retried step) comes clean too.
    t = b(r['target'])
    was, lazy = False, False
    for _ in range(16):
        if libc.umount2(t, 0) == 0:
            was = True
            continue
        e = ctypes.get_errno()
        if e in (EINVAL, ENOENT):
            return {'was': was, 'lazy': lazy}
        if e != EBUSY:
            raise Fail(e, 'umount %s: %s' % (r['target'], os.strerror(e)))
        check(libc.umount2(t, MNT_DETACH), 'umount -l %s' % r['target'])
        was, lazy = True, True
    raise Fail(EBUSY, 'umount %s: still mounted after 16 unmounts' % r['target'])

def lo_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack('16sH14s', b'lo', 0, b'')
        flags = struct.unpack('16sH14s', fcntl.ioctl(s, 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack('16sH14s', b'lo', flags | 1, b''))  # SIOCSIFFLAGS, IFF_UP
    finally:
        s.close()

def pin_child(r, w):
    kinds = [k for k in ('net', 'ipc', 'uts') if r.get(k)]
    flags = 0
    for k in kinds:
        flags |= CLONE[k]
    check(libc.unshare(flags), 'unshare ' + ','.join(kinds))
    for k in kinds:
        check(libc.mount(b('/proc/self/ns/' + k), b(r[k]), None, FLAGS['bind'], None), 'pin %s namespace on %s' % (k, r[k]))
    if r.get('uts') and r.get('hostname'):
        h = b(r['hostname'])
        check(libc.sethostname(h, len(h)), 'set hostname')
    if r.get('net'):
        lo_up()
    for path, value in r.get('sysctls', []):
        with open('/proc/sys/' + path, 'w') as f:
            f.write(value)

def do_pin(r):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        code = 0
        try:
            pin_child(r, wr)
        except Fail as e:
            os.write(wr, json.dumps({'errno': e.err, 'error': str(e)}).encode())
            code = 1
        except OSError as e:
            os.write(wr, json.dumps({'errno': e.errno or 0, 'error': '%s: %s' % (e.filename or 'pin', e.strerror)}).encode())
            code = 1
        except BaseException as e:
            os.write(wr, json.dumps({'errno': 0, 'error': repr(e)}).encode())
            code = 1
        os._exit(code)
    os.close(wr)
    out = b''
    while True:
        chunk = os.read(rd, 65536)
        if not chunk:
            break
        out += chunk
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        info = json.loads(out) if out else {'errno': 0, 'error': 'pin child ended with status %d' % status}
        raise Fail(info['errno'], info['error'])
    return {}

def do_netdev(r):
    target = os.open(r['netns'], os.O_RDONLY)
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        check(libc.setns(target, CLONE['net']), 'enter %s' % r['netns'])
        try:
            with open('/proc/self/net/dev') as f:
                text = f.read()
        finally:
            # Back home, or this helper would serve every later request from the pod's netns.
            if libc.setns(home, CLONE['net']) != 0:
                os._exit(70)
        return {'text': text}
    finally:
        os.close(target)
        os.close(home)

def b64(data):
    return base64.b64encode(data).decode()

CHILDREN = {}  # request id -> Popen, for cancel
CHILDREN_LOCK = threading.Lock()

def track(rid, proc):
    with CHILDREN_LOCK:
        CHILDREN[rid] = proc

def untrack(rid):
    with CHILDREN_LOCK:
        CHILDREN.pop(rid, None)

def do_run(r):
    inp = base64.b64decode(r['input']) if r.get('input') is not None else None
    proc = subprocess.Popen([r['file']] + r['args'], env=r['env'], cwd=r.get('cwd'),
                            stdin=subprocess.PIPE if inp is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    track(r['id'], proc)
    timed_out = False
    try:
        try:
            out, err = proc.communicate(inp, timeout=r['timeoutMs'] / 1000.0 if r.get('timeoutMs') else None)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            out, err = proc.communicate()
        except BrokenPipeError:
            out, err = proc.communicate()
    finally:
        untrack(r['id'])
    cap = r.get('maxOutputBytes') or (4 << 20)
    code = proc.returncode
    return {'exitCode': code if code >= 0 else None, 'signal': -code if code < 0 else None,
            'stdout': b64(out[:cap]), 'stderr': b64(err[:cap]),
            'truncated': len(out) > cap or len(err) > cap, 'timedOut': timed_out}

def do_conmon(r):
    sync_r, sync_w = os.pipe()
    start_r, start_w = os.pipe()
    env = dict(r['env'])
    env['_OCI_SYNCPIPE'] = str(sync_w)
    env['_OCI_STARTPIPE'] = str(start_r)
    try:
        proc = subprocess.Popen([r['file']] + r['args'], env=env, cwd=r.get('cwd'), pass_fds=(sync_w, start_r),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    finally:
        os.close(sync_w)
        os.close(start_r)
    track(r['id'], proc)
    deadline = time.monotonic() + r['timeoutMs'] / 1000.0
    stderr, buf, found = b'', b'', None
    sel = selectors.DefaultSelector()
    try:
        os.write(start_w, b'0')
        sel.register(sync_r, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        sync_open = True
        while found is None and sync_open:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                return {'pid': -1, 'timedOut': True, 'message': '', 'stderr': stderr.decode(errors='replace')}
            for key, _ in sel.select(left):
                if key.fileobj is proc.stderr:
                    chunk = os.read(proc.stderr.fileno(), 65536)
                    if not chunk:
                        sel.unregister(proc.stderr)
                    elif len(stderr) < 8192:
                        stderr += chunk
                    continue
                chunk = os.read(sync_r, 65536)
                if not chunk:
                    sync_open = False
                    break
                buf += chunk
                while found is None and b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        found = json.loads(line)
                    except ValueError:
                        continue
        if found is None:
            # The sync pipe closed without a pid: let stderr drain a moment so the error says why.
            end = time.monotonic() + 0.1
            while proc.stderr.fileno() in [k.fd for k in sel.get_map().values()] and time.monotonic() < end:
                for key, _ in sel.select(end - time.monotonic()):
                    chunk = os.read(proc.stderr.fileno(), 65536)
                    if not chunk:
                        sel.unregister(proc.stderr)
                    elif len(stderr) < 8192:
                        stderr += chunk
            return {'pid': -1, 'closed': True, 'message': '', 'stderr': stderr.decode(errors='replace')}
        pid = found.get('data', found.get('pid', -1))
        return {'pid': pid if isinstance(pid, int) else -1, 'message': found.get('message') or '',
                'stderr': stderr.decode(errors='replace')}
    finally:
        untrack(r['id'])
        sel.close()
        os.close(sync_r)
        os.close(start_w)
        proc.stderr.close()
        # The first conmon exits once it has forked the monitor; reap it off this thread's path.
        threading.Thread(target=proc.wait, daemon=True).start()

def do_cancel(r):
    with CHILDREN_LOCK:
        proc = CHILDREN.get(r['target'])
    if proc is not None:
        try:
            proc.kill()
        except OSError:
            pass
    return {'was': proc is not None}

def init_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False

def do_execfifo(r):
    path, pid = r['path'], r['pid']
    try:
        # Non-blocking: with no writer (the init died) a blocking open would wait for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {'started': False}
    deadline = time.monotonic() + r['timeoutMs'] / 1000.0
    data = b''
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            if time.monotonic() > deadline:
                raise Fail(110, 'start: the container process did not take its start signal within %d ms' % r['timeoutMs'])
            if not poller.poll(100):
                # Quiet for 100 ms: is the init still there to write? (runc checks the same.)
                if not init_alive(pid):
                    break
                continue
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                continue
            if not chunk:
                # POLLHUP before any writer came is not possible (Linux counts writers
                # since the open); EOF after the byte means the exec happened.
                if data or not init_alive(pid):
                    break
                continue
            data += chunk
    finally:
        os.close(fd)
    if not data:
        raise Fail(0, 'cannot start the container: its process is already gone')
    os.unlink(path)
    return {'started': True}

OPS = {'mount': do_mount, 'umount': do_umount, 'pin': do_pin, 'netdev': do_netdev, 'run': do_run, 'conmon': do_conmon, 'cancel': do_cancel, 'execfifo': do_execfifo}
THREADED = {'run', 'conmon', 'execfifo'}
out = sys.stdout
out_lock = threading.Lock()

def serve(r):
    try:
        reply = OPS[r['op']](r)
        reply['id'] = r['id']
        reply['ok'] = True
    except Fail as e:
        reply = {'id': r['id'], 'ok': False, 'errno': e.err, 'error': str(e)}
    except OSError as e:
        reply = {'id': r['id'], 'ok': False, 'errno': e.errno or 0, 'error': '%s: %s' % (e.filename or r['op'], e.strerror)}
    except Exception as e:
        reply = {'id': r['id'], 'ok': False, 'errno': 0, 'error': repr(e)}
    text = json.dumps(reply) + '\n'
    with out_lock:
        out.write(text)
        out.flush()

for line in sys.stdin:
    r = json.loads(line)
    if r.get('op') in THREADED:
        threading.Thread(target=serve, args=(r,), daemon=True).start()
    else:
        serve(r)
`;
