/**
 * Fuzzing the tar reader, the archive index and tar-split (short mode, fixed seeds), and a
 * truncation sweep: a real archive cut at every byte offset must read cleanly or fail with a
 * BerthError.
 */
import { after, describe, test } from 'node:test';
import { fromBytes, drain } from '../../src/io/stream.js';
import { readTar } from '../../src/tar/reader.js';
import { loadTars } from './corpus.js';
import { expectClean } from './harness.js';
import { runShort } from './short.js';
import { findTarget, removeFuzzWorkspace } from './targets.js';

after(removeFuzzWorkspace);

describe('fuzz: tar', () => {
  for (const name of ['tar-random-headers', 'tar-pax', 'tar-gnu-longname', 'tar-mutated', 'tar-archive-index', 'tar-split']) {
    test(name, async () => runShort(findTarget(name)));
  }

  test('a real archive cut at every byte offset reads cleanly or fails with a BerthError', async () => {
    const tars = await loadTars();
    // the smallest archive with more than one member, so the cuts cross headers, bodies and padding
    const smallest = [...tars].sort((a, b) => a.bytes.length - b.bytes.length).find((t) => t.bytes.length >= 3 * 512)!;
    const bytes = smallest.bytes;
    for (let cut = 0; cut <= bytes.length; cut++) {
      await expectClean(`readTar of ${smallest.label} cut at ${cut}`, async () => {
        for await (const e of readTar(fromBytes(bytes.subarray(0, cut)))) await drain(e.body());
      });
    }
  });
});
