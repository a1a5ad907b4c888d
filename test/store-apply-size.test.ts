/**
 * overlay2's layer `size` (lstat sizes of the non-directories in diff/, each hard-linked inode
 * once) is counted by the store's applier while it writes the entries; it must equal what
 * measuring the directory afterwards (overlaySize) gives, also when the layer replaces or
 * whites out something it made itself (the count is then dropped for a measurement). Device
 * nodes are made at the end in one batch: a later entry at or under one's path still wins.
 */
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { toBytes } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';
import { applyLayer, overlaySize } from '../src/transports/store/apply.js';

const enc = new TextEncoder();
const isRoot = process.getuid?.() === 0;

const plain: TarWriteEntry[] = [
  { header: { name: 'a/', type: 'directory' } },
  { header: { name: 'a/f', type: 'file', mode: 0o644 }, body: enc.encode('0123456789') },
  { header: { name: 'a/e', type: 'file', mode: 0o600 } },
  { header: { name: 'a/h', type: 'link', linkname: 'a/f' } },
  { header: { name: 'a/h2', type: 'link', linkname: 'a/h' } },
  { header: { name: 'a/s', type: 'symlink', linkname: 'f' } },
  { header: { name: 'a/u', type: 'symlink', linkname: 'ünïcødé/→/target' } },
  { header: { name: 'a/long', type: 'symlink', linkname: 'x/'.repeat(300) } },
  { header: { name: 'a/hs', type: 'link', linkname: 'a/s' } },
  { header: { name: 'a/.wh.gone', type: 'file' } },
  { header: { name: 'a/.wh..wh..opq', type: 'file' } },
  { header: { name: 'b/c/d', type: 'file', mode: 0o755 }, body: enc.encode('x'.repeat(5000)) },
  { header: { name: 'b/c/hd', type: 'link', linkname: 'b/c/d' } },
  { header: { name: 'p', type: 'fifo', mode: 0o644 } },
  { header: { name: 'n', type: 'char', mode: 0o600, devmajor: 1, devminor: 3 } },
  { header: { name: 'hn', type: 'link', linkname: 'n' } },
  { header: { name: 'big', type: 'file', mode: 0o4755 }, body: new Uint8Array(70_000).fill(7) },
];

/** A file later turned into a directory by a deeper entry, and a whiteout of a file this layer made. */
const replacing: TarWriteEntry[] = [
  { header: { name: 'x', type: 'file' }, body: enc.encode('gone soon') },
  { header: { name: 'x/y', type: 'file' }, body: enc.encode('stays') },
  { header: { name: 'k', type: 'file' }, body: enc.encode('kept') },
  { header: { name: 'w', type: 'file' }, body: enc.encode('whited out') },
  { header: { name: 'l', type: 'link', linkname: 'w' } },
  { header: { name: '.wh.w', type: 'file' } },
  { header: { name: 'dv', type: 'char', mode: 0o600, devmajor: 1, devminor: 5 } },
  { header: { name: 'dv/x', type: 'file' }, body: enc.encode('under') },
];

for (const [label, entries] of [['links, symlinks, whiteouts, empty files, devices', plain], ['entries replaced by the same layer', replacing]] as const) {
  for (const privileged of isRoot ? [true, false] : [false]) {
    test(`overlay2 size counted while applying equals the measured one: ${label} (${privileged ? 'root' : 'unprivileged'})`, async () => {
      const work = mkdtempSync('/dev/shm/berth-size-');
      try {
        const root = join(work, 'diff');
        mkdirSync(root);
        // without root the device is not made, so nothing can link to it
        const tar = await toBytes(writeTar(privileged ? entries : entries.filter((e) => e.header.name !== 'hn')));
        const res = await applyLayer((async function* () {
          yield tar;
        })(), root, { mode: 'overlay', tarSplitFile: join(work, 'tar-split.json.gz'), what: 'size layer', privileged });
        const measured = overlaySize(root);
        assert.equal(res.size, measured);
        if (entries === plain) {
          // 10 (f, h, h2) + 0 (e) + 1 (s, hs) + 22 + 600 (symlink targets in bytes) + 5000 (d, hd) + 70000
          assert.equal(measured, 10 + 1 + Buffer.byteLength('ünïcødé/→/target') + 600 + 5000 + 70_000);
          assert.equal(lstatSync(join(root, 'a/h2')).nlink, 3);
          if (privileged) {
            assert.ok(lstatSync(join(root, 'a/gone')).isCharacterDevice());
            const p = lstatSync(join(root, 'p'));
            assert.ok(p.isFIFO());
            assert.equal(p.mode & 0o7777, 0o644);
            const n = lstatSync(join(root, 'n'));
            assert.ok(n.isCharacterDevice());
            assert.deepEqual([n.rdev >> 8, n.rdev & 0xff, n.nlink, n.mode & 0o7777], [1, 3, 2, 0o600]);
          }
        } else {
          // x/y, k, and w's inode once (as l after the whiteout replaced w by a device, or as both w and l), dv/x
          assert.equal(measured, 'stays'.length + 'kept'.length + 'whited out'.length + 'under'.length);
          assert.ok(lstatSync(join(root, 'dv')).isDirectory());
        }
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
}
