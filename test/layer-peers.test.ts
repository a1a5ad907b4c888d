/**
 * The layer engine against real peers: an image built by a private dockerd 20.10 (multi-layer,
 * with a modified file, a deleted file, a replaced directory, a hard link, a symlink and a setuid
 * file) is unpacked by berth, by umoci (from an OCI layout made by skopeo) and by docker itself
 * (`docker create` + `docker export`); the trees must be the same. `berth export` must have the
 * same entries and contents as `docker export`, and `berth layers` the diff_ids docker reports.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { exportFlattenedToFile, layersOf, listFiles, readFile as readImageFile, unpack } from '../src/index.js';
import { readTar } from '../src/tar/reader.js';
import { APP_IMAGE, buildTestImages, startDockerd, type Dockerd, type TestImages } from './support/docker.js';
import { needPeer, requirePeer, needRoot } from './support/peers.js';

const run = promisify(execFile);
const TMP_BASE = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

/** Files docker adds to every container (not part of the image). */
function dockerAdded(p: string): boolean {
  return ['.dockerenv', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'etc/mtab', 'dev', 'proc', 'sys'].includes(p)
    || p.startsWith('dev/') || p.startsWith('proc/') || p.startsWith('sys/');
}


interface Fact {
  readonly type: string;
  readonly mode: string;
  readonly owner: string;
  readonly size: number;
  readonly link?: string;
  readonly sha256?: string;
  /** Other paths sharing the inode (hard links), sorted. */
  readonly links?: string;
}

/** path → facts of a directory tree (the root itself excluded). */
async function treeFacts(dir: string, ignore: (p: string) => boolean = () => false): Promise<Map<string, Fact>> {
  const out = new Map<string, Fact>();
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(path.join(dir, rel))) {
      const p = rel === '' ? name : `${rel}/${name}`;
      if (ignore(p)) continue;
      const abs = path.join(dir, p);
      const s = await lstat(abs);
      const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : 'other';
      const fact: Fact = {
        type, mode: (s.mode & 0o7777).toString(8), owner: `${s.uid}:${s.gid}`, size: type === 'file' ? s.size : 0,
        ...(type === 'symlink' ? { link: await readlink(abs) } : {}),
        ...(type === 'file' ? { sha256: createHash('sha256').update(await readFile(abs)).digest('hex') } : {}),
      };
      out.set(p, fact);
      if (type === 'file' && s.nlink > 1) inodes.set(s.ino, [...(inodes.get(s.ino) ?? []), p]);
      if (type === 'dir') await walk(p);
    }
  };
  await walk('');
  for (const group of inodes.values()) {
    for (const p of group) out.set(p, { ...out.get(p)!, links: group.filter((q) => q !== p).sort().join(',') });
  }
  return out;
}

function sortedObject(m: Map<string, Fact>): Record<string, Fact> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** A tar's entries as path → facts; hard-link entries take their target's content. */
async function tarFacts(file: string, ignore: (p: string) => boolean): Promise<Map<string, Fact>> {
  const out = new Map<string, Fact>();
  const links: Array<[string, string]> = [];
  const bytes = await readFile(file);
  for await (const e of readTar((async function* () { yield bytes; })())) {
    const h = e.header;
    const p = h.name.replace(/^\.\//, '').replace(/\/$/, '');
    if (p === '' || ignore(p)) continue;
    const base = { mode: (h.mode & 0o7777).toString(8), owner: `${h.uid}:${h.gid}` };
    if (h.type === 'link') {
      links.push([p, h.linkname.replace(/^\.\//, '')]);
      continue;
    }
    const hash = createHash('sha256');
    for await (const c of e.body()) hash.update(c);
    out.set(p, {
      type: h.type === 'directory' ? 'dir' : h.type, ...base, size: h.type === 'file' ? h.size : 0,
      ...(h.type === 'symlink' ? { link: h.linkname } : {}),
      ...(h.type === 'file' ? { sha256: hash.digest('hex') } : {}),
    });
  }
  const groups = new Map<string, string[]>();
  for (const [p, target] of links) {
    out.set(p, { ...out.get(target)! });
    groups.set(target, [...(groups.get(target) ?? [target]), p]);
  }
  for (const group of groups.values()) {
    for (const p of group) out.set(p, { ...out.get(p)!, links: group.filter((q) => q !== p).sort().join(',') });
  }
  return out;
}

interface World {
  readonly d: Dockerd;
  readonly images: TestImages;
  readonly work: string;
  readonly ref: string;
}

let world: Promise<World> | undefined;

/** One daemon, one build and one `docker save` for all tests of this file. */
function getWorld(): Promise<World> {
  world ??= (async () => {
    const d = await startDockerd();
    try {
      const images = await buildTestImages(d);
      const work = await mkdtemp(path.join(TMP_BASE, 'berth-layer-peers-'));
      const archive = path.join(work, 'app.tar');
      await d.docker(['save', '-o', archive, APP_IMAGE]);
      return { d, images, work, ref: `docker-archive:${archive}` };
    } catch (err) {
      await d.stop();
      throw err;
    }
  })();
  return world;
}

function needAll(t: TestContext, ...more: Parameters<typeof needPeer>[1][]): boolean {
  for (const p of ['dockerd', 'docker', 'busybox', ...more] as const) if (!needPeer(t, p)) return false;
  return needRoot(t);
}

test.after(async () => {
  if (world === undefined) return;
  const w = await world.catch(() => undefined);
  if (w === undefined) return;
  await w.d.stop();
  await rm(w.work, { recursive: true, force: true });
});

test('berth layers: diff_ids equal the config\'s and what dockerd reports; whiteouts as built', { timeout: 600_000 }, async (t) => {
  if (!needAll(t)) return;
  const w = await getWorld();
  t.diagnostic(`storage driver: ${w.d.driver}`);
  const r = await layersOf(w.ref);
  const reported = JSON.parse((await w.d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', APP_IMAGE])).stdout) as string[];
  assert.deepEqual(r.layers.map((l) => l.diffId), reported);
  assert.equal(r.layers.length, w.images.layers.length);
  for (const [i, facts] of w.images.layers.entries()) {
    const l = r.layers[i]!;
    assert.equal(l.whiteouts, facts.whiteouts.length, `layer ${i} (${facts.summary}) whiteouts`);
    assert.equal(l.opaqueDirs, facts.opaqueDirs.length, `layer ${i} (${facts.summary}) opaque dirs`);
  }
  // Layer 1 stores old.txt, data/a and data/b and config.ini (version=1), all gone or overwritten later.
  assert.equal(r.layers[1]!.wastedBytes, 'to be deleted\n'.length + 2 + 2 + 'version=1\n'.length);
  const ls = await listFiles(w.ref, { path: '/app', recursive: true });
  for (const f of w.images.files.filter((x) => x.path.startsWith('app/'))) {
    const e = ls.entries.find((x) => x.path === `/${f.path}`);
    assert.ok(e, `missing /${f.path}`);
    if (f.type === 'file') assert.equal(e.mode, f.mode, `mode of ${f.path}`);
    if (f.type === 'symlink') assert.equal(e.linkTarget, f.target);
  }
  for (const p of w.images.absent) assert.ok(!ls.entries.some((x) => x.path === `/${p}`), `${p} should be absent`);
  const hello = await readImageFile(w.ref, '/app/hello.txt');
  const chunks: Uint8Array[] = [];
  for await (const c of hello.stream) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), 'hello from berth\n');
});

test('berth unpack gives the same tree as umoci unpack and as docker export', { timeout: 600_000 }, async (t) => {
  if (!needAll(t, 'skopeo', 'umoci')) return;
  const w = await getWorld();
  const base = await mkdtemp(path.join(w.work, 'unpack-'));
  const berthDir = path.join(base, 'berth');
  await unpack(w.ref, berthDir);

  const oci = path.join(base, 'oci');
  await run(requirePeer('skopeo'), ['copy', '--quiet', `${w.ref}`, `oci:${oci}:app`]);
  const bundle = path.join(base, 'bundle');
  await run(requirePeer('umoci'), ['unpack', '--image', `${oci}:app`, bundle]);

  const name = `bl-${process.pid}`;
  await w.d.docker(['create', '--name', name, APP_IMAGE]);
  const exported = path.join(base, 'export.tar');
  try {
    await w.d.docker(['export', '-o', exported, name]);
  } finally {
    await w.d.docker(['rm', name]);
  }
  const dockerDir = path.join(base, 'docker');
  await mkdir(dockerDir);
  await run('tar', ['--numeric-owner', '-xpf', exported, '-C', dockerDir]);

  const ours = await treeFacts(berthDir);
  const umoci = await treeFacts(path.join(bundle, 'rootfs'));
  const docker = await treeFacts(dockerDir, dockerAdded);
  t.diagnostic(`berth unpacked ${ours.size} paths; umoci ${umoci.size}; docker export ${docker.size}`);
  assert.deepEqual(sortedObject(ours), sortedObject(umoci), 'berth unpack differs from umoci unpack');
  assert.deepEqual(sortedObject(ours), sortedObject(docker), 'berth unpack differs from docker export');
  assert.equal(ours.get('app/bin/tool')?.links, 'app/bin/tool-hardlink');
  assert.equal(ours.get('app/bin/suid')?.mode, '4755');
});

test('berth export has the same entries and contents as docker export', { timeout: 600_000 }, async (t) => {
  if (!needAll(t)) return;
  const w = await getWorld();
  const base = await mkdtemp(path.join(w.work, 'export-'));
  const ours = path.join(base, 'berth.tar');
  await exportFlattenedToFile(w.ref, ours);
  const name = `be-${process.pid}`;
  await w.d.docker(['create', '--name', name, APP_IMAGE]);
  const theirs = path.join(base, 'docker.tar');
  try {
    await w.d.docker(['export', '-o', theirs, name]);
  } finally {
    await w.d.docker(['rm', name]);
  }
  const a = await tarFacts(ours, () => false);
  const b = await tarFacts(theirs, dockerAdded);
  t.diagnostic(`berth export: ${a.size} entries; docker export: ${b.size} (after dropping what docker adds)`);
  assert.deepEqual(sortedObject(a), sortedObject(b));
});
