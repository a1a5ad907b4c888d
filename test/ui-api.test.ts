/**
 * The explorer's JSON API, every route, on the bundled sample and on images built here: the
 * answers agree with the library, bad input gets a clear JSON error, responses are bounded, and
 * the server's guards (host, header, CSP, read-only, assets) hold.
 */
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { readFile, parsePlatform, treeOf, type TreeNode } from '../src/index.js';
import { API_HEADER, FILE_HEADERS, LIMITS, type ApiError, type ChangesResponse, type DiffResponse, type FilesResponse, type RawResponse, type RefsResponse, type SearchResponse } from '../ui/api.js';
import { configChanges, sampleReference, startExplorer, type Explorer } from '../ui/server.js';
import { api, dirEntry, fileEntry, removeDir, tempDir, writeImageLayout } from './support/ui.js';

const SAMPLE = sampleReference();
const AMD64 = 'linux/amd64';

async function bytesOf(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

function errorOf(json: unknown): ApiError['error'] {
  const e = (json as ApiError).error;
  assert.ok(e !== undefined, `expected a JSON error, got ${JSON.stringify(json)}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  return e;
}

describe('explorer API', () => {
  let explorer: Explorer;
  let base: string;
  let dir: string;
  let small: string;
  const big = Buffer.alloc(LIMITS.previewBytes + 10, 0x61);
  const binary = Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x41, 0x42]);

  before(async () => {
    dir = await tempDir('berth-ui-api-');
    small = await writeImageLayout(dir, [
      { createdBy: 'ADD base', entries: [dirEntry('etc/'), fileEntry('etc/hello', 'hello from a test image\n'), fileEntry('etc/gone', 'deleted by layer 1\n'), fileEntry('bin.dat', binary), fileEntry('big.txt', big)] },
      { createdBy: 'RUN change', entries: [fileEntry('etc/hello', 'changed\n'), fileEntry('etc/.wh.gone', ''), fileEntry('new.txt', 'new\n')] },
    ], { env: ['PATH=/usr/bin:/bin', 'MODE=test'] });
    explorer = await startExplorer({ refs: [small] });
    base = explorer.url;
  });
  after(async () => {
    await explorer.close();
    await removeDir(dir);
  });

  test('listens on loopback by default', () => {
    assert.equal(explorer.host, '127.0.0.1');
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test('refs: the arguments first, then the sample, and what the store says', async () => {
    const r = await api(base, 'refs');
    assert.equal(r.status, 200);
    const body = r.json as RefsResponse;
    assert.deepEqual(body.refs.slice(0, 2).map((x) => [x.ref, x.source]), [[small, 'argument'], [SAMPLE, 'sample']]);
    assert.equal(typeof body.store.available, 'boolean');
  });

  test('tree: the sample as the CLI draws it (both platforms, each with its attestation manifest)', async () => {
    const r = await api(base, 'tree', { ref: SAMPLE });
    assert.equal(r.status, 200);
    const body = r.json as { tree: TreeNode; format: string };
    assert.deepEqual(body, JSON.parse(JSON.stringify(await treeOf(SAMPLE))));
    assert.equal(body.format, 'oci-layout');
    const index = body.tree.children[0]!;
    assert.equal(index.role, 'index');
    const images = index.children.filter((c) => c.role === 'image');
    assert.deepEqual(images.map((i) => i.platform).sort(), ['linux/amd64', 'linux/arm64/v8']);
    for (const img of images) assert.equal(img.children.filter((c) => c.role === 'attestation').length, 1);
  });

  test('raw: the entry point, a manifest (indented), a layer (not shown); bad and unknown digests', async () => {
    const entry = (await api(base, 'raw', { ref: SAMPLE })).json as RawResponse;
    assert.equal(entry.file, 'index.json');
    assert.equal(entry.kind, 'json');
    assert.match(entry.text!, /^\{\n {2}"schemaVersion": 2/);
    const tree = await treeOf(SAMPLE);
    const image = tree.tree.children[0]!.children.find((c) => c.platform === AMD64)!;
    const m = (await api(base, 'raw', { ref: SAMPLE, digest: image.digest })).json as RawResponse;
    assert.equal(m.kind, 'json');
    assert.equal(m.size, image.size);
    assert.equal(JSON.parse(m.text!).mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const layer = image.children.find((c) => c.role === 'layer')!;
    const l = (await api(base, 'raw', { ref: SAMPLE, digest: layer.digest })).json as RawResponse;
    assert.equal(l.kind, 'binary');
    assert.equal(l.text, undefined);
    const bad = await api(base, 'raw', { ref: SAMPLE, digest: 'sha256:xyz' });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad.json).code, 'BERTH_INVALID_DIGEST');
    const unknown = await api(base, 'raw', { ref: SAMPLE, digest: `sha256:${'0'.repeat(64)}` });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.json).code, 'BERTH_NOT_FOUND');
  });

  test('inspect and platforms', async () => {
    const i = await api(base, 'inspect', { ref: SAMPLE, platform: 'linux/arm64' });
    assert.equal(i.status, 200);
    assert.equal((i.json as { platform: string }).platform, 'linux/arm64/v8');
    const p = await api(base, 'platforms', { ref: SAMPLE });
    const plats = (p.json as { platforms: Array<{ platform: string; attestations: unknown[] }> }).platforms;
    assert.deepEqual(plats.map((x) => x.platform), ['linux/amd64', 'linux/arm64/v8']);
    for (const x of plats) assert.equal(x.attestations.length, 1);
    const bad = await api(base, 'inspect', { ref: SAMPLE, platform: 'not a platform' });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad.json).code, 'BERTH_INVALID_PLATFORM');
    const none = await api(base, 'inspect', { ref: SAMPLE, platform: 'windows/amd64' });
    assert.equal(none.status, 404);
    assert.equal(errorOf(none.json).code, 'BERTH_NO_MATCHING_PLATFORM');
  });

  test('attestations: provenance and SBOM summaries per platform', async () => {
    const r = await api(base, 'attestations', { ref: SAMPLE });
    const body = r.json as { images: Array<{ platform: string; attestations: Array<{ statements: Array<{ summary?: { kind: string; builderId?: string; packageCount?: number } }> }> }> };
    assert.equal(body.images.length, 2);
    for (const img of body.images) {
      const kinds = img.attestations[0]!.statements.map((s) => s.summary?.kind);
      assert.deepEqual(kinds.sort(), ['provenance', 'sbom']);
      const prov = img.attestations[0]!.statements.find((s) => s.summary?.kind === 'provenance')!;
      assert.equal(prov.summary!.builderId, 'https://example.com/berth/builders/sample');
    }
  });

  test('layers: sizes, diff_ids, history steps, changes and wasted bytes', async () => {
    const r = await api(base, 'layers', { ref: small });
    const body = r.json as { layers: Array<{ filesAdded: number; filesModified: number; filesDeleted: number; wastedBytes: number; history?: { createdBy?: string } }> };
    assert.equal(body.layers.length, 2);
    assert.equal(body.layers[1]!.history?.createdBy, 'RUN change');
    assert.equal(body.layers[1]!.filesDeleted, 1);
    assert.ok(body.layers[0]!.wastedBytes > 0, 'etc/hello of layer 0 is overwritten by layer 1');
  });

  test('files: one directory, sorted, paged, with the layer of each entry', async () => {
    const root = (await api(base, 'files', { ref: small, path: '/' })).json as FilesResponse;
    assert.deepEqual(root.entries.map((e) => e.name), ['big.txt', 'bin.dat', 'etc', 'new.txt']);
    assert.equal(root.total, 4);
    const etc = (await api(base, 'files', { ref: small, path: '/etc' })).json as FilesResponse;
    assert.deepEqual(etc.entries.map((e) => [e.path, e.layer]), [['/etc/hello', 1]]);
    const asOf0 = (await api(base, 'files', { ref: small, path: '/etc', layer: 0 })).json as FilesResponse;
    assert.deepEqual(asOf0.entries.map((e) => [e.path, e.layer]), [['/etc/gone', 0], ['/etc/hello', 0]]);
    const page = (await api(base, 'files', { ref: small, path: '/', offset: 1, limit: 2 })).json as FilesResponse;
    assert.deepEqual(page.entries.map((e) => e.name), ['bin.dat', 'etc']);
    assert.equal(page.total, 4);
    const sample = (await api(base, 'files', { ref: SAMPLE, platform: AMD64, path: '/' })).json as FilesResponse;
    assert.deepEqual(sample.entries.map((e) => e.name), ['bin', 'data', 'etc', 'usr']);
  });

  test('files: bad paths and layers are refused with a clear error', async () => {
    for (const p of ['/../etc', '/etc/../../..', '..', 'etc/hello', '/etc/..']) {
      const r = await api(base, 'files', { ref: small, path: p });
      assert.equal(r.status, 400, p);
      assert.equal(errorOf(r.json).code, 'BAD_PATH', p);
    }
    const missing = await api(base, 'files', { ref: small, path: '/nope' });
    assert.equal(missing.status, 404);
    const layer = await api(base, 'files', { ref: small, path: '/', layer: 7 });
    assert.equal(layer.status, 400);
    assert.match(errorOf(layer.json).message, /no layer 7/);
    const notNumber = await api(base, 'files', { ref: small, path: '/', limit: 'lots' });
    assert.equal(notNumber.status, 400);
  });

  test('search: paths containing the query, anywhere in the image', async () => {
    const r = (await api(base, 'search', { ref: SAMPLE, platform: AMD64, q: 'readme' })).json as SearchResponse;
    assert.deepEqual(r.entries.map((e) => e.path), ['/usr/share/doc/berth/README', '/usr/share/doc/hello/README']);
    assert.equal(r.total, 2);
    const missingQ = await api(base, 'search', { ref: SAMPLE });
    assert.equal(missingQ.status, 400);
  });

  test('changes: what one layer adds, modifies and deletes', async () => {
    const r = (await api(base, 'changes', { ref: SAMPLE, platform: AMD64, layer: 2 })).json as ChangesResponse;
    assert.deepEqual(r.added.map((e) => e.path), ['/data/old/new.txt']);
    assert.deepEqual(r.deleted.map((e) => e.path), ['/data/old/a.txt', '/data/old/b.txt', '/data/remove-me.txt']);
    assert.deepEqual(r.counts, { added: 1, modified: 2, deleted: 3 });
    const first = (await api(base, 'changes', { ref: small, layer: 0 })).json as ChangesResponse;
    assert.equal(first.counts.added, 5);
    const missing = await api(base, 'changes', { ref: small });
    assert.equal(missing.status, 400);
  });

  test('file: verified bytes with their path, size and layer; text and binary alike', async () => {
    const r = await api(base, 'file', { ref: SAMPLE, platform: AMD64, path: '/etc/greeting' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    const want = await readFile(SAMPLE, '/etc/greeting', { platform: parsePlatform(AMD64) });
    assert.deepEqual(r.bytes, await bytesOf(want.stream));
    assert.equal(r.headers.get(FILE_HEADERS.size), String(want.size));
    assert.equal(r.headers.get(FILE_HEADERS.layer), String(want.layer));
    assert.equal(decodeURIComponent(r.headers.get(FILE_HEADERS.path)!), '/etc/greeting');
    const bin = await api(base, 'file', { ref: small, path: '/bin.dat' });
    assert.deepEqual(bin.bytes, binary);
    // a symlink is followed inside the image
    const link = await api(base, 'file', { ref: SAMPLE, platform: AMD64, path: '/usr/bin/hello' });
    assert.equal(decodeURIComponent(link.headers.get(FILE_HEADERS.path)!), '/bin/hello');
  });

  test('file: too large, a directory, traversal, missing', async () => {
    const large = await api(base, 'file', { ref: small, path: '/big.txt' });
    assert.equal(large.status, 413);
    const e = errorOf(large.json);
    assert.equal(e.code, 'TOO_LARGE');
    assert.equal(e.size, big.length);
    assert.equal(e.limit, LIMITS.previewBytes);
    const partial = await api(base, 'file', { ref: small, path: '/big.txt', partial: 1 });
    assert.equal(partial.status, 200);
    assert.equal(partial.bytes.length, LIMITS.partialBytes);
    assert.equal(partial.headers.get(FILE_HEADERS.truncated), '1');
    const dirRes = await api(base, 'file', { ref: small, path: '/etc' });
    assert.equal(dirRes.status, 422);
    assert.equal(errorOf(dirRes.json).code, 'BERTH_UNSUPPORTED');
    const trav = await api(base, 'file', { ref: small, path: '/etc/../../../etc/passwd' });
    assert.equal(trav.status, 400);
    assert.equal(errorOf(trav.json).code, 'BAD_PATH');
    const missing = await api(base, 'file', { ref: small, path: '/etc/passwd' });
    assert.equal(missing.status, 404);
    const noPath = await api(base, 'file', { ref: small });
    assert.equal(noPath.status, 400);
  });

  test('diff: the two platforms of the sample, and two different images', async () => {
    const r = (await api(base, 'diff', { a: SAMPLE, platformA: AMD64, b: SAMPLE, platformB: 'linux/arm64' })).json as DiffResponse;
    assert.equal(r.a.platform, 'linux/amd64');
    assert.equal(r.b.platform, 'linux/arm64/v8');
    assert.ok(r.config.some((c) => c.path === 'architecture' && c.a === '"amd64"' && c.b === '"arm64"'));
    assert.ok(r.modified.some((m) => m.path === '/etc/os-release'));
    assert.equal(r.truncated, false);
    const other = (await api(base, 'diff', { a: SAMPLE, platformA: AMD64, b: small })).json as DiffResponse;
    assert.ok(other.added.some((m) => m.path === '/big.txt'));
    assert.ok(other.removed.some((m) => m.path === '/bin'));
    assert.ok(other.config.some((c) => c.path === 'config.Env'));
    const missing = await api(base, 'diff', { a: SAMPLE });
    assert.equal(missing.status, 400);
  });

  test('config differences: nested fields by path, missing sides left out', () => {
    assert.deepEqual(configChanges({ a: 1, c: { d: [1, 2] }, h: [{ x: 1 }] }, { a: 2, c: { d: [1, 2] }, h: [{ x: 1 }, { y: 2 }], n: true }), [
      { path: 'a', a: '1', b: '2' },
      { path: 'h[1].y', b: '2' },
      { path: 'n', b: 'true' },
    ]);
  });

  test('unknown references and bad parameters get JSON errors', async () => {
    const unknown = await api(base, 'tree', { ref: '/no/such/image' });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.json).code, 'BERTH_NOT_FOUND');
    const noRef = await api(base, 'tree');
    assert.equal(noRef.status, 400);
    assert.equal(errorOf(noRef.json).code, 'BAD_REQUEST');
    const long = await api(base, 'tree', { ref: 'x'.repeat(LIMITS.paramChars + 1) });
    assert.equal(long.status, 400);
    const nul = await api(base, 'tree', { ref: 'a\0b' });
    assert.equal(nul.status, 400);
    const route = await api(base, 'nope');
    assert.equal(route.status, 404);
    for (const r of [unknown, noRef, route]) assert.match(r.headers.get('content-type')!, /^application\/json/);
  });

  test('guards: the API header, the Host header, read-only methods', async () => {
    const noHeader = await api(base, 'refs', {}, {});
    assert.equal(noHeader.status, 403);
    // fetch() keeps its own Host header; node:http sends the one given (as a rebinding page's would arrive)
    const withHost = (host: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
      const req = httpGet({ host: '127.0.0.1', port: explorer.port, path: '/api/refs', headers: { [API_HEADER]: '1', host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    const rebind = await withHost(`evil.example:${explorer.port}`);
    assert.equal(rebind.status, 403);
    assert.match(errorOf(JSON.parse(rebind.body)).message, /not this explorer's address/);
    assert.equal((await withHost(`localhost:${explorer.port}`)).status, 200);
    assert.equal((await withHost(`127.0.0.1:${explorer.port}`)).status, 200);
    assert.equal((await withHost('127.0.0.1:1')).status, 403);
    const post = await fetch(`${base}api/refs`, { method: 'POST', headers: { [API_HEADER]: '1' } });
    assert.equal(post.status, 405);
  });

  test('the page and its assets: local only, under a strict CSP', async () => {
    const res = await fetch(base);
    if (res.status === 503) {
      assert.match(await res.text(), /not built/);
      return;
    }
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, 'the page loads nothing from elsewhere');
    assert.doesNotMatch(html, /<script>(?!<\/script>)|<script [^>]*>[^<]/, 'no inline script');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script !== undefined);
    const js = await fetch(new URL(script, base));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    for (const bad of ['/assets/../../package.json', '/%2e%2e/package.json', '/assets/%2e%2e%2fserver.js', '/etc/passwd', '/assets/nope.js']) {
      const r = await fetch(new URL(bad, base));
      assert.equal(r.status, 404, bad);
    }
  });

  test('API answers carry the same security headers', async () => {
    const r = await api(base, 'refs');
    assert.match(r.headers.get('content-security-policy')!, /default-src 'none'/);
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });
});
