/**
 * The store corruption matrix (issue 11): every kind of file in a data root, mutated four ways
 * (truncated to half, one byte flipped, deleted, a trailing newline added). For each cell,
 * `berth store fsck` must exit 1 with a line naming the file and what is wrong, unless the cell
 * is one dockerd accepts too (listed in TOLERATED with the reason), and `berth save` must either
 * refuse or write an archive that verifies and holds the original image: never a silently wrong
 * layer. Set BERTH_MATRIX_OUT=FILE to write the outcome as a markdown table.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readlink, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { copyStore } from './crash.js';
import { berth, removeWorkspace, SAMPLE, workspace } from './harness.js';

type Mutation = 'truncate' | 'flip' | 'delete' | 'newline';
const MUTATIONS: readonly Mutation[] = ['truncate', 'flip', 'delete', 'newline'];

interface Target {
  readonly kind: string;
  /** Relative to the root. */
  readonly rel: string;
  /** What an fsck line must contain to name this file. */
  readonly names: readonly string[];
  readonly symlink?: boolean;
}

/** Cells fsck does not report, with why that is right (formats.md 10.9: dockerd accepts them too). */
const TOLERATED: Readonly<Record<string, string>> = {
  'diff newline': 'dockerd trims diff when reading it; so does berth',
  'cache-id newline': 'dockerd trims cache-id; so does berth',
  'parent newline': 'dockerd trims parent; so does berth',
  'size truncate': 'half of "1234" is "12", still a plain integer: dockerd accepts any integer (size is only what docker images shows); berth does not recompute it',
  'size flip': 'the flipped digit leaves a plain integer ("189" → "199"): dockerd accepts it, and berth does not recompute sizes either',
  'repositories.json newline': 'valid JSON with a trailing newline: dockerd reads any valid JSON',
  'repositories.json delete': 'a missing repositories.json means no names: dockerd starts with none and writes {"Repositories":{}}; the images stay, untagged',
  'link newline': 'dockerd trims link (and tolerates a missing one); berth trims it',
  'lower newline': 'dockerd trims lower; so does berth',
};

async function mutate(file: string, how: Mutation, isLink: boolean): Promise<void> {
  if (isLink) {
    const target = await readlink(file);
    await unlink(file);
    if (how === 'delete') return;
    const b = Buffer.from(target);
    if (how === 'truncate') await symlink(b.subarray(0, Math.floor(b.length / 2)).toString(), file);
    else if (how === 'flip') {
      b[Math.floor(b.length / 2)]! ^= 0x01;
      await symlink(b.toString(), file);
    } else await symlink(`${target}\n`, file);
    return;
  }
  if (how === 'delete') return unlink(file);
  const b = await readFile(file);
  if (how === 'truncate') return truncate(file, Math.floor(b.length / 2));
  if (how === 'flip') {
    b[Math.floor(b.length / 2)]! ^= 0x01;
    return writeFile(file, b);
  }
  return writeFile(file, Buffer.concat([b, Buffer.from('\n')]));
}

test('store corruption matrix: fsck names every damaged file; save never emits a wrong layer', { timeout: 300_000 }, async (t) => {
  const work = await workspace('berth-corrupt-');
  t.after(() => removeWorkspace(work));
  const seed = path.join(work, 'seed');
  assert.equal((await berth('--root', seed, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  const trace = JSON.parse((await berth('--root', seed, 'trace', 'berth-sample', '--format', 'json')).stdout) as {
    image: { id: string };
    layers: Array<{ chainId: string; diffId: string; cacheId: string; files: string; overlay: { link: string } }>;
  };
  const id = trace.image.id;
  const l = trace.layers[1]!; // the middle layer: it has a parent, a lower, a child and files of its own
  const db = `image/overlay2/layerdb/sha256/${l.chainId.slice(7)}`;
  const targets: Target[] = [
    { kind: 'config', rel: `image/overlay2/imagedb/content/sha256/${id.slice(7)}`, names: [`imagedb/content/sha256/${id.slice(7)}`] },
    ...['diff', 'size', 'cache-id', 'parent', 'tar-split.json.gz'].map((n) => ({ kind: n, rel: `${db}/${n}`, names: [db, n] })),
    { kind: 'diff/ file', rel: `${l.files}/etc/greeting`, names: ['etc/greeting'] },
    { kind: 'repositories.json', rel: 'image/overlay2/repositories.json', names: ['repositories.json'] },
    { kind: 'link', rel: `overlay2/${l.cacheId}/link`, names: [`overlay2/${l.cacheId}/link`] },
    { kind: 'lower', rel: `overlay2/${l.cacheId}/lower`, names: [`overlay2/${l.cacheId}/lower`] },
    { kind: 'l/ link', rel: `overlay2/l/${l.overlay.link}`, names: [`overlay2/l/${l.overlay.link}`], symlink: true },
  ];
  const rows: string[] = [];
  const failures: string[] = [];
  let n = 0;
  for (const target of targets) {
    for (const how of MUTATIONS) {
      const cell = `${target.kind} ${how}`;
      const R = await copyStore(seed, path.join(work, `r${n++}`));
      await mutate(path.join(R, target.rel), how, target.symlink === true);
      const fsck = await berth('--root', R, 'store', 'fsck');
      const lines = fsck.stdout.trim().split('\n').slice(0, -1);
      const naming = lines.filter((line) => target.names.every((x) => line.includes(x)));
      const tolerated = TOLERATED[cell];
      let fsckOutcome: string;
      if (fsck.code === 1 && naming.length > 0) fsckOutcome = `exit 1: \`${naming[0]!.replace(/sha256:[a-f0-9]{12,64}/g, 'sha256:…').replace(/[a-f0-9]{64}/g, '<hex>').replace(/\|/g, '\\|')}\``;
      else if (fsck.code === 0 && tolerated !== undefined) fsckOutcome = `exit 0 (tolerated: ${tolerated})`;
      else {
        fsckOutcome = `exit ${fsck.code}, no line naming the file`;
        failures.push(`${cell}: fsck exit ${fsck.code}, lines:\n  ${lines.join('\n  ')}`);
      }
      if (fsck.code === 1 && tolerated !== undefined) failures.push(`${cell}: listed as tolerated but fsck reports it (update TOLERATED): ${lines.join(' | ')}`);
      const out = path.join(work, `s${n}.tar`);
      const save = await berth('--root', R, 'save', 'berth-sample', '-o', out);
      let saveOutcome: string;
      if (save.code !== 0) {
        saveOutcome = 'refused';
        if (existsSync(out)) failures.push(`${cell}: save failed but left ${out}`);
      } else {
        const v = await berth('verify', '--quiet', `docker-archive:${out}`);
        const tree = await berth('tree', '--format', 'json', `docker-archive:${out}`);
        const original = tree.stdout.includes(id) && trace.layers.every((x) => tree.stdout.includes(x.diffId));
        if (v.code === 0 && original) saveOutcome = 'correct archive';
        else {
          saveOutcome = 'WRONG ARCHIVE';
          failures.push(`${cell}: save wrote an archive that ${v.code !== 0 ? 'does not verify' : 'is not the original image'}`);
        }
      }
      if (saveOutcome === 'correct archive' && fsck.code === 1 && /^(config|tar-split|diff\/ file)/.test(target.kind) && how !== 'newline') {
        // Content damage must stop save.
        failures.push(`${cell}: fsck finds content damage but save wrote an archive`);
      }
      rows.push(`| ${target.kind} | ${how} | ${fsckOutcome} | ${saveOutcome} |`);
      await rm(R, { recursive: true, force: true });
      await rm(out, { force: true });
    }
  }
  const table = ['| file | mutation | `berth store fsck` | `berth save` |', '|---|---|---|---|', ...rows].join('\n');
  if (process.env.BERTH_MATRIX_OUT) await writeFile(process.env.BERTH_MATRIX_OUT, `${table}\n`);
  t.diagnostic(`${rows.length} cells`);
  assert.deepEqual(failures, [], table);
});
