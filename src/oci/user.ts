import { invalidArgument } from '../core/errors.js';

/** A user as the OCI process wants it, with the home directory from /etc/passwd when known. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  /** The name the user was given by, for ContainerStatus. */
  username: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]! });
  }
  return out;
}

export function parseGroup(text: string): { name: string; gid: number; members: string[] }[] {
  const out: { name: string; gid: number; members: string[] }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}

const ID = /^\d+$/;
const MAX_ID = 2 ** 32 - 2;

function checkId(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_ID) throw invalidArgument(`${what} ${n} is out of range 0..${MAX_ID}`);
  return n;
}

/**
 * Who the container runs as. The CRI's run_as_user / run_as_username win over the
 * image USER; names are looked up in the image's /etc/passwd and /etc/group (text
 * given by the caller, read from the container's rootfs). Supplementary groups are
 * the primary gid, then the user's groups in the image (policy Merge, not Strict), then
 * the CRI's.
 */
export function resolveUser(input: {
  runAsUser?: bigint | undefined;
  runAsGroup?: bigint | undefined;
  runAsUsername: string;
  imageUser: string | undefined;
  supplementalGroups: readonly bigint[];
  strictGroups: boolean;
  passwd: string | undefined;
  group: string | undefined;
}): ResolvedUser {
  if (input.runAsGroup !== undefined && input.runAsUser === undefined && !input.runAsUsername) {
    throw invalidArgument('run_as_group is set without run_as_user or run_as_username; a group needs a user');
  }
  const users = parsePasswd(input.passwd ?? '');
  const groups = parseGroup(input.group ?? '');
  let userPart: string;
  let groupPart: string | undefined;
  let from: 'cri' | 'image';
  if (input.runAsUser !== undefined) {
    userPart = String(input.runAsUser);
    from = 'cri';
    if (input.runAsUser < 0n) throw invalidArgument(`run_as_user ${input.runAsUser} is negative`);
  } else if (input.runAsUsername) {
    userPart = input.runAsUsername;
    from = 'cri';
  } else {
    const u = input.imageUser ?? '';
    const i = u.indexOf(':');
    userPart = i >= 0 ? u.slice(0, i) : u;
    groupPart = i >= 0 ? u.slice(i + 1) : undefined;
    from = 'image';
  }
  if (userPart === '') userPart = '0';
  let uid: number;
  let gid: number | undefined;
  let home = '/';
  let username: string;
  if (ID.test(userPart)) {
    uid = checkId(Number(userPart), 'user id');
    const e = users.find((x) => x.uid === uid);
    gid = e?.gid;
    home = e?.home ?? '/';
    username = e?.name ?? '';
  } else {
    const e = users.find((x) => x.name === userPart);
    if (!e) {
      const where = from === 'cri' ? 'run_as_username' : 'the image USER';
      throw invalidArgument(`user "${userPart}" (${where}) is not in the image's /etc/passwd; use a numeric id or a user the image defines`);
    }
    uid = e.uid;
    gid = e.gid;
    home = e.home;
    username = e.name;
  }
  if (input.runAsGroup !== undefined) {
    if (input.runAsGroup < 0n) throw invalidArgument(`run_as_group ${input.runAsGroup} is negative`);
    gid = checkId(Number(input.runAsGroup), 'group id');
  } else if (groupPart !== undefined && groupPart !== '') {
    if (ID.test(groupPart)) gid = checkId(Number(groupPart), 'group id');
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`group "${groupPart}" (the image USER) is not in the image's /etc/group`);
      gid = g.gid;
    }
  }
  const finalGid = gid ?? 0;
  // The primary gid is among the additional ones, as containerd and Docker set it: the
  // process then keeps its own group in its list (id: groups=0(root),10(wheel),...).
  const extra = new Set<number>([finalGid]);
  if (!input.strictGroups && username) {
    for (const g of groups) if (g.members.includes(username)) extra.add(g.gid);
  }
  for (const g of input.supplementalGroups) {
    if (g < 0n) throw invalidArgument(`supplemental group ${g} is negative`);
    extra.add(checkId(Number(g), 'supplemental group'));
  }
  return { uid, gid: finalGid, additionalGids: [...extra], home, username };
}
