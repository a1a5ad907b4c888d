/**
 * The configurable limits (src/io/limits.ts, the global CLI options): each one lowered on the
 * command line, run in process through main(), gives one clear `berth: …` line and exit 1; a bad
 * value is a usage error (exit 2); without flags the defaults hold; a gzip bomb of zeros stops at
 * the ratio limit. A load stopped by a limit leaves the store as it was.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { digestOf } from '../src/core/digest.js';
import { jsonSizeCaps, MAX_MANIFEST_BYTES } from '../src/core/json.js';
import { compress } from '../src/io/codec.js';
import { DEFAULT_LIMITS, limits } from '../src/io/limits.js';
import { toBytes, type ByteStream } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';
import { berth } from './support/cli.js';
import { fingerprint, removeWorkspace, SAMPLE, workspace } from './reliability/harness.js';

/** A one-image OCI layout with one gzip layer of `entries`. */
async function layout(dir: string, entries: TarWriteEntry[]): Promise<string> {
  await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
  const put = async (b: Uint8Array) => {
    const digest = digestOf(b);
    await writeFile(path.join(dir, 'blobs/sha256', digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const tar = await toBytes(writeTar(entries));
  const gz = await toBytes(compress((async function* () { yield tar; })(), 'gzip', { level: 9 }));
  const layer = await put(gz);
  const json = (v: object) => new TextEncoder().encode(JSON.stringify(v));
  const cfg = await put(json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(tar)] } }));
  const m = await put(json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  }));
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'lim:1' } }],
  }));
  return dir;
}

const file = (name: string, size = 0): TarWriteEntry => ({ header: { name, type: 'file', size }, body: new Uint8Array(size) });

/** The single `berth: …` line of a failed run with exit `code`; never longer than `maxLength`. */
function oneLine(r: { code: number; stderr: string }, code: number, what: string, maxLength = 400): string {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.stderr.slice(0, 2000)}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help'));
  assert.equal(lines.length, 1, `${what}: one line, got:\n${r.stderr.slice(0, 2000)}`);
  assert.match(lines[0]!, /^berth: /, what);
  assert.ok(lines[0]!.length <= maxLength, `${what}: a short line, got ${lines[0]!.length} characters`);
  return lines[0]!;
}

test('limits lowered on the command line: one clear line, exit 1; bad values exit 2; defaults unchanged', { timeout: 180_000 }, async (t) => {
  const work = await workspace('berth-limits-config-');
  t.after(() => removeWorkspace(work));
  const small = await layout(path.join(work, 'small'), Array.from({ length: 50 }, (_, i) => file(`f${i}`, 1000)));
  const big = await layout(path.join(work, 'big'), [file('big', 2 * 1024 * 1024)]);
  const deep = await layout(path.join(work, 'deep'), [file(`${'a/'.repeat(100)}x`, 1)]);
  const longest = await layout(path.join(work, 'longest'), [file(`${'a/'.repeat(2100)}x`, 1)]);
  const R = path.join(work, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  const before = await fingerprint(R);
  const loadFails = async (args: string[], want: RegExp, what: string) => {
    const r = await berth('--root', R, ...args);
    assert.match(oneLine(r, 1, what), want);
    assert.deepEqual(await fingerprint(R), before, `${what}: the store is unchanged`);
  };

  await t.test('defaults: the small image reads, unpacks and loads with no flags', async () => {
    assert.deepEqual(limits(), DEFAULT_LIMITS);
    assert.equal(DEFAULT_LIMITS.maxManifestBytes, 4 * 1024 * 1024);
    assert.equal(DEFAULT_LIMITS.maxConfigBytes, 8 * 1024 * 1024);
    assert.equal(DEFAULT_LIMITS.maxEntries, 4_000_000);
    assert.equal(DEFAULT_LIMITS.maxStreamEntries, 1_000_000);
    assert.equal(DEFAULT_LIMITS.maxBytes, 64 * 1024 ** 3);
    assert.equal(DEFAULT_LIMITS.maxPathBytes, 4096);
    assert.equal(DEFAULT_LIMITS.maxRatio, Number.POSITIVE_INFINITY);
    assert.equal((await berth('inspect', small)).code, 0);
    assert.equal((await berth('unpack', small, path.join(work, 'u-default'))).code, 0);
    assert.equal((await berth('unpack', deep, path.join(work, 'u-deep'))).code, 0);
    const help = await berth('--help');
    for (const flag of ['--max-manifest-bytes', '--max-config-bytes', '--max-entries', '--max-bytes', '--max-path', '--max-ratio']) {
      assert.match(help.stdout, new RegExp(`${flag} <n>`), flag);
    }
    assert.match(help.stdout, /default 4M\)/);
    assert.match(help.stdout, /default 8M\)/);
    assert.match(help.stdout, /default 64G\)/);
    assert.match(help.stdout, /default 4096\)/);
    assert.match(help.stdout, /default: no\s+ratio\s+limit/);
  });

  await t.test('--max-manifest-bytes', async () => {
    // index.json (about 250 bytes) is under 300, the manifest (about 400) is not
    assert.match(oneLine(await berth('--max-manifest-bytes', '300', 'inspect', small), 1, 'manifest'), /manifest sha256:[a-f0-9]{12}: size \d+ is over the limit of 300 bytes/);
    await loadFails(['--max-manifest-bytes', '300', 'load', small], /over the limit of 300 bytes/, 'load manifest');
    assert.match(oneLine(await berth('--max-manifest-bytes', '100', 'inspect', small), 1, 'index.json'), /reading index\.json in .*: \d+ bytes is over the limit of 100/);
    // the core parsers follow, then go back to the default for the next run
    assert.equal(jsonSizeCaps().manifest, 100);
    assert.equal((await berth('inspect', small)).code, 0);
    assert.equal(jsonSizeCaps().manifest, MAX_MANIFEST_BYTES);
  });

  await t.test('--max-config-bytes', async () => {
    assert.match(oneLine(await berth('--max-config-bytes', '50', 'config', small), 1, 'config'), /config sha256:[a-f0-9]{12}: size \d+ is over the limit of 50 bytes/);
    await loadFails(['--max-config-bytes', '50', 'load', small], /over (the limit of )?50 bytes/, 'load config');
  });

  await t.test('--max-entries: unpack, load (flag after the command too) and a plain tar read', async () => {
    assert.match(oneLine(await berth('--max-entries', '10', 'unpack', small, path.join(work, 'u-entries')), 1, 'unpack entries'), /more than 10 entries in all layers \(the unpack limit/);
    // the load's own tar reads stop at the same number, whichever comes first
    await loadFails(['load', small, '--max-entries', '10'], /more than 10 entries in all layers of this load \(the load limit\)|tar entry 10 "f10": too many entries \(want at most 10\)/, 'load entries');
    assert.match(oneLine(await berth('--max-entries', '10', 'ls', small), 1, 'ls entries'), /too many entries \(want at most 10\)|more than 10 entries/);
  });

  await t.test('--max-bytes: unpack and load', async () => {
    assert.match(oneLine(await berth('--max-bytes', '1M', 'unpack', big, path.join(work, 'u-bytes')), 1, 'unpack bytes'), /more than 1048576 uncompressed bytes in all layers \(the unpack limit/);
    await loadFails(['load', '--max-bytes', '1M', big], /more than 1048576 uncompressed bytes in all layers of this load \(the load limit\)/, 'load bytes');
  });

  await t.test('--max-path, and the default 4096 with a short line', async () => {
    const line = oneLine(await berth('--max-path', '100', 'unpack', deep, path.join(work, 'u-path')), 1, 'unpack path');
    assert.match(line, /tar entry 0 "a\/a\/.*….*\/x": name is 201 bytes, over the path limit of 100 \(--max-path\)/);
    await loadFails(['--max-path', '100', 'load', deep], /tar entry 0 .*over the path limit of 100/, 'load path');
    assert.match(oneLine(await berth('unpack', longest, path.join(work, 'u-longest')), 1, 'default path', 300), /name is 4201 bytes, over the path limit of 4096/);
    await loadFails(['load', longest], /name is 4201 bytes, over the path limit of 4096/, 'load default path');
  });

  await t.test('bad values are usage errors (exit 2)', async () => {
    for (const [flag, value] of [['--max-bytes', 'abc'], ['--max-entries', '0'], ['--max-ratio', '-1'], ['--max-path', '1.5'], ['--max-manifest-bytes', '1X'], ['--max-config-bytes', ''], ['--max-ratio', 'lots']] as const) {
      const r = await berth(flag, value, 'inspect', small);
      assert.match(oneLine(r, 2, `${flag} ${value}`), new RegExp(`${flag} must be a positive`), `${flag} ${value}`);
    }
    assert.deepEqual(limits(), DEFAULT_LIMITS, 'a refused value changes nothing');
  });
});

test('a gzip bomb of zeros (64 MiB) stops at --max-ratio 10', { timeout: 120_000 }, async (t) => {
  const work = await workspace('berth-limits-ratio-');
  t.after(() => removeWorkspace(work));
  const size = 64 << 20;
  async function* zeros(): ByteStream {
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < size / chunk.length; i++) yield chunk;
  }
  const d = path.join(work, 'bomb');
  await mkdir(d);
  // one member of 64 MiB zeros: the layout helper above holds the tar in memory, fine at this size
  await layout(d, [{ header: { name: 'zeros', type: 'file', size }, body: zeros() }]);
  const ratioLine = /decompressing layer .*: \d+ bytes out of \d+ compressed is over the ratio limit of 10:1 \(a decompression bomb\? --max-ratio\)/;
  for (const cmd of [['unpack', d, path.join(work, 'u')], ['ls', d]]) {
    assert.match(oneLine(await berth('--max-ratio', '10', ...cmd), 1, cmd[0]!), ratioLine);
  }
  // verify reports on stdout, one error line for the layer
  const v = await berth('--max-ratio', '10', 'verify', d);
  assert.equal(v.code, 1);
  assert.equal(v.stdout.split('\n').filter((l) => ratioLine.test(l)).length, 1, v.stdout);
  const R = path.join(work, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  const before = await fingerprint(R);
  assert.match(oneLine(await berth('--root', R, '--max-ratio', '10', 'load', d), 1, 'load'), /over the ratio limit of 10:1/);
  assert.deepEqual(await fingerprint(R), before, 'the store is unchanged');
  // no ratio limit by default: zero-filled layers are real (gzip reaches ~1032:1 on them); the
  // byte caps stop bombs, and a raised ratio lets the same layer through
  const vd = await berth('verify', d);
  assert.equal(vd.code, 0, vd.stdout);
  assert.equal((await berth('--max-ratio', '2000', 'unpack', d, path.join(work, 'u2'))).code, 0);
});
