import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { needPeer, peerPath, type PeerName } from './peers.js';

/** A stand-in TestContext that records skip() and diagnostic() calls. */
function fakeContext(): { t: TestContext; skipped: string[]; notes: string[] } {
  const skipped: string[] = [];
  const notes: string[] = [];
  const t = {
    skip: (msg?: string) => { skipped.push(msg ?? ''); },
    diagnostic: (msg: string) => { notes.push(msg); },
  } as unknown as TestContext;
  return { t, skipped, notes };
}

const MISSING = 'not-a-real-peer' as PeerName;

test('peerPath', async (t) => {
  await t.test('docker is the Debian client in /usr/bin, never /usr/local/bin', () => {
    const p = peerPath('docker');
    if (p !== undefined) assert.equal(p, '/usr/bin/docker');
  });
  await t.test('registry is Debian docker-registry', () => {
    const p = peerPath('registry');
    if (p !== undefined) assert.match(p, /\/(docker-)?registry$/);
  });
  await t.test('an unknown name is missing', () => {
    assert.equal(peerPath(MISSING), undefined);
  });
});

test('needPeer on a missing peer', async (t) => {
  const saved = process.env.CI;
  t.after(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });
  await t.test('outside CI it skips with a generic reason and returns false', () => {
    delete process.env.CI;
    const f = fakeContext();
    assert.equal(needPeer(f.t, MISSING), false);
    assert.equal(f.skipped.length, 1);
    assert.ok(!f.skipped[0]!.includes(MISSING));
    assert.match(f.notes.join('\n'), /not-a-real-peer/);
  });
  await t.test('reject: under CI=true it fails the test', () => {
    process.env.CI = 'true';
    const f = fakeContext();
    assert.throws(() => needPeer(f.t, MISSING), /missing and CI requires it/);
    assert.equal(f.skipped.length, 0);
  });
});
