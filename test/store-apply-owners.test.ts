/**
 * Owners applied by the store's layer applier as root: chown is skipped only when it would
 * change nothing, so every entry must end up owned as its header says, also under a setgid
 * layer root (whose group new entries would otherwise inherit).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { toBytes } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';
import { applyLayer } from '../src/transports/store/apply.js';
import { needRoot } from './support/peers.js';

const entries: TarWriteEntry[] = [
  { header: { name: 'd/', type: 'directory', mode: 0o755 } },
  { header: { name: 'd/f', type: 'file', mode: 0o644 }, body: new TextEncoder().encode('f\n') },
  { header: { name: 'd/g', type: 'file', mode: 0o640, uid: 1000, gid: 1001 }, body: new TextEncoder().encode('g\n') },
  { header: { name: 'd/l', type: 'symlink', linkname: 'f' } },
  { header: { name: 'd/m', type: 'symlink', linkname: 'g', uid: 7, gid: 0 } },
  { header: { name: 's/', type: 'directory', mode: 0o2775, gid: 50 } },
  { header: { name: 's/x', type: 'file', mode: 0o644 }, body: new TextEncoder().encode('x\n') },
  { header: { name: 'o/', type: 'directory', mode: 0o755, uid: 3, gid: 4 } },
];
const want: Record<string, [number, number]> = { d: [0, 0], 'd/f': [0, 0], 'd/g': [1000, 1001], 'd/l': [0, 0], 'd/m': [7, 0], s: [0, 50], 's/x': [0, 0], o: [3, 4] };

for (const setgidRoot of [false, true]) {
  test(`as root, entries are owned as their headers say (${setgidRoot ? 'setgid' : 'plain'} layer root)`, async (t: TestContext) => {
    if (!needRoot(t)) return;
    const work = mkdtempSync('/dev/shm/berth-owners-');
    try {
      const root = join(work, 'diff');
      mkdirSync(root);
      if (setgidRoot) {
        chownSync(root, 0, 60);
        chmodSync(root, 0o2755);
      }
      const tar = await toBytes(writeTar(entries));
      await applyLayer((async function* () {
        yield tar;
      })(), root, { mode: 'overlay', tarSplitFile: join(work, 'tar-split.json.gz'), what: 'owners layer', privileged: true });
      for (const [rel, [uid, gid]] of Object.entries(want)) {
        const st = lstatSync(join(root, rel));
        assert.deepEqual([st.uid, st.gid], [uid, gid], `${rel} owner`);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}
