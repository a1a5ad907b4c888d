/**
 * The built front-end: within its size budget (300 KB gzipped, everything the page loads), made
 * only of local files, and runnable under the server's CSP (no inline script, no eval).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const WEB = fileURLToPath(new URL('../ui/web/', import.meta.url));
const BUDGET = 300 * 1024;

test('the front-end is built (npm run build runs build:ui)', () => {
  assert.ok(existsSync(path.join(WEB, 'index.html')), `${WEB}index.html is missing`);
});

test(`the bundle fits the budget of ${BUDGET / 1024} KB gzipped`, (t) => {
  const assets = readdirSync(path.join(WEB, 'assets'));
  let total = gzipSync(readFileSync(path.join(WEB, 'index.html')), { level: 9 }).length;
  for (const a of assets) {
    const gz = gzipSync(readFileSync(path.join(WEB, 'assets', a)), { level: 9 }).length;
    t.diagnostic(`${a}: ${gz} bytes gzipped`);
    total += gz;
  }
  t.diagnostic(`total: ${total} bytes gzipped`);
  assert.ok(total <= BUDGET, `the front-end is ${total} bytes gzipped, over the ${BUDGET} budget`);
});

test('the page loads only its own assets, with no inline script or style', () => {
  const html = readFileSync(path.join(WEB, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing from another origin');
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script has a src');
  assert.doesNotMatch(html, /<style|\sstyle=/, 'no inline styles');
  for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
    const ref = m[1]!;
    if (ref.startsWith('data:')) continue;
    assert.match(ref, /^\/assets\/[A-Za-z0-9._-]+$/, ref);
    assert.ok(existsSync(path.join(WEB, ref)), `${ref} is not in the build`);
  }
});

test('the scripts use no eval and import nothing from Node or the network', () => {
  for (const a of readdirSync(path.join(WEB, 'assets')).filter((f) => f.endsWith('.js'))) {
    const js = readFileSync(path.join(WEB, 'assets', a), 'utf8');
    assert.doesNotMatch(js, /\bnew Function\(|\beval\(/, `${a} evaluates strings (the CSP forbids it)`);
    assert.doesNotMatch(js, /from\s*["']node:|import\(["']https?:/, `${a} imports from Node or the network`);
  }
});
