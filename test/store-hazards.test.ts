/**
 * The malicious-layer suite for `berth load` (the store's layer applier), the counterpart of
 * src/layer/extract.test.ts for `berth unpack`. Each hostile layer is built with the tar writer
 * and wrapped in a minimal OCI layout whose diff_ids are right (only the content is hostile),
 * on top of a benign base layer the root already holds. Then, for overlay2 and vfs, as root and
 * (with setpriv) as nobody on a root nobody owns:
 *
 * - nothing outside the root changed: a sentinel tree beside it (paths, types, modes, owners,
 *   contents, link counts, xattrs) and /etc/passwd are snapshotted before and after;
 * - inside the root, nothing changed but the new layers' own directories and berth's metadata
 *   (layerdb, imagedb, repositories.json, the `l/` link, the parent's `committed`);
 * - the load either succeeds with the hazard neutralised as dockerd (which applies layers in a
 *   chroot) would, and `store fsck` rebuilds every layer from tar-split, or fails with the named
 *   BerthError code and leaves the root byte-identical.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { ErrorCode } from '../src/core/errors.js';
import { DEFAULT_MAX_UNPACKED_BYTES, DEFAULT_MAX_UNPACKED_ENTRIES } from '../src/layer/extract.js';
import { compress } from '../src/io/codec.js';
import { toBytes, type ByteStream } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';
import { DEFAULT_LOAD_LIMITS, setStoreLoadLimits } from '../src/transports/store/apply.js';
import { berth, repoRoot } from './support/cli.js';

const exec = promisify(execFile);
const IS_ROOT = process.getuid?.() === 0;
const TMP_BASE = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const BIN = path.join(repoRoot, 'bin/berth');
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const GETFATTR = ['/usr/bin/getfattr', '/bin/getfattr'].find((p) => existsSync(p));
const NOBODY = 65534;
const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

type Driver = 'overlay2' | 'vfs';

interface Run {
  readonly driver: Driver;
  /** false: berth runs as nobody (setpriv) on a root nobody owns. */
  readonly privileged: boolean;
}

type E = Partial<TarWriteEntry['header']> & { name: string; body?: string | Uint8Array };

const text = (s: string) => new TextEncoder().encode(s);

function tarOf(entries: readonly E[]): ByteStream {
  return writeTar(entries.map((e): TarWriteEntry => {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const { body, ...header } = e;
    return { header: { ...header, type }, ...(type === 'file' ? { body: typeof body === 'string' ? text(body) : body ?? new Uint8Array(0) } : {}) };
  }));
}

function sha256(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A layer as it goes into the layout: the blob, its media type and the uncompressed diff_id. */
interface LayerBlob {
  readonly blob: Uint8Array;
  readonly mediaType: string;
  readonly diffId: string;
}

async function plainLayer(entries: readonly E[]): Promise<LayerBlob> {
  const tar = await toBytes(tarOf(entries));
  return { blob: tar, mediaType: 'application/vnd.oci.image.layer.v1.tar', diffId: sha256(tar) };
}

/** A minimal OCI layout holding one image named `docker.io/library/NAME:1`. */
async function makeLayout(dir: string, name: string, layers: readonly LayerBlob[]): Promise<string> {
  const layout = path.join(dir, name);
  await mkdir(path.join(layout, 'blobs/sha256'), { recursive: true });
  const put = async (b: Uint8Array | string) => {
    const bytes = typeof b === 'string' ? text(b) : b;
    const digest = sha256(bytes);
    await writeFile(path.join(layout, 'blobs/sha256', digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const config = await put(JSON.stringify({
    architecture: ARCH, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created_by: 'store-hazards' })),
  }));
  const descs = [];
  for (const l of layers) descs.push({ mediaType: l.mediaType, ...(await put(l.blob)) });
  const manifest = await put(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: descs,
  }));
  await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
      annotations: { 'io.containerd.image.name': `docker.io/library/${name}:1`, 'org.opencontainers.image.ref.name': '1' },
    }],
  }));
  return layout;
}

/** The benign layer every hostile image sits on (loaded first, so it is a lower layer already in the root). */
const BASE: readonly E[] = [
  { name: 'etc/' }, { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\n' }, { name: 'victim/' }, { name: 'victim/keep', body: 'keep\n' },
  { name: 'bin/' }, { name: 'bin/sh', body: '#!fake\n', mode: 0o755 },
];

interface Sandbox {
  readonly base: string;
  /** The data root. */
  readonly root: string;
  /** Files an escape would hit: base/sentinel/{secret,sub/file,link}. */
  readonly sentinel: string;
  /** Where the layouts go (outside the root, snapshotted too). */
  readonly inputs: string;
}

async function sandbox(t: TestContext, run: Run): Promise<Sandbox> {
  const base = await mkdtemp(path.join(TMP_BASE, 'berth-store-hz-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const sentinel = path.join(base, 'sentinel');
  const inputs = path.join(base, 'in');
  await mkdir(path.join(sentinel, 'sub'), { recursive: true });
  await mkdir(inputs);
  await writeFile(path.join(sentinel, 'secret'), 'secret\n', { mode: 0o600 });
  await writeFile(path.join(sentinel, 'sub/file'), 'sub\n');
  await exec('ln', ['-s', 'secret', path.join(sentinel, 'link')]);
  if (!run.privileged) await exec('chown', ['-R', '-h', `${NOBODY}:${NOBODY}`, base]);
  return { base, root: path.join(base, 'root'), sentinel, inputs };
}

/** `getfattr -R` of `dir` (symlinks not followed), as `xattr <path>` → its attributes. */
async function xattrsOf(dir: string, cwd: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (GETFATTR === undefined || !existsSync(dir)) return out;
  const { stdout } = await exec(GETFATTR, ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--', path.relative(cwd, dir) || '.'], { cwd, maxBuffer: 64 << 20 });
  for (const block of stdout.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l !== '');
    const head = lines.shift();
    if (head === undefined || !head.startsWith('# file: ')) continue;
    out.set(`xattr ${head.slice(8).replace(/^\.\//, '')}`, lines.join(' '));
  }
  return out;
}

/** Every path under `dir` (symlinks not followed): type, mode, owner, link count, content or target or device. */
async function tree(dir: string, skip?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string): Promise<void> => {
    const s = await lstat(p);
    const rel = path.relative(dir, p) || '.';
    let what = `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
    if (s.isDirectory()) what = `dir ${what}`;
    else if (s.isSymbolicLink()) what = `symlink ${what} -> ${await readlink(p)}`;
    else if (s.isFile()) what = `file ${what} n${s.nlink} ${sha256(await readFile(p))}`;
    else what = `node ${what} n${s.nlink} ${s.isFIFO() ? 'fifo' : s.isCharacterDevice() ? 'char' : 'block'} ${s.rdev}`;
    out.set(rel, what);
    if (s.isDirectory()) for (const n of (await readdir(p)).sort()) if (path.join(p, n) !== skip) await walk(path.join(p, n));
  };
  await walk(dir);
  return out;
}

/** Everything outside the root: the sandbox but the root, their xattrs, and /etc/passwd. */
async function outside(sb: Sandbox): Promise<Map<string, string>> {
  const out = await tree(sb.base, sb.root);
  for (const d of [sb.sentinel, sb.inputs]) for (const [k, v] of await xattrsOf(d, sb.base)) out.set(k, v);
  const s = await lstat('/etc/passwd');
  out.set('/etc/passwd', `${s.mode} ${s.uid}:${s.gid} n${s.nlink} ${sha256(await readFile('/etc/passwd'))}`);
  for (const [k, v] of await xattrsOf('/etc/passwd', '/etc')) out.set(`/etc/passwd ${k}`, v);
  return out;
}

async function inside(sb: Sandbox): Promise<Map<string, string>> {
  const out = await tree(sb.root);
  for (const [k, v] of await xattrsOf(sb.root, sb.root)) out.set(k, v);
  return out;
}

interface LoadResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function load(sb: Sandbox, run: Run, layout: string): Promise<LoadResult> {
  return berthAs(run, ['--debug', '--root', sb.root, 'load', layout, '--driver', run.driver]);
}

/** berth in this process (as root), or as nobody in a child process. */
async function berthAs(run: Run, args: readonly string[]): Promise<LoadResult> {
  if (run.privileged) return berth(...args);
  return new Promise((resolve) => {
    execFile(SETPRIV!, ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 120_000, cwd: '/' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

type Outcome = 'ok' | ErrorCode;

interface CheckContext {
  readonly sb: Sandbox;
  readonly run: Run;
  /** Absolute files directories of the hostile image's layers, the base first. */
  readonly files: readonly string[];
}

interface Hazard {
  readonly name: string;
  /** The hostile layers above BASE. */
  layers(sb: Sandbox): readonly E[][] | Promise<readonly LayerBlob[]>;
  readonly expect: Outcome | ((run: Run) => Outcome);
  /** What must be true of the loaded layers when the load succeeded. */
  check?(c: CheckContext): Promise<void>;
  /** Runs only as root (limits are set in this process). */
  readonly inProcessOnly?: boolean;
  readonly before?: () => void;
  readonly after?: () => void;
}

async function kind(p: string): Promise<string> {
  try {
    const s = await lstat(p);
    return s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isCharacterDevice() ? (s.rdev === 0 ? 'whiteout' : 'char') : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'other';
  } catch {
    return 'absent';
  }
}

/** The new paths a successful load may add, and the old ones it may change. */
function assertOnlyOwnChanges(before: Map<string, string>, after: Map<string, string>, driver: Driver): void {
  const key = (k: string) => (k.startsWith('xattr ') ? k.slice(6) : k);
  const driverDirs = (m: Map<string, string>) => new Set([...m.keys()].map(key).filter((k) => (driver === 'overlay2' ? /^overlay2\/[0-9a-f]{64}$/ : /^vfs\/dir\/[0-9a-f]{64}$/).test(k)));
  const oldDirs = driverDirs(before);
  const newDirs = [...driverDirs(after)].filter((d) => !oldDirs.has(d));
  assert.ok(newDirs.length > 0, 'the load made at least one layer directory');
  const meta = driver === 'overlay2' ? 'image/overlay2/repositories.json' : 'image/vfs/repositories.json';
  for (const [k, v] of before) {
    if (k === meta) continue;
    assert.equal(after.get(k), v, `${k} changed (only the new layers and berth's metadata may)`);
  }
  for (const k of after.keys()) {
    if (before.has(k)) continue;
    const p = key(k);
    assert.ok(!p.includes('.berth-tmp'), `a temp leftover: ${k}`);
    const ok = p.startsWith(`image/${driver}/`)
      || newDirs.some((d) => p === d || p.startsWith(`${d}/`))
      || (driver === 'overlay2' && (/^overlay2\/l\/[A-Z2-7]{26}$/.test(p) || (/^overlay2\/[0-9a-f]{64}\/committed$/.test(p) && oldDirs.has(path.dirname(p)))));
    assert.ok(ok, `${k} appeared outside the new layers' directories and berth's metadata`);
  }
}

async function layerFiles(sb: Sandbox, name: string): Promise<string[]> {
  const r = await berth('--root', sb.root, 'trace', name, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { layers: Array<{ files: string }> }).layers.map((l) => path.join(sb.root, l.files));
}

async function runHazard(t: TestContext, h: Hazard, run: Run): Promise<void> {
  const sb = await sandbox(t, run);
  const baseLayer = await plainLayer(BASE);
  const first = await load(sb, run, await makeLayout(sb.inputs, 'base', [baseLayer]));
  assert.equal(first.code, 0, `loading the base image: ${first.stderr}`);
  const given = await h.layers(sb);
  const hostile: LayerBlob[] = [baseLayer];
  for (const l of given) hostile.push('blob' in l ? l : await plainLayer(l));
  const layout = await makeLayout(sb.inputs, 'hz', hostile);
  if (!run.privileged) await exec('chown', ['-R', `${NOBODY}:${NOBODY}`, sb.inputs]);
  const outBefore = await outside(sb);
  const inBefore = await inside(sb);
  h.before?.();
  let r: LoadResult;
  try {
    r = await load(sb, run, layout);
  } finally {
    h.after?.();
  }
  assert.deepEqual(await outside(sb), outBefore, 'something outside the root changed');
  const want = typeof h.expect === 'function' ? h.expect(run) : h.expect;
  if (want === 'ok') {
    assert.equal(r.code, 0, `want the load to succeed with the hazard neutralised: ${r.stderr}`);
    assertOnlyOwnChanges(inBefore, await inside(sb), run.driver);
    const fsck = await berth('--root', sb.root, 'store', 'fsck');
    assert.equal(fsck.code, 0, `fsck after the load: ${fsck.stdout}${fsck.stderr}`);
    await h.check?.({ sb, run, files: await layerFiles(sb, 'hz:1') });
  } else {
    assert.equal(r.code, 1, `want the load to fail with ${want}: ${r.stdout}${r.stderr}`);
    const lines = r.stderr.split('\n');
    // refused while the copy engine streams the layer (its context comes first) or at commit
    assert.match(lines[0] ?? '', /^berth: (copying .*: )?loading into /, r.stderr);
    assert.ok(lines.includes(`code: ${want}`) || lines.some((l) => l.startsWith(`code: ${want},`)), `want code ${want}:\n${r.stderr}`);
    assert.deepEqual(await inside(sb), inBefore, 'a refused load left the root changed');
  }
  const again = await outside(sb);
  assert.deepEqual(again, outBefore);
}

const HAZARDS: Hazard[] = [
  {
    name: '"../" names are refused',
    layers: () => [[{ name: 'ok', body: 'x' }, { name: '../../../../sentinel/pwned', body: 'x' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: '"../" inside a name is refused',
    layers: () => [[{ name: 'a/../../../../../sentinel/secret', body: 'pwned' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: 'absolute names are refused',
    layers: (sb) => [[{ name: `${sb.sentinel}/pwned`, body: 'x' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: 'a symlink to / then a write through it in the same layer stays inside the layer',
    layers: (sb) => [[{ name: 'evil', type: 'symlink', linkname: '/' }, { name: `evil${sb.sentinel}/secret`, body: 'pwned' }, { name: 'evil/etc/passwd', body: 'pwned' }]],
    expect: 'ok',
    async check({ sb, files }) {
      const top = files.at(-1)!;
      assert.equal(await readlink(path.join(top, 'evil')), '/');
      assert.equal(await readFile(path.join(top, sb.sentinel, 'secret'), 'utf8'), 'pwned');
      assert.equal(await readFile(path.join(top, 'etc/passwd'), 'utf8'), 'pwned');
    },
  },
  {
    name: 'symlinks to .. (and a chain of them) then writes through them stay inside',
    layers: () => [[
      { name: 'up', type: 'symlink', linkname: '..' }, { name: 'up/sentinel/secret', body: 'pwned' },
      { name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: '../../../..' }, { name: 'a/sentinel/sub/file', body: 'pwned' },
    ]],
    expect: 'ok',
    async check({ files }) {
      const top = files.at(-1)!;
      assert.equal(await readFile(path.join(top, 'sentinel/secret'), 'utf8'), 'pwned');
      assert.equal(await readFile(path.join(top, 'sentinel/sub/file'), 'utf8'), 'pwned');
      assert.equal(await kind(path.join(top, 'up')), 'symlink');
    },
  },
  {
    name: 'a symlink to outside, then files under it in a LATER layer',
    layers: (sb) => [
      [{ name: 'evil', type: 'symlink', linkname: sb.sentinel }, { name: 'up', type: 'symlink', linkname: '../../../../..' }, { name: 'etc2', type: 'symlink', linkname: '/etc' }],
      [{ name: 'evil/secret', body: 'pwned' }, { name: 'evil/newdir/', mode: 0o777 }, { name: 'up/sentinel/pwned', body: 'x' }, { name: 'etc2/passwd', body: 'pwned' }],
    ],
    expect: 'ok',
    async check({ sb, run, files }) {
      const [, lower, top] = files as [string, string, string];
      assert.equal(await kind(path.join(lower, 'evil')), 'symlink');
      if (run.driver === 'overlay2') {
        // Its own diff/: the names are plain directories there (overlayfs merges them in the container).
        assert.equal(await readFile(path.join(top, 'evil/secret'), 'utf8'), 'pwned');
        assert.equal(await readFile(path.join(top, 'etc2/passwd'), 'utf8'), 'pwned');
      } else {
        // A full copy: the symlinks are followed as if the layer were /.
        assert.equal(await kind(path.join(top, 'evil')), 'symlink');
        assert.equal(await readFile(path.join(top, sb.sentinel, 'secret'), 'utf8'), 'pwned');
        assert.equal(await readFile(path.join(top, 'etc/passwd'), 'utf8'), 'pwned');
        assert.equal(await readFile(path.join(top, 'sentinel/pwned'), 'utf8'), 'x');
      }
    },
  },
  {
    name: 'a symlink that points at itself through / (a loop) then a write under it',
    layers: () => [[{ name: 'etc', type: 'symlink', linkname: '/etc' }], [{ name: 'etc/passwd', body: 'pwned' }]],
    // vfs copies the loop and must resolve through it (a chroot'd dockerd gets ELOOP too); overlay2's diff/ has no etc yet.
    expect: (run) => (run.driver === 'vfs' ? 'BERTH_LIMIT' : 'ok'),
  },
  {
    name: 'an entry at the path of a symlink to outside replaces the symlink, never follows it',
    layers: (sb) => [
      [{ name: 's', type: 'symlink', linkname: `${sb.sentinel}/secret` }, { name: 'd', type: 'symlink', linkname: sb.sentinel }, { name: 'p', type: 'symlink', linkname: '/etc/passwd' }],
      [{ name: 's', body: 'pwned', mode: 0o777 }, { name: 'd/', mode: 0o777 }, { name: 'p', body: 'pwned' }],
    ],
    expect: 'ok',
    async check({ files }) {
      const top = files.at(-1)!;
      assert.equal(await kind(path.join(top, 's')), 'file');
      assert.equal(await kind(path.join(top, 'd')), 'dir');
      assert.equal(await readFile(path.join(top, 'p'), 'utf8'), 'pwned');
    },
  },
  {
    name: 'directory metadata is never applied through a symlink that replaced the directory (same layer and later)',
    layers: (sb) => [
      // The tar reader refuses a name twice, so `d` is made implicitly (as a missing parent) before it becomes a symlink.
      [{ name: 'd/sub/', mode: 0o777, mtime: 0 }, { name: 'd', type: 'symlink', linkname: sb.sentinel }],
      [{ name: 'e/' }, { name: 'e/sentinel/', mode: 0o777, mtime: 0 }],
      [{ name: 'e', type: 'symlink', linkname: sb.base }],
    ],
    expect: 'ok',
  },
  {
    name: 'hard links to outside are refused: "../"',
    layers: () => [[{ name: 'h', type: 'link', linkname: '../../../../sentinel/secret' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: 'hard links to outside are refused: /etc/passwd',
    layers: () => [[{ name: 'h', type: 'link', linkname: '/etc/passwd' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: 'a hard link through a symlink to / names the layer\'s own etc/passwd, never the host\'s',
    layers: () => [[{ name: 'evil', type: 'symlink', linkname: '/' }, { name: 'h', type: 'link', linkname: 'evil/etc/passwd' }]],
    // overlay2: not in this layer's diff/ (dockerd fails the same); vfs: the copy's own file.
    expect: (run) => (run.driver === 'vfs' ? 'ok' : 'BERTH_INVALID_LAYER'),
    async check({ files }) {
      const [base, top] = files as [string, string];
      const h = await lstat(path.join(top, 'h'));
      assert.equal(h.ino, (await lstat(path.join(top, 'etc/passwd'))).ino);
      assert.equal(h.nlink, 2);
      assert.equal((await lstat(path.join(base, 'etc/passwd'))).nlink, 1, 'the lower layer\'s file is not linked');
    },
  },
  {
    name: 'a hard link to a symlink links the symlink itself; a later write at its path replaces it',
    layers: (sb) => [
      [{ name: 's', type: 'symlink', linkname: `${sb.sentinel}/secret` }, { name: 'h', type: 'link', linkname: 's' }],
      [{ name: 'h', body: 'pwned' }, { name: 'h2', type: 'link', linkname: 'h' }],
    ],
    expect: 'ok',
    async check({ sb, files }) {
      const [, lower, top] = files as [string, string, string];
      assert.equal(await kind(path.join(lower, 'h')), 'symlink');
      assert.equal(await readlink(path.join(lower, 'h')), `${sb.sentinel}/secret`);
      assert.equal(await readFile(path.join(top, 'h2'), 'utf8'), 'pwned');
    },
  },
  ...[['.wh...'], ['a/.wh..'], ['../.wh.sentinel'], ['../../.wh.something'], ['.wh.../../something'], ['.wh.']].map(([name]): Hazard => ({
    name: `a whiteout whose name escapes is refused: ${name}`,
    layers: () => [[{ name: 'ok', body: 'x' }, { name: name! }]],
    expect: 'BERTH_UNSAFE_PATH',
  })),
  {
    name: 'whiteouts and opaque markers through symlinks (same layer and later) delete nothing outside',
    layers: (sb) => [
      [{ name: 'evil', type: 'symlink', linkname: sb.base }, { name: 'up', type: 'symlink', linkname: '..' }, { name: 'root', type: 'symlink', linkname: '/' }],
      [{ name: 'evil/.wh.sentinel' }, { name: 'up/.wh.sentinel' }, { name: 'root/etc/.wh.passwd' }, { name: 'evil/sentinel/.wh..wh..opq' }, { name: 'up/up/sentinel/.wh..wh..opq' }],
    ],
    expect: 'ok',
    async check({ run, files }) {
      const [, , top] = files as [string, string, string];
      if (run.driver === 'vfs') {
        assert.equal(await kind(path.join(top, 'etc/passwd')), 'absent', 'the copy\'s own etc/passwd is whited out');
        assert.equal(await kind(path.join(top, 'victim/keep')), 'file');
      } else if (run.privileged) {
        // Its own diff/ has no `root` symlink: the whiteout is made under a real directory of that name.
        assert.equal(await kind(path.join(top, 'root/etc/passwd')), 'whiteout');
      }
    },
  },
  {
    name: 'an opaque marker under a symlinked directory marks a directory inside the layer',
    layers: (sb) => [
      [{ name: 's', type: 'symlink', linkname: sb.sentinel }, { name: 'v', type: 'symlink', linkname: '../../../../victim' }],
      [{ name: 's/.wh..wh..opq' }, { name: 'v/.wh..wh..opq' }, { name: 'v/new', body: 'n' }],
    ],
    expect: 'ok',
    async check({ sb, run, files }) {
      const [, , top] = files as [string, string, string];
      if (run.driver === 'vfs') {
        assert.deepEqual(await readdir(path.join(top, 'victim')), ['new'], 'the copy\'s victim/ lost its lower children only');
        assert.equal(await kind(path.join(top, sb.sentinel)), 'dir');
      } else {
        assert.equal(await kind(path.join(top, 's')), 'dir');
        assert.equal(await kind(path.join(top, 'v')), 'dir');
      }
    },
  },
  {
    name: 'a whiteout whose directory is replaced by a symlink to outside later in the same layer',
    layers: (sb) => [[{ name: 'd/.wh.secret' }, { name: 'd/.wh.sub' }, { name: 'd', type: 'symlink', linkname: sb.sentinel }]],
    expect: 'ok',
    async check({ sb, files }) {
      assert.equal(await readlink(path.join(files.at(-1)!, 'd')), sb.sentinel);
    },
  },
  {
    name: 'an opaque directory replaced by a symlink to outside later in the same layer',
    layers: (sb) => [[{ name: 'd/.wh..wh..opq' }, { name: 'd', type: 'symlink', linkname: sb.sentinel }, { name: 'x/y/.wh..wh..opq' }, { name: 'x', type: 'symlink', linkname: sb.sentinel }]],
    expect: 'ok',
  },
  {
    name: 'xattr names cannot inject paths into the setfattr batch',
    layers: () => [[{
      name: 'f', body: 'x',
      xattrs: {
        'trusted.a\n\n# file: ../../../../sentinel/secret\ntrusted.pwned': text('A'),
        'user.a\n\n# file: ../../../../sentinel/secret\nuser.pwned': text('A'),
        'user.b=0x41\n\n# file: ../../../../sentinel/sub/file\nuser.pwned2': text('B'),
      },
    }]],
    expect: 'ok',
  },
  {
    name: 'device nodes and FIFOs: made inside the layer as root, skipped otherwise; never opened when replaced',
    layers: () => [
      [{ name: 'dev/' }, { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 }, { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 }, { name: 'p', type: 'fifo', mode: 0o644 }],
      [{ name: 'p', body: 'not through the fifo' }, { name: 'dev/null', body: 'replaced' }],
    ],
    expect: 'ok',
    async check({ run, files }) {
      const [, lower, top] = files as [string, string, string];
      assert.equal(await kind(path.join(lower, 'dev/null')), run.privileged ? 'char' : 'absent');
      assert.equal(await kind(path.join(lower, 'dev/sda')), run.privileged ? 'block' : 'absent');
      assert.equal(await kind(path.join(lower, 'p')), run.privileged ? 'fifo' : 'absent');
      assert.equal(await readFile(path.join(top, 'p'), 'utf8'), 'not through the fifo');
      if (run.privileged) assert.equal((await lstat(path.join(lower, 'dev/null'))).rdev, (await lstat('/dev/null')).rdev);
      if (run.driver === 'vfs' && run.privileged) assert.equal(await kind(path.join(top, 'dev/sda')), 'block', 'cp -a copied the node, not the disk');
    },
  },
  {
    name: 'setuid/setgid and ownership: applied as root inside a root only root can enter',
    layers: () => [[
      { name: 'suid', body: 'x', mode: 0o4755, uid: 0, gid: 0 }, { name: 'sgid/', mode: 0o2775, uid: 42, gid: 43 }, { name: 'owned', body: 'o', uid: 1234, gid: 5678 },
      { name: 'lnk', type: 'symlink', linkname: 'suid', uid: 7, gid: 8 },
    ]],
    expect: 'ok',
    async check({ sb, run, files }) {
      const top = files.at(-1)!;
      const s = await lstat(path.join(top, 'suid'));
      const o = await lstat(path.join(top, 'owned'));
      const l = await lstat(path.join(top, 'lnk'));
      if (run.privileged) {
        assert.equal(s.mode & 0o7777, 0o4755);
        assert.deepEqual([o.uid, o.gid, l.uid, l.gid], [1234, 5678, 7, 8]);
        assert.equal((await lstat(path.join(top, 'sgid'))).mode & 0o7777, 0o2775);
        // dockerd's modes: nobody else can reach the setuid file.
        assert.equal((await lstat(sb.root)).mode & 0o7777, 0o710);
        assert.equal((await lstat(path.join(sb.root, run.driver === 'overlay2' ? 'overlay2' : 'vfs/dir'))).mode & 0o7777, 0o710);
      } else {
        assert.deepEqual([s.uid, o.uid, l.uid], [NOBODY, NOBODY, NOBODY]);
      }
    },
  },
  {
    name: 'vfs: a hostile lower layer cannot make the copy of it escape or hang',
    layers: (sb) => [
      [
        { name: 'evil', type: 'symlink', linkname: '/' }, { name: 'up', type: 'symlink', linkname: '../../..' }, { name: 'abs', type: 'symlink', linkname: sb.sentinel },
        { name: 'sl', type: 'symlink', linkname: `${sb.sentinel}/secret` }, { name: 'hl', type: 'link', linkname: 'sl' }, { name: 'fifo', type: 'fifo' },
        { name: '-rf', body: 'dash' }, { name: 'locked/', mode: 0o700 }, { name: 'locked/f', body: 'f', mode: 0o600 }, { name: 'sticky/', mode: 0o1777 },
      ],
      [{ name: 'new', body: 'n' }, { name: 'abs/.wh.secret' }, { name: 'sl', body: 'replaced' }],
    ],
    expect: 'ok',
    async check({ sb, run, files }) {
      const [, lower, top] = files as [string, string, string];
      for (const dir of run.driver === 'vfs' ? [lower, top] : [lower]) {
        assert.equal(await readlink(path.join(dir, 'evil')), '/');
        assert.equal(await readlink(path.join(dir, 'abs')), sb.sentinel);
        assert.equal(await readFile(path.join(dir, '-rf'), 'utf8'), 'dash');
        assert.equal(await kind(path.join(dir, 'fifo')), run.privileged ? 'fifo' : 'absent');
      }
      if (run.driver === 'vfs') {
        assert.equal(await readlink(path.join(top, 'hl')), `${sb.sentinel}/secret`);
        assert.equal(await readFile(path.join(top, 'sl'), 'utf8'), 'replaced');
        assert.equal((await lstat(path.join(lower, 'hl'))).ino, (await lstat(path.join(lower, 'sl'))).ino, 'the lower layer keeps its hard link');
      }
    },
  },
  {
    name: 'directories without permissions (000, 0555) in a lower layer: copied, written beside, removable',
    layers: () => [
      [{ name: 'locked/', mode: 0o000 }, { name: 'locked/f', body: 'f', mode: 0o000 }, { name: 'ro/', mode: 0o555 }, { name: 'ro/f', body: 'r', mode: 0o444 }],
      [{ name: 'new', body: 'n' }, { name: 'ro/g', body: 'g' }, { name: 'locked/.wh.f' }],
    ],
    expect: 'ok',
    async check({ sb, run, files }) {
      const [, lower] = files as [string, string, string];
      // As root the modes are dockerd's; without root the owner keeps rwx (the header's mode stays in tar-split).
      assert.equal((await lstat(path.join(lower, 'locked'))).mode & 0o777, run.privileged ? 0o000 : 0o700);
      const rmi = await berthAs(run, ['--root', sb.root, 'rmi', 'hz:1', 'base:1']);
      assert.equal(rmi.code, 0, rmi.stderr);
      assert.deepEqual((await readdir(path.join(sb.root, run.driver === 'overlay2' ? 'overlay2' : 'vfs/dir'))).filter((n) => n !== 'l'), [], 'every layer directory was removed');
    },
  },
  {
    name: 'a refused layer above a lower one without permissions leaves no staged directory behind',
    layers: () => [[{ name: 'locked/', mode: 0o000 }, { name: 'locked/f', body: 'f' }, { name: 'ro/', mode: 0o555 }, { name: 'ro/f', body: 'r' }], [{ name: 'ok', body: 'x' }, { name: '../../x', body: 'x' }]],
    expect: 'BERTH_UNSAFE_PATH',
  },
  {
    name: 'a decompression bomb stops at the byte limit with BERTH_LIMIT',
    inProcessOnly: true,
    async layers() {
      const size = 64 << 20;
      async function* zeros(): ByteStream {
        const chunk = new Uint8Array(1 << 20);
        for (let i = 0; i < size / chunk.length; i++) yield chunk;
      }
      const tar = () => writeTar([{ header: { name: 'bomb', type: 'file', size }, body: zeros() }]);
      const hash = createHash('sha256');
      for await (const c of tar()) hash.update(c);
      const gz = await toBytes(compress(tar(), 'gzip', { level: 9 }));
      assert.ok(gz.length < size / 100, `the bomb is small compressed (${gz.length} bytes)`);
      return [{ blob: gz, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', diffId: `sha256:${hash.digest('hex')}` }];
    },
    before: () => setStoreLoadLimits({ maxBytes: 4 << 20 }),
    after: () => setStoreLoadLimits({}),
    expect: 'BERTH_LIMIT',
  },
  {
    name: 'too many entries stop at the entry limit with BERTH_LIMIT',
    inProcessOnly: true,
    layers: () => [Array.from({ length: 20 }, (_, i): E => ({ name: `f${i}`, body: '' })), Array.from({ length: 30 }, (_, i): E => ({ name: `g${i}`, body: '' }))],
    before: () => setStoreLoadLimits({ maxEntries: 30 }),
    after: () => setStoreLoadLimits({}),
    expect: 'BERTH_LIMIT',
  },
];

for (const h of HAZARDS) {
  test(`store hazard: ${h.name}`, async (t) => {
    for (const driver of ['overlay2', 'vfs'] as const) {
      await t.test(`${driver}, ${IS_ROOT ? 'as root' : 'unprivileged'}`, (tt) => runHazard(tt, h, { driver, privileged: IS_ROOT }));
    }
  });
}

test('store hazards as nobody (setpriv) on a root nobody owns', { skip: (!IS_ROOT || SETPRIV === undefined) && 'needs root (to drop to nobody) and setpriv' }, async (t) => {
  for (const h of HAZARDS.filter((x) => x.inProcessOnly !== true)) {
    for (const driver of ['overlay2', 'vfs'] as const) {
      await t.test(`${h.name} (${driver})`, (tt) => runHazard(tt, h, { driver, privileged: false }));
    }
  }
});

test('load limits default to unpack\'s', () => {
  assert.deepEqual(DEFAULT_LOAD_LIMITS, { maxBytes: DEFAULT_MAX_UNPACKED_BYTES, maxEntries: DEFAULT_MAX_UNPACKED_ENTRIES });
});

test('the sandbox sees an escape (self-test of the snapshots)', async (t) => {
  const run: Run = { driver: 'overlay2', privileged: true };
  const sb = await sandbox(t, run);
  const before = await outside(sb);
  await writeFile(path.join(sb.sentinel, 'sub/file'), 'changed\n');
  assert.notDeepEqual(await outside(sb), before);
  if (GETFATTR !== undefined && IS_ROOT) {
    const b2 = await outside(sb);
    await exec('setfattr', ['-h', '-n', 'trusted.x', '-v', '1', path.join(sb.sentinel, 'secret')]);
    assert.notDeepEqual(await outside(sb), b2, 'an xattr set outside is seen');
  }
});
