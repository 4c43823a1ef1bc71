/**
 * The program sys-helper.ts runs: python3 (a runtime dependency already, see
 * runtime/tty-helper.ts) calling mount(2), umount2(2), unshare(2) and setns(2) through
 * ctypes. Node has no binding for these, and each `mount`/`umount`/`unshare`/`nsenter`
 * spawned from the daemon cost 5–12 ms here (a fork of a ~100 MB process, then
 * util-linux parsing the whole mount table, which grows with every pod). One
 * long-lived helper answers each request in well under a millisecond.
 *
 * Protocol: one JSON object a line on stdin, {"id": N, "op": "...", ...}; one JSON line
 * a reply on stdout, {"id": N, "ok": true, ...} or {"id": N, "ok": false, "errno": E,
 * "error": "..."}. The syscall ops are served one at a time, in order, on the main
 * thread; execfifo gets a thread of its own (it waits on a container's process, with
 * the GIL released), so a slow start never holds up a mount.
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
 *           and back: setns(2) moves only the calling thread, the main one, and the
 *           execfifo threads never serve syscall ops, so nothing else sees the switch)
 *   execfifo {path, pid, timeoutMs}: starts a runc-created container the way `runc start`
 *           does it (libcontainer's exec()): open the container's exec.fifo for reading,
 *           which lets the waiting `runc init` write a byte and exec the process; read to
 *           EOF (the exec closed the fifo), then remove the fifo, which is what makes
 *           runc report the container running. {started: false} when there is no fifo
 *           (another runtime's layout, or not a created container): the caller runs the
 *           runtime's start instead. The init gone before writing is an error, as in runc.
 *   userns  {user, uidMappings, gidMappings: [[containerId, hostId, length]...], net?, ipc?,
 *           uts?, hostname?, sysctls?}: a pod's user namespace with exactly these mappings,
 *           pinned on the file user, and the asked net/ipc/uts namespaces made INSIDE it
 *           (so the pod's root owns them: sysfs, mqueue and /proc can be mounted by runc
 *           in the container). A forked child unshares the user namespace and waits; this
 *           process writes its uid_map/gid_map from outside (setgroups stays "allow", as
 *           a privileged writer may, so containers can set supplementary groups); the
 *           child becomes root inside, unshares the others, sets hostname, lo and sysctls;
 *           this process bind-mounts each of the child's namespaces onto its file. Served
 *           on the main thread, like pin (whose fork it shares the reasoning of).
 *   idmap   {source, target, userns}: an idmapped mount of source at target, as the
 *           user namespace pinned at userns maps ids: open_tree(OPEN_TREE_CLONE),
 *           mount_setattr(MOUNT_ATTR_IDMAP), move_mount. Not recursive: the clone holds
 *           source's own mount only (a submount on another filesystem may not idmap).
 *
 * Why python's ctypes for these rather than a small C program built by make: python3 is
 * a runtime dependency already, so no compiler is needed where Cricket is installed, and
 * the helper stays one long-lived process (see above). open_tree, move_mount and
 * mount_setattr are called through syscall(2) by number (428, 429, 442: the same on
 * every architecture, as all syscalls added since 5.1), so no glibc version is needed
 * (their wrappers came with 2.36).
 */
export const SYS_HELPER_SOURCE = String.raw`
import ctypes, json, os, select, socket, struct, sys, threading, time, fcntl
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
CLONE_NEWUSER = 0x10000000
libc.syscall.restype = ctypes.c_long
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_FDCWD, AT_EMPTY_PATH = 1, 0o2000000, -100, 0x1000
MOVE_MOUNT_F_EMPTY_PATH, MOUNT_ATTR_IDMAP = 0x4, 0x00100000
libc.setresuid.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
libc.setresgid.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
libc.setgroups.argtypes = [ctypes.c_size_t, ctypes.c_void_p]

class MountAttr(ctypes.Structure):
    _fields_ = [('attr_set', ctypes.c_uint64), ('attr_clr', ctypes.c_uint64), ('propagation', ctypes.c_uint64), ('userns_fd', ctypes.c_uint64)]

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

def pin_child(r, w, mount_here=True):
    kinds = [k for k in ('net', 'ipc', 'uts') if r.get(k)]
    flags = 0
    for k in kinds:
        flags |= CLONE[k]
    if flags:
        check(libc.unshare(flags), 'unshare ' + ','.join(kinds))
    # Inside a new user namespace the mount is the parent's to do (it owns the mount namespace).
    for k in kinds if mount_here else []:
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

def sys_check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise Fail(e, '%s: %s' % (what, os.strerror(e)))
    return rc

def do_idmap(r):
    src, target = r['source'], r['target']
    tree = sys_check(libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), ctypes.c_char_p(b(src)), ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)), 'open_tree %s' % src)
    try:
        ufd = os.open(r['userns'], os.O_RDONLY | os.O_CLOEXEC)
        try:
            attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, ufd)
            sys_check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(tree), ctypes.c_char_p(b''), ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
                      'idmap %s (mount_setattr MOUNT_ATTR_IDMAP)' % src)
        finally:
            os.close(ufd)
        sys_check(libc.syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_int(tree), ctypes.c_char_p(b''), ctypes.c_int(AT_FDCWD), ctypes.c_char_p(b(target)), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)),
                  'move_mount %s to %s' % (src, target))
    finally:
        os.close(tree)
    return {}

def read_byte(fd):
    c = os.read(fd, 65536)
    if c[:1] == b'{':
        info = json.loads(c)
        raise Fail(info['errno'], info['error'])
    return c

def userns_child(r, rd, wr):
    check(libc.unshare(CLONE_NEWUSER), 'unshare user')
    os.write(wr, b'u')
    if os.read(rd, 1) != b'm':
        os._exit(1)
    # Root inside from here: the other namespaces are the new user namespace's own.
    check(libc.setgroups(0, None), 'setgroups')
    check(libc.setresgid(0, 0, 0), 'setresgid 0')
    check(libc.setresuid(0, 0, 0), 'setresuid 0')
    pin_child(r, None, mount_here=False)
    os.write(wr, b'n')
    os.read(rd, 1)  # until the parent has pinned them (or gone)

def do_userns(r):
    p2c_r, p2c_w = os.pipe()
    c2p_r, c2p_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(p2c_w)
        os.close(c2p_r)
        try:
            userns_child(r, p2c_r, c2p_w)
            os._exit(0)
        except Fail as e:
            os.write(c2p_w, json.dumps({'errno': e.err, 'error': str(e)}).encode())
        except OSError as e:
            os.write(c2p_w, json.dumps({'errno': e.errno or 0, 'error': '%s: %s' % (e.filename or 'userns', e.strerror)}).encode())
        except BaseException as e:
            os.write(c2p_w, json.dumps({'errno': 0, 'error': repr(e)}).encode())
        os._exit(1)
    os.close(p2c_r)
    os.close(c2p_w)
    try:
        if read_byte(c2p_r) != b'u':
            raise Fail(0, 'the user namespace child ended early')
        for kind in ('uid', 'gid'):
            lines = ''.join('%d %d %d\n' % (int(c), int(h), int(n)) for c, h, n in r[kind + 'Mappings'])
            with open('/proc/%d/%s_map' % (pid, kind), 'w') as f:
                f.write(lines)
        os.write(p2c_w, b'm')
        if read_byte(c2p_r) != b'n':
            raise Fail(0, 'the user namespace child ended early')
        for k in ('user', 'net', 'ipc', 'uts'):
            if r.get(k):
                check(libc.mount(b('/proc/%d/ns/%s' % (pid, k)), b(r[k]), None, FLAGS['bind'], None), 'pin %s namespace on %s' % (k, r[k]))
    finally:
        os.close(p2c_w)  # the child's last read returns: it exits
        os.close(c2p_r)
        os.waitpid(pid, 0)
    return {}


OPS = {'mount': do_mount, 'umount': do_umount, 'pin': do_pin, 'netdev': do_netdev, 'execfifo': do_execfifo, 'userns': do_userns, 'idmap': do_idmap}
THREADED = {'execfifo'}
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
