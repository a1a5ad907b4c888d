/**
 * Finds the real peer tools berth is tested against (installed by scripts/install-peers.sh).
 * Each name maps to fixed install paths, never a PATH search: `docker` must be Debian's 20.10
 * client in /usr/bin, not whatever else sits earlier on PATH.
 */
import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import type { TestContext } from 'node:test';

export type PeerName =
  | 'docker' | 'dockerd' | 'skopeo' | 'umoci' | 'tar-split' | 'registry' | 'busybox' | 'zstd' | 'gzip' | 'pigz';

const CANDIDATES: Readonly<Record<PeerName, readonly string[]>> = {
  // /usr/local/bin/docker is a different (newer) client; the tests pin Debian's docker.io.
  docker: ['/usr/bin/docker'],
  dockerd: ['/usr/sbin/dockerd', '/usr/bin/dockerd'],
  skopeo: ['/usr/bin/skopeo'],
  umoci: ['/usr/bin/umoci'],
  'tar-split': ['/usr/bin/tar-split'],
  // Debian's docker-registry package installs the distribution registry under this name.
  registry: ['/usr/bin/docker-registry', '/usr/bin/registry'],
  // From busybox-static: it must run inside an image with no libc.
  busybox: ['/bin/busybox', '/usr/bin/busybox'],
  zstd: ['/usr/bin/zstd'],
  gzip: ['/usr/bin/gzip', '/bin/gzip'],
  pigz: ['/usr/bin/pigz'],
};

const cache = new Map<PeerName, string | undefined>();

/** The absolute path of an installed peer binary, or undefined when it is missing. */
export function peerPath(name: PeerName): string | undefined {
  if (cache.has(name)) return cache.get(name);
  const found = (CANDIDATES[name] ?? []).find((p) => isExecutable(p) && (name !== 'busybox' || isStaticElf(p)));
  cache.set(name, found);
  return found;
}

/** Like peerPath, but throws when the peer is missing (for helpers that already checked needPeer). */
export function requirePeer(name: PeerName): string {
  const p = peerPath(name);
  if (p === undefined) throw new Error(`peer tool ${name} is not installed (run scripts/install-peers.sh)`);
  return p;
}

/**
 * True when the peer is installed. When it is missing, a CI run (CI=true) fails the test, since
 * CI installs every peer; elsewhere the test is skipped and false is returned.
 */
export function needPeer(t: TestContext, name: PeerName): boolean {
  if (peerPath(name) !== undefined) return true;
  if (process.env.CI === 'true') {
    throw new Error(`peer tool ${name} is missing and CI requires it (run scripts/install-peers.sh)`);
  }
  t.diagnostic(`missing peer tool: ${name}`);
  t.skip('a peer tool is not installed (run scripts/install-peers.sh)');
  return false;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True for an ELF executable with no PT_INTERP program header (no dynamic loader needed). */
function isStaticElf(p: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(p, 'r');
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64) return false;
    if (head.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, at: number): number => (le ? b.readUInt16LE(at) : b.readUInt16BE(at));
    const u32 = (b: Buffer, at: number): number => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (u32(table, i * phentsize) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * True when running as root (dockerd, mounts and device nodes need it). Elsewhere the test is
 * skipped; in CI (CI=true), which runs as root, not being root fails it.
 */
export function needRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('these tests need root and CI requires them');
  t.skip('needs root');
  return false;
}
