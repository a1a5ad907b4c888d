/**
 * End-to-end fuzzing (short mode, fixed seeds): damaged copies of real layouts and archives
 * through treeOf, inspectReference, platformsOf and verifyReference, each operation under a
 * deadline; then the heap must be back under the limit.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HEAP_LIMIT_BYTES, heapUsed } from './harness.js';
import { runShort } from './short.js';
import { findTarget, removeFuzzWorkspace } from './targets.js';

after(removeFuzzWorkspace);

describe('fuzz: archives and layouts end to end', () => {
  test('e2e-layout', async () => runShort(findTarget('e2e-layout')));
  test('e2e-archive', async () => runShort(findTarget('e2e-archive')));
  test('heap after the batch stays under the limit', () => {
    const used = heapUsed();
    assert.ok(used < HEAP_LIMIT_BYTES, `heap in use ${used} bytes, limit ${HEAP_LIMIT_BYTES}`);
  });
});
