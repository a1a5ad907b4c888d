/**
 * The malicious-layer suite: one test per hazard, each checking that nothing outside the
 * extraction directory changed (a sentinel tree next to it is snapshotted before and after).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { digestOf, type Digest } from '../core/digest.js';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import { compress, decompress, detectCompression } from '../io/codec.js';
import { toBytes, type ByteStream } from '../io/stream.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import { extractLayers, type ExtractLayer, type ExtractOptions } from './extract.js';

const IS_ROOT = process.getuid?.() === 0;
const TMP_BASE = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

type E = Partial<TarWriteEntry['header']> & { name: string; body?: string | Uint8Array };

function tarOf(entries: readonly E[]): ByteStream {
  return writeTar(entries.map((e): TarWriteEntry => {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const { body, ...header } = e;
    return { header: { ...header, type }, ...(type === 'file' ? { body: typeof body === 'string' ? new TextEncoder().encode(body) : body ?? new Uint8Array(0) } : {}) };
  }));
}

function layer(entries: readonly E[]): ExtractLayer {
  return { open: async () => tarOf(entries) };
}

interface Sandbox {
  readonly base: string;
  readonly dir: string;
  readonly sentinel: string;
  /** Everything under base except dir: path → description. */
  snapshot(): Promise<Map<string, string>>;
}

async function sandbox(t: TestContext): Promise<Sandbox> {
  const base = await mkdtemp(path.join(TMP_BASE, 'berth-extract-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const dir = path.join(base, 'root');
  const sentinel = path.join(base, 'sentinel');
  await mkdir(path.join(sentinel, 'sub'), { recursive: true });
  await mkdir(dir);
  await writeFile(path.join(sentinel, 'secret'), 'secret\n', { mode: 0o600 });
  await writeFile(path.join(sentinel, 'sub', 'file'), 'sub\n');
  const snapshot = async (): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    const walk = async (p: string): Promise<void> => {
      const s = await lstat(p);
      let what = `${s.mode.toString(8)} ${s.uid}:${s.gid} ${s.mtimeMs} ${s.nlink}`;
      if (s.isSymbolicLink()) what += ` -> ${await readlink(p)}`;
      else if (s.isFile()) what += ` ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      out.set(path.relative(base, p) || '.', what);
      if (s.isDirectory()) for (const name of await readdir(p)) if (path.join(p, name) !== dir) await walk(path.join(p, name));
    };
    await walk(base);
    return out;
  };
  return { base, dir, sentinel, snapshot };
}

/** Runs `fn` and checks that nothing outside the extraction directory changed. */
async function outsideUnchanged(sb: Sandbox, fn: () => Promise<void>): Promise<void> {
  const before = await sb.snapshot();
  await fn();
  assert.deepEqual(await sb.snapshot(), before, 'something outside the extraction directory changed');
}

function code(c: ErrorCode): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!isBerthError(e, c)) throw e;
    return true;
  };
}

async function kind(p: string): Promise<string> {
  try {
    const s = await lstat(p);
    return s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'other';
  } catch {
    return 'absent';
  }
}

test('hazard: "../" names are refused', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([layer([{ name: 'ok', body: 'x' }, { name: '../sentinel/pwned', body: 'x' }])], sb.dir), code('BERTH_UNSAFE_PATH'));
    await assert.rejects(extractLayers([layer([{ name: 'a/../../sentinel/secret', body: 'x' }])], sb.dir, { force: true }), code('BERTH_UNSAFE_PATH'));
  });
});

test('hazard: absolute names are refused', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([layer([{ name: `${sb.sentinel}/pwned`, body: 'x' }])], sb.dir), code('BERTH_UNSAFE_PATH'));
  });
  assert.equal(await kind(path.join(sb.sentinel, 'pwned')), 'absent');
});

test('hazard: a symlink to / then a write through it in the same layer stays inside', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([layer([{ name: 'evil', type: 'symlink', linkname: '/' }, { name: `evil${sb.sentinel}/secret`, body: 'pwned' }])], sb.dir);
  });
  assert.equal(await readFile(path.join(sb.dir, sb.sentinel, 'secret'), 'utf8'), 'pwned');
  assert.equal(await kind(path.join(sb.dir, 'evil')), 'symlink');
});

test('hazard: a symlink to / then a write through it in a later layer stays inside', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 'evil', type: 'symlink', linkname: '/' }]),
      layer([{ name: `evil${sb.sentinel}/`, mode: 0o777 }, { name: `evil${sb.sentinel}/secret`, body: 'pwned' }]),
    ], sb.dir);
  });
  assert.equal(await readFile(path.join(sb.dir, sb.sentinel, 'secret'), 'utf8'), 'pwned');
});

test('hazard: a symlink to .. (and a chain of them) then a write through it stays inside', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'up/sentinel/secret', body: 'pwned' }]),
      layer([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: '../../../..' }, { name: 'a/sentinel/sub/file', body: 'pwned' }]),
    ], sb.dir);
  });
  assert.equal(await readFile(path.join(sb.dir, 'sentinel', 'secret'), 'utf8'), 'pwned');
  assert.equal(await readFile(path.join(sb.dir, 'sentinel', 'sub', 'file'), 'utf8'), 'pwned');
});

test('hazard: an entry at the path of a symlink to outside replaces the symlink, never follows it', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 's', type: 'symlink', linkname: `${sb.sentinel}/secret` }, { name: 'd', type: 'symlink', linkname: sb.sentinel }]),
      layer([{ name: 's', body: 'pwned', mode: 0o777 }, { name: 'd/', mode: 0o777 }]),
    ], sb.dir);
  });
  assert.equal(await kind(path.join(sb.dir, 's')), 'file');
  assert.equal(await kind(path.join(sb.dir, 'd')), 'dir');
});

test('hazard: directory metadata is never applied through a symlink that replaced a parent later', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 'd/' }, { name: 'd/sentinel/', mode: 0o777, mtime: 0 }, { name: 'd/sentinel/sub/', mode: 0o777, mtime: 0 }]),
      layer([{ name: 'd', type: 'symlink', linkname: sb.base }]),
    ], sb.dir);
  });
  assert.equal(await kind(path.join(sb.dir, 'd')), 'symlink');
});

test('hazard: hard links to outside are refused', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([layer([{ name: 'h', type: 'link', linkname: '../sentinel/secret' }])], sb.dir), code('BERTH_UNSAFE_PATH'));
    await assert.rejects(extractLayers([layer([{ name: 'h', type: 'link', linkname: `${sb.sentinel}/secret` }])], sb.dir, { force: true }), code('BERTH_UNSAFE_PATH'));
    // Through a symlink to /: resolved inside the directory, where there is no such file.
    await assert.rejects(extractLayers([layer([{ name: 'evil', type: 'symlink', linkname: '/' }, { name: 'h', type: 'link', linkname: `evil${sb.sentinel}/secret` }])], sb.dir, { force: true }), code('BERTH_INVALID_LAYER'));
  });
});

test('hazard: a hard link to a symlink links the symlink itself; writing at its path replaces it', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 's', type: 'symlink', linkname: `${sb.sentinel}/secret` }, { name: 'h', type: 'link', linkname: 's' }]),
    ], sb.dir);
    assert.equal(await kind(path.join(sb.dir, 'h')), 'symlink');
    assert.equal(await readlink(path.join(sb.dir, 'h')), `${sb.sentinel}/secret`);
    await extractLayers([layer([{ name: 'h', body: 'pwned' }, { name: 'h2', type: 'link', linkname: 'h' }])], sb.dir, { force: true });
  });
  assert.equal(await readFile(path.join(sb.dir, 'h2'), 'utf8'), 'pwned');
});

test('hazard: whiteouts whose names escape are refused; whiteouts through symlinks delete nothing outside', async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([layer([{ name: '.wh...' }])], sb.dir), code('BERTH_UNSAFE_PATH'));
    await assert.rejects(extractLayers([layer([{ name: 'a/.wh..' }])], sb.dir, { force: true }), code('BERTH_UNSAFE_PATH'));
    await assert.rejects(extractLayers([layer([{ name: '../.wh.sentinel' }])], sb.dir, { force: true }), code('BERTH_UNSAFE_PATH'));
    await extractLayers([
      layer([{ name: 'evil', type: 'symlink', linkname: sb.base }, { name: 'up', type: 'symlink', linkname: '..' }]),
      layer([{ name: 'evil/.wh.sentinel' }, { name: 'up/.wh.sentinel' }, { name: `evil/sentinel/.wh..wh..opq` }]),
    ], sb.dir, { force: true });
  });
  assert.equal(await kind(sb.sentinel), 'dir');
});

test('hazard: device nodes and FIFOs are created as root', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    const r = await extractLayers([layer([
      { name: 'dev/' }, { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660 }, { name: 'run/fifo', type: 'fifo', mode: 0o644 },
    ])], sb.dir);
    assert.deepEqual(r.warnings, []);
  });
  assert.equal(await kind(path.join(sb.dir, 'dev/null')), 'char');
  assert.equal(await kind(path.join(sb.dir, 'dev/loop0')), 'block');
  assert.equal(await kind(path.join(sb.dir, 'run/fifo')), 'fifo');
  assert.equal((await lstat(path.join(sb.dir, 'dev/null'))).rdev, (await lstat('/dev/null')).rdev);
  assert.equal((await lstat(path.join(sb.dir, 'dev/null'))).mode & 0o7777, 0o666);
});

test('hazard: device nodes and FIFOs are skipped with one warning when not root', async (t) => {
  const sb = await sandbox(t);
  const warnings: string[] = [];
  await outsideUnchanged(sb, async () => {
    const r = await extractLayers([layer([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 }, { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 }, { name: 'fifo', type: 'fifo' },
      { name: 'ok', body: 'x' },
    ])], sb.dir, { privileged: false, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(r.warnings, warnings);
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /skipped 3 device nodes and FIFOs/);
  assert.equal(await kind(path.join(sb.dir, 'dev/null')), 'absent');
  assert.equal(await kind(path.join(sb.dir, 'fifo')), 'absent');
  assert.equal(await kind(path.join(sb.dir, 'ok')), 'file');
});

test('hazard: setuid/setgid bits and ownership are applied as root', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([layer([
      { name: 'suid', body: 'x', mode: 0o4755, uid: 1234, gid: 5678 }, { name: 'sgid/', mode: 0o2775, uid: 42, gid: 43 },
      { name: 'lnk', type: 'symlink', linkname: 'suid', uid: 7, gid: 8 },
    ])], sb.dir);
  });
  const s = await lstat(path.join(sb.dir, 'suid'));
  assert.equal(s.mode & 0o7777, 0o4755);
  assert.deepEqual([s.uid, s.gid], [1234, 5678]);
  const d = await lstat(path.join(sb.dir, 'sgid'));
  assert.equal(d.mode & 0o7777, 0o2775);
  assert.deepEqual([d.uid, d.gid], [42, 43]);
  const l = await lstat(path.join(sb.dir, 'lnk'));
  assert.deepEqual([l.uid, l.gid], [7, 8]);
});

test('hazard: setuid/setgid bits are cleared and ownership skipped when not root', async (t) => {
  const sb = await sandbox(t);
  const warnings: string[] = [];
  await outsideUnchanged(sb, async () => {
    await extractLayers([layer([{ name: 'suid', body: 'x', mode: 0o6755, uid: 1234, gid: 5678 }, { name: 'sticky/', mode: 0o1777 }])], sb.dir, {
      privileged: false, onWarning: (m) => warnings.push(m),
    });
  });
  const s = await lstat(path.join(sb.dir, 'suid'));
  assert.equal(s.mode & 0o7777, 0o755);
  assert.deepEqual([s.uid, s.gid], [process.getuid?.(), process.getgid?.()]);
  assert.equal((await lstat(path.join(sb.dir, 'sticky'))).mode & 0o7777, 0o1777);
  assert.deepEqual(warnings, ['cleared setuid/setgid bits on 1 files (not running as root)']);
});

test('file modes the umask would clear, and read-only files, come out exact', async (t) => {
  const sb = await sandbox(t);
  const modes = [0o777, 0o666, 0o644, 0o600, 0o444, 0o400, 0o000, 0o1755];
  await extractLayers([layer(modes.map((mode) => ({ name: `m${mode.toString(8)}`, body: 'x', mode })))], sb.dir);
  for (const mode of modes) {
    const s = await lstat(path.join(sb.dir, `m${mode.toString(8)}`));
    assert.equal(s.mode & 0o7777, mode, `mode of m${mode.toString(8)}`);
    assert.equal(s.size, 1);
  }
});

test('as root, files owned by root get the entry owner; a setgid root makes its group apply too', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const sb = await sandbox(t);
  const entries: E[] = [
    { name: 'own', body: 'x', uid: 0, gid: 0 }, { name: 'other', body: 'x', uid: 0, gid: 0 }, { name: 'd/' }, { name: 'd/own', body: 'x', uid: 0, gid: 0 },
    { name: 'lnk', type: 'symlink', linkname: 'own', uid: 0, gid: 0 },
  ];
  // A root directory owned by another group and setgid: new files would take its group unless chowned.
  const { chown, chmod } = await import('node:fs/promises');
  await chown(sb.dir, 0, 4321);
  await chmod(sb.dir, 0o2755);
  await extractLayers([layer(entries)], sb.dir);
  for (const name of ['own', 'other', 'd', 'd/own', 'lnk']) {
    const s = await lstat(path.join(sb.dir, name));
    assert.deepEqual([s.uid, s.gid], [0, 0], `owner of ${name}`);
  }
});

/** The xattrs of a path, by getfattr (not following symlinks): name → hex value. */
function xattrsOf(p: string): Record<string, string> {
  const out: Record<string, string> = {};
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' });
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

// cap_net_raw permitted + effective, as `setcap cap_net_raw+ep` writes it (vfs_cap_data v2)
const CAP_NET_RAW = new Uint8Array([0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const HAS_GETFATTR = spawnSync('getfattr', ['--version']).status === 0;

test('xattrs are applied: security.capability as root, user.* always', { skip: !HAS_GETFATTR && process.env.CI !== 'true' ? 'getfattr (Debian attr) is not installed' : false }, async (t) => {
  const sb = await sandbox(t);
  const r = await extractLayers([layer([
    { name: 'ping', body: 'x', xattrs: { 'security.capability': CAP_NET_RAW } },
    { name: 'dir/', xattrs: { 'user.dir': new TextEncoder().encode('d') } },
    { name: 'dir/other', body: 'y', xattrs: { 'user.note': new TextEncoder().encode('hi') } },
  ])], sb.dir, IS_ROOT ? {} : { privileged: false });
  assert.deepEqual(xattrsOf(path.join(sb.dir, 'dir', 'other'))['user.note'], Buffer.from('hi').toString('hex'));
  assert.deepEqual(xattrsOf(path.join(sb.dir, 'dir'))['user.dir'], Buffer.from('d').toString('hex'));
  if (IS_ROOT) {
    assert.equal(xattrsOf(path.join(sb.dir, 'ping'))['security.capability'], Buffer.from(CAP_NET_RAW).toString('hex'));
    assert.deepEqual(r.warnings, []);
  } else {
    assert.match(r.warnings.join('\n'), /did not apply 1 extended attributes/);
  }
});

test('hazard: xattrs the process may not set are skipped with one warning', async (t) => {
  const sb = await sandbox(t);
  const r = await extractLayers([layer([
    { name: 'ping', body: 'x', xattrs: { 'security.capability': CAP_NET_RAW } },
    { name: 'other', body: 'y', xattrs: { 'trusted.note': new TextEncoder().encode('hi') } },
  ])], sb.dir, { privileged: false });
  assert.equal(r.warnings.filter((w) => /extended attributes/.test(w)).length, 1);
  assert.match(r.warnings.join('\n'), /did not apply 2 extended attributes/);
});

test('hazard: xattrs are never set through a symlink that replaced a parent', { skip: !HAS_GETFATTR && process.env.CI !== 'true' ? 'getfattr (Debian attr) is not installed' : false }, async (t) => {
  const sb = await sandbox(t);
  await outsideUnchanged(sb, async () => {
    await extractLayers([
      layer([{ name: 'd/' }, { name: 'd/secret', body: 'inside', xattrs: { 'user.evil': new TextEncoder().encode('x') } }]),
      layer([{ name: 'd', type: 'symlink', linkname: sb.sentinel }]),
    ], sb.dir);
  });
  assert.deepEqual(xattrsOf(path.join(sb.sentinel, 'secret')), {});
  const same = await sandbox(t);
  await outsideUnchanged(same, async () => {
    await extractLayers([layer([
      { name: 'e/' },
      { name: 'e/secret', body: 'inside', xattrs: { 'user.evil': new TextEncoder().encode('x') } },
      { name: 'e', type: 'symlink', linkname: same.sentinel },
    ])], same.dir);
  });
  assert.deepEqual(xattrsOf(path.join(same.sentinel, 'secret')), {});
});

test('hazard: a decompression bomb stops at the byte limit with BERTH_LIMIT', async (t) => {
  const sb = await sandbox(t);
  const size = 64 * 1024 * 1024;
  async function* zeros(): ByteStream {
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < size / chunk.length; i++) yield chunk;
  }
  const gz = await toBytes(compress(writeTar([{ header: { name: 'bomb', type: 'file', size }, body: zeros() }]), 'gzip', { level: 9 }));
  assert.ok(gz.length < size / 100, `the bomb is small compressed (${gz.length} bytes)`);
  const bomb: ExtractLayer = {
    open: async () => {
      const { compression, stream } = await detectCompression((async function* () { yield gz; })());
      return decompress(stream, compression);
    },
  };
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([bomb], sb.dir, { limits: { maxBytes: 1024 * 1024 } }), (e: unknown) => {
      assert.ok(isBerthError(e, 'BERTH_LIMIT'), String(e));
      assert.match(e.message, /more than 1048576 uncompressed bytes/);
      return true;
    });
  });
  assert.ok((await lstat(path.join(sb.dir, 'bomb'))).size <= 2 * 1024 * 1024, 'the bomb was not expanded');
});

test('hazard: too many entries stops at the entry limit with BERTH_LIMIT', async (t) => {
  const sb = await sandbox(t);
  const many = Array.from({ length: 50 }, (_, i): E => ({ name: `f${i}`, body: '' }));
  await assert.rejects(extractLayers([layer(many.slice(0, 20)), layer(many.slice(20))], sb.dir, { limits: { maxEntries: 30 } }), (e: unknown) => {
    assert.ok(isBerthError(e, 'BERTH_LIMIT'), String(e));
    assert.match(e.message, /more than 30 entries/);
    return true;
  });
  assert.equal((await readdir(sb.dir)).length, 30);
});

test('the diff_id of each layer is checked while extracting', async (t) => {
  const sb = await sandbox(t);
  const entries: E[] = [{ name: 'a', body: 'a' }];
  const good = digestOf(await toBytes(tarOf(entries)));
  const r = await extractLayers([{ ...layer(entries), diffId: good }], sb.dir);
  assert.equal(r.layers, 1);
  const bad = digestOf('something else') as Digest;
  await assert.rejects(extractLayers([{ ...layer(entries), diffId: bad, what: 'layer 0 sha256:test' }], sb.dir, { force: true }), (e: unknown) => {
    assert.ok(isBerthError(e, 'BERTH_DIGEST_MISMATCH'), String(e));
    assert.match(e.message, /layer 0 sha256:test \(uncompressed, against its diff_id\)/);
    return true;
  });
});

test('unpacking into a non-empty directory needs force', async (t) => {
  const sb = await sandbox(t);
  await writeFile(path.join(sb.dir, 'mine'), 'keep');
  await assert.rejects(extractLayers([layer([{ name: 'a', body: 'a' }])], sb.dir), code('BERTH_EXISTS'));
  assert.equal(await kind(path.join(sb.dir, 'a')), 'absent');
  await extractLayers([layer([{ name: 'a', body: 'a' }])], sb.dir, { force: true });
  assert.equal(await readFile(path.join(sb.dir, 'mine'), 'utf8'), 'keep');
  assert.equal(await readFile(path.join(sb.dir, 'a'), 'utf8'), 'a');
});

test('union rules on disk: whiteouts, opaque dirs, replacements, hard links, last duplicate wins', async (t) => {
  const sb = await sandbox(t);
  const opts: ExtractOptions = {};
  await extractLayers([
    layer([{ name: 'a/' }, { name: 'a/x', body: '1' }, { name: 'a/y', body: '2' }, { name: 'd/' }, { name: 'd/old', body: 'o' }, { name: 'p/' }, { name: 'p/c', body: 'c' }, { name: 'f', body: 'data' }, { name: 'g', type: 'link', linkname: 'f' }]),
    layer([{ name: 'a/.wh.x' }, { name: 'd/' }, { name: 'd/new', body: 'n' }, { name: 'd/.wh..wh..opq' }, { name: 'p', body: 'now a file' }, { name: 'f', body: 'new' }, { name: 'dup', body: '1' }, { name: 'dup', body: '2' }, { name: '.wh.nothing' }]),
  ], sb.dir, opts);
  const names = async (p: string): Promise<string[]> => (await readdir(path.join(sb.dir, p))).sort();
  assert.deepEqual(await names(''), ['a', 'd', 'dup', 'f', 'g', 'p']);
  assert.deepEqual(await names('a'), ['y']);
  assert.deepEqual(await names('d'), ['new']);
  assert.equal(await readFile(path.join(sb.dir, 'p'), 'utf8'), 'now a file');
  assert.equal(await readFile(path.join(sb.dir, 'f'), 'utf8'), 'new');
  assert.equal(await readFile(path.join(sb.dir, 'g'), 'utf8'), 'data');
  assert.equal(await readFile(path.join(sb.dir, 'dup'), 'utf8'), '2');
});

test('whiteouts late in a layer hide only lower content, never what the same layer made before them', async (t) => {
  const sb = await sandbox(t);
  await extractLayers([
    layer([{ name: 'd/' }, { name: 'd/old', body: 'o' }, { name: 'e/' }, { name: 'e/old', body: 'o' }, { name: 'gone', body: 'g' }]),
    // No whiteout before these: the layer's own entries come first, then the markers.
    layer([{ name: 'd/new', body: 'n' }, { name: 'e/sub/' }, { name: 'e/sub/x', body: 'x' }, { name: 'kept', body: 'k' }, { name: 'd/.wh..wh..opq' }, { name: 'e/.wh..wh..opq' }, { name: '.wh.kept' }, { name: '.wh.gone' }]),
  ], sb.dir);
  const names = async (p: string): Promise<string[]> => (await readdir(path.join(sb.dir, p))).sort();
  assert.deepEqual(await names(''), ['d', 'e', 'kept']);
  assert.deepEqual(await names('d'), ['new']);
  assert.deepEqual(await names('e'), ['sub']);
  assert.deepEqual(await names('e/sub'), ['x']);
});

test('fixture: osv-scalibr escape.tar as a layer is refused and nothing outside changes', async (t) => {
  const sb = await sandbox(t);
  const file = path.resolve(repoRoot(), '../shared/fixtures/real/google__osv-scalibr/artifact/image/unpack/testdata/escape.tar');
  if (!existsSync(file)) {
    if (process.env.CI === 'true') assert.fail(`fixture missing: ${file}`);
    t.skip('fixture not present');
    return;
  }
  const pocBefore = existsSync('/tmp/poc.txt');
  await outsideUnchanged(sb, async () => {
    await assert.rejects(extractLayers([{ open: async () => (async function* () { yield await readFile(file); })() }], sb.dir), code('BERTH_UNSAFE_PATH'));
  });
  assert.equal(existsSync('/tmp/poc.txt'), pocBefore);
});
