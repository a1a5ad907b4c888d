/**
 * The seed corpus: small real archives and layouts (../shared/fixtures/real, see its CATALOG.md)
 * and examples/sample, loaded into memory once per process. A "place" is a layout directory or
 * an archive held as a list of members; mutations change one member and `reseal` fixes digests,
 * sizes and content-addressed names up the chain so the damage reaches the parsers behind the
 * digest checks. `materialize` writes a place back as a directory or a tar.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fromBytes, toBytes } from '../../src/io/stream.js';
import { readTar } from '../../src/tar/reader.js';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';
import { repoRoot } from '../support/paths.js';

export { repoRoot };
export const REAL = path.resolve(repoRoot, '../shared/fixtures/real');
export const SAMPLE = path.join(repoRoot, 'examples', 'sample');

/** Small uncompressed archives of every kind berth reads (all under 64 KiB). */
export const ARCHIVE_FIXTURES: readonly string[] = [
  'google__go-containerregistry/pkg/v1/tarball/testdata/hello-world-v25.tar', // docker 25 archive
  'google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar', // ggcr tarball with links
  'google__go-containerregistry/pkg/v1/tarball/testdata/test_bundle.tar',
  'google__go-containerregistry/pkg/v1/tarball/testdata/foreign.tar',
  'google__go-containerregistry/pkg/v1/tarball/testdata/null_manifest.tar',
  'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-uncompressed.tar',
  'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar',
  'wagoodman__dive/.data/test-oci-uncompressed-image.tar',
  'wagoodman__dive/.data/test-oci-zstd-image.tar',
  'snyk__snyk-docker-plugin/test/fixtures/docker-archives/docker-save/hello-world.tar', // legacy docker save
  'snyk__snyk-docker-plugin/test/fixtures/oci-archives/oci-with-manifest.tar',
  'containers__image/docker/archive/fixtures/almostempty.tar',
  'anchore__stereoscope/pkg/image/oci/testdata/valid-oci.tar',
  'oras-project__oras-go/content/oci/testdata/hello-world.tar',
  'GoogleContainerTools__jib/jib-core/src/test/resources/core/extraction/jib-image.tar',
];

/** Small OCI layout directories (relative to REAL), plus examples/sample. */
export const LAYOUT_FIXTURES: readonly string[] = [
  'google__go-containerregistry/pkg/v1/layout/testdata/test_index',
  'anchore__stereoscope/pkg/image/oci/testdata/multiplatform_oci_dir',
  'anchore__stereoscope/pkg/image/oci/testdata/valid_oci_dir',
  'notaryproject__notation/test/e2e/testdata/registry/oci_layout/e2e-valid-signature',
  'oras-project__oras/test/e2e/testdata/zot/command/images',
];

/** Plain layer tars. */
const LAYER_TAR_FIXTURES: readonly string[] = [
  'regclient__regclient/testdata/layer.tar',
  'regclient__regclient/testdata/layer-wh.tar',
];

export function haveRealFixtures(): boolean {
  return existsSync(REAL);
}

function realPath(rel: string): string {
  return path.join(REAL, rel);
}

export interface Member {
  readonly name: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'link';
  readonly linkname?: string;
  readonly mode?: number;
  readonly body: Uint8Array;
}

export interface Place {
  /** Short label, e.g. `archive:hello-world-v25.tar`. */
  readonly label: string;
  readonly kind: 'directory' | 'archive';
  /** The original archive bytes (archives only). */
  readonly bytes?: Uint8Array;
  readonly members: readonly Member[];
}

async function membersOfTar(bytes: Uint8Array): Promise<Member[]> {
  const out: Member[] = [];
  for await (const e of readTar(fromBytes(bytes))) {
    const h = e.header;
    if (h.typeflag === 'g') continue;
    const body = await toBytes(e.body());
    const type = (h.type === 'directory' || h.type === 'symlink' || h.type === 'link' ? h.type : 'file') as Member['type'];
    out.push({ name: h.name, type, ...(h.linkname === '' ? {} : { linkname: h.linkname }), mode: h.mode, body });
  }
  return out;
}

function membersOfDir(root: string): Member[] {
  const out: Member[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(root, r);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) out.push({ name: r, type: 'symlink', linkname: readlinkSync(full), body: new Uint8Array(0) });
      else if (st.isDirectory()) {
        out.push({ name: r, type: 'directory', body: new Uint8Array(0) });
        walk(r);
      } else out.push({ name: r, type: 'file', body: new Uint8Array(readFileSync(full)) });
    }
  };
  walk('');
  return out;
}

let placesCache: Promise<Place[]> | undefined;

/** Every corpus place that exists on this machine (the sample always does). */
export function loadPlaces(): Promise<Place[]> {
  placesCache ??= (async () => {
    const places: Place[] = [{ label: 'layout:examples/sample', kind: 'directory', members: membersOfDir(SAMPLE) }];
    if (!haveRealFixtures()) return places;
    for (const rel of LAYOUT_FIXTURES) {
      if (existsSync(realPath(rel))) places.push({ label: `layout:${path.basename(rel)}`, kind: 'directory', members: membersOfDir(realPath(rel)) });
    }
    for (const rel of ARCHIVE_FIXTURES) {
      if (!existsSync(realPath(rel))) continue;
      const bytes = new Uint8Array(readFileSync(realPath(rel)));
      const plain = gunzipMaybe(bytes);
      if (plain === undefined || !looksLikeTar(plain)) continue;
      places.push({ label: `archive:${path.basename(rel)}`, kind: 'archive', bytes, members: await membersOfTar(plain) });
    }
    return places;
  })();
  return placesCache;
}

function looksLikeTar(b: Uint8Array): boolean {
  return b.length >= 512 && Buffer.from(b.subarray(257, 262)).toString('latin1') === 'ustar';
}

function gunzipMaybe(b: Uint8Array): Uint8Array | undefined {
  if (b[0] !== 0x1f || b[1] !== 0x8b) return b;
  try {
    return new Uint8Array(gunzipSync(b));
  } catch {
    return undefined;
  }
}

let tarCache: Promise<Array<{ label: string; bytes: Uint8Array }>> | undefined;

/** Uncompressed tars: whole archives, plain layer tars and the (gunzipped) layers inside places, each at most 256 KiB. */
export function loadTars(): Promise<Array<{ label: string; bytes: Uint8Array }>> {
  tarCache ??= (async () => {
    const out: Array<{ label: string; bytes: Uint8Array }> = [];
    const seen = new Set<string>();
    const add = (label: string, b: Uint8Array | undefined): void => {
      if (b === undefined || !looksLikeTar(b) || b.length > 256 * 1024) return;
      const key = createHash('sha256').update(b).digest('hex');
      if (seen.has(key)) return;
      seen.add(key);
      out.push({ label, bytes: b });
    };
    for (const rel of LAYER_TAR_FIXTURES) if (haveRealFixtures() && existsSync(realPath(rel))) add(`layer:${path.basename(rel)}`, new Uint8Array(readFileSync(realPath(rel))));
    for (const p of await loadPlaces()) {
      if (p.bytes !== undefined) add(p.label, gunzipMaybe(p.bytes));
      for (const m of p.members) if (m.type === 'file' && m.body.length >= 512) add(`${p.label}/${m.name}`, gunzipMaybe(m.body));
    }
    return out;
  })();
  return tarCache;
}

let jsonCache: Array<{ label: string; bytes: Uint8Array }> | undefined;

/** Every JSON document of the corpus: index.json, manifest.json, manifests, indexes, configs, standalone fixture documents. */
export async function loadJsonDocs(): Promise<Array<{ label: string; bytes: Uint8Array }>> {
  if (jsonCache !== undefined) return jsonCache;
  const out: Array<{ label: string; bytes: Uint8Array }> = [];
  const seen = new Set<string>();
  const add = (label: string, b: Uint8Array): void => {
    if (b.length === 0 || b.length > 64 * 1024 || (b[0] !== 0x7b && b[0] !== 0x5b)) return;
    try {
      JSON.parse(Buffer.from(b).toString('utf8'));
    } catch {
      return;
    }
    const key = createHash('sha256').update(b).digest('hex');
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ label, bytes: b });
  };
  for (const p of await loadPlaces()) for (const m of p.members) if (m.type === 'file') add(`${p.label}/${m.name}`, m.body);
  if (haveRealFixtures()) {
    for (const dir of ['containers__image/internal/manifest/testdata', 'containers__image/manifest/fixtures', 'containers__image/internal/image/fixtures']) {
      const full = realPath(dir);
      if (!existsSync(full)) continue;
      for (const name of readdirSync(full).sort()) if (name.endsWith('.json')) add(`${dir}/${name}`, new Uint8Array(readFileSync(path.join(full, name))));
    }
  }
  jsonCache = out;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resealing.

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function fixDescriptors(v: unknown, oldDigest: string, newDigest: string, newSize: number, oldHex: string, newHex: string): unknown {
  if (typeof v === 'string') return v.includes(oldHex) ? v.split(oldHex).join(newHex) : v;
  if (Array.isArray(v)) return v.map((x) => fixDescriptors(x, oldDigest, newDigest, newSize, oldHex, newHex));
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      const key = k.includes(oldHex) ? k.split(oldHex).join(newHex) : k;
      out[key] = fixDescriptors(x, oldDigest, newDigest, newSize, oldHex, newHex);
    }
    if (o.digest === oldDigest && typeof o.size === 'number') out.size = newSize;
    return out;
  }
  return v;
}

/**
 * Replaces member `index` by `body` and fixes what points at it: a content-addressed file name
 * is renamed to the new digest, and every JSON member that names the old digest gets the new
 * digest and size, which changes that member too, and so on up to index.json / manifest.json.
 */
export function reseal(members: readonly Member[], index: number, body: Uint8Array): Member[] {
  const out = [...members];
  const pending: Array<{ index: number; body: Uint8Array }> = [{ index, body }];
  for (let rounds = 0; pending.length > 0 && rounds < 12; rounds++) {
    const { index: i, body: nb } = pending.shift()!;
    const old = out[i]!;
    const oldHex = sha256Hex(old.body);
    const newHex = sha256Hex(nb);
    const name = old.name.includes(oldHex) ? old.name.split(oldHex).join(newHex) : old.name;
    out[i] = { ...old, name, body: nb };
    if (oldHex === newHex) continue;
    for (let j = 0; j < out.length; j++) {
      const m = out[j]!;
      if (j === i || m.type !== 'file' || m.body.length > 1 << 20) continue;
      const text = Buffer.from(m.body).toString('utf8');
      if (!text.includes(oldHex)) continue;
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        continue;
      }
      const fixed = new TextEncoder().encode(JSON.stringify(fixDescriptors(doc, `sha256:${oldHex}`, `sha256:${newHex}`, nb.length, oldHex, newHex)));
      const queued = pending.find((p) => p.index === j);
      if (queued !== undefined) queued.body = fixed;
      else pending.push({ index: j, body: fixed });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing places out.

/** Writes the members as a directory tree under `dir` (created). Unsafe names are skipped. */
export async function writeDirectory(dir: string, members: readonly Member[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const m of members) {
    const parts = m.name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length === 0 || parts.includes('..') || m.name.startsWith('/')) continue;
    const full = path.join(dir, ...parts);
    if (m.type === 'directory') {
      await mkdir(full, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(full), { recursive: true });
    try {
      if (m.type === 'symlink') await symlink(m.linkname ?? '', full);
      else await writeFile(full, m.body);
    } catch {
      // a name used twice after a mutation: keep the first
    }
  }
}

/** The members as tar bytes (berth's own writer; headers re-encoded Go-style). */
export async function tarBytes(members: readonly Member[]): Promise<Uint8Array> {
  const entries: TarWriteEntry[] = members.map((m) => {
    const header = {
      name: m.name, type: m.type, ...(m.linkname === undefined ? {} : { linkname: m.linkname }),
      ...(m.mode === undefined ? {} : { mode: m.mode }), size: m.type === 'file' ? m.body.length : 0,
    };
    return m.type === 'file' ? { header, body: m.body } : { header };
  });
  return toBytes(writeTar(entries));
}
