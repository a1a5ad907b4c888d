/**
 * The copy engine hashes each byte once and destinations trust its self-verifying streams; these
 * tests tamper with real sources (a registry's storage, a docker-archive) and check that every
 * copy path still refuses the bytes and leaves nothing at the destination. Plus peers (Go) read
 * the block-parallel gzip berth writes when it recompresses.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { copyReference } from '../src/index.js';
import { isBerthError, type ErrorCode } from '../src/core/errors.js';
import { needPeer, requirePeer } from './support/peers.js';
import { makeRandomDockerArchive, makeRandomOciLayout } from './support/registry-image.js';
import { startRegistry, type RunningRegistry } from './support/registry.js';
import { flipInArchive, flipInFile, removeDir, tempDir } from './support/tamper.js';

const run = promisify(execFile);
const quiet = {};

async function gone(p: string): Promise<boolean> {
  return access(p).then(() => false, () => true);
}

async function refused(p: Promise<unknown>, codes: readonly ErrorCode[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(codes.some((c) => isBerthError(err, c)), `want ${codes.join(' or ')}, got ${String(err)}`);
    return true;
  });
}

/** Every sibling of `file` that copying left behind (staging dirs, temp files). */
async function leftovers(dir: string, keep: readonly string[]): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !keep.includes(n));
}

let work = '';
before(async () => {
  work = await tempDir('berth-verify-once-', '/dev/shm');
});
after(async () => {
  if (work !== '') await removeDir(work);
});

test('a registry serving a tampered layer: pull into oci, oci + zstd and docker-archive all refuse it', async (t: TestContext) => {
  if (!needPeer(t, 'registry')) return;
  let reg: RunningRegistry | undefined;
  try {
    reg = await startRegistry();
    const image = await makeRandomOciLayout(path.join(work, 'src-layout'), [300_000, 200_000]);
    const ref = `docker://${reg.host}/tamper/img:1`;
    await copyReference(image.reference, ref, quiet);
    // a good pull first, so the refusals below are the digest check and nothing else
    await copyReference(ref, `oci:${path.join(work, 'good')}:x`, quiet);
    const layer = image.layerDigests[0]!.slice(7);
    await flipInFile(path.join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.slice(0, 2), layer, 'data'));
    const out = path.join(work, 'pull');
    const rows = [
      { name: 'oci (bytes kept)', dest: `oci:${path.join(out, 'layout')}:x`, target: path.join(out, 'layout'), opts: {}, codes: ['BERTH_DIGEST_MISMATCH'] as const },
      { name: 'oci, recompressed to zstd', dest: `oci:${path.join(out, 'zstd')}:x`, target: path.join(out, 'zstd'), opts: { compression: 'zstd' as const }, codes: ['BERTH_DIGEST_MISMATCH', 'BERTH_COMPRESSION'] as const },
      { name: 'docker-archive (decompressed)', dest: `docker-archive:${path.join(out, 'img.tar')}:x:1`, target: path.join(out, 'img.tar'), opts: {}, codes: ['BERTH_DIGEST_MISMATCH', 'BERTH_COMPRESSION'] as const },
    ];
    await mkdir(out, { recursive: true });
    for (const row of rows) {
      await t.test(row.name, async () => {
        await refused(copyReference(ref, row.dest, { ...quiet, ...row.opts }), row.codes);
        assert.ok(await gone(row.target), `${row.target} was not created`);
        assert.deepEqual(await leftovers(out, []), [], 'no staging left');
      });
    }
  } finally {
    await reg?.stop();
  }
});

test('a docker-archive with a tampered layer.tar: copies to oci (as is and gzip) refuse it; the good archive goes through and Go reads berth\'s gzip', async (t: TestContext) => {
  const dir = path.join(work, 'da');
  const image = await makeRandomDockerArchive(dir, [400_000, 150_000]);
  const archive = image.reference.slice('docker-archive:'.length);
  const gz = path.join(dir, 'gz');
  await copyReference(image.reference, `oci:${gz}:x`, { ...quiet, compression: 'gzip' });
  if (needPeer(t, 'skopeo')) {
    // skopeo decompresses the layers for a docker-archive and checks them against the diff_ids
    const back = path.join(dir, 'back.tar');
    await run(requirePeer('skopeo'), ['copy', '-q', `oci:${gz}:x`, `docker-archive:${back}:back:1`]);
    assert.ok(!(await gone(back)));
  }
  if (needPeer(t, 'umoci')) {
    const bundle = path.join(dir, 'bundle');
    await run(requirePeer('umoci'), ['unpack', '--rootless', '--image', `${gz}:x`, bundle]);
    assert.equal((await stat(path.join(bundle, 'rootfs', 'data', 'blob0.bin'))).size, 400_000, 'umoci unpacked the first layer');
  }
  await flipInArchive(archive, `${image.layerDigests[0]!.slice(7)}/layer.tar`);
  for (const compression of ['preserve', 'gzip', 'none'] as const) {
    await t.test(`--compression ${compression}`, async () => {
      const target = path.join(dir, `bad-${compression}`);
      await refused(copyReference(image.reference, `oci:${target}:x`, { ...quiet, compression }), ['BERTH_DIGEST_MISMATCH']);
      assert.ok(await gone(target), `${target} was not created`);
    });
  }
  await t.test('into a docker-archive', async () => {
    const target = path.join(dir, 'bad.tar');
    await refused(copyReference(image.reference, `docker-archive:${target}:x:1`, quiet), ['BERTH_DIGEST_MISMATCH']);
    assert.ok(await gone(target));
  });
});
