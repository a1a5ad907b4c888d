/**
 * The fuzz targets. Each is a fast-check arbitrary (built once from the corpus) and a `run` that
 * feeds one input to berth and lets only results and BerthErrors through (see harness.ts).
 * The short tests and the long runner use the same list, so a seed from either reproduces.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { parseImageConfig } from '../../src/core/config.js';
import { parseDescriptor } from '../../src/core/descriptor.js';
import { digestProblem, parseDigest } from '../../src/core/digest.js';
import { BerthError } from '../../src/core/errors.js';
import { findJsonSyntaxError, parseJsonBytes } from '../../src/core/json.js';
import { parseImageIndex, parseImageManifest, parseManifestOrIndex } from '../../src/core/manifest.js';
import { formatPlatform, normalizePlatform, parsePlatform, platformFromJson } from '../../src/core/platform.js';
import { parseDockerReference } from '../../src/core/reference.js';
import { inspectReference, platformsOf, rawConfigOf, treeOf, verifyReference } from '../../src/images.js';
import { drain, fromBytes, toBytes } from '../../src/io/stream.js';
import { openTarArchive } from '../../src/tar/archive.js';
import { decodeBlock, parsePaxRecords } from '../../src/tar/header.js';
import { readTar } from '../../src/tar/reader.js';
import { assembleTar, disassembleTar, encodeTarSplitRecord, readTarSplit, type TarSplitRecord } from '../../src/tar/split.js';
import { parseManifestJson } from '../../src/transports/docker-archive/manifest-json.js';
import { parseImageName } from '../../src/transports/all.js';
import { loadJsonDocs, loadPlaces, loadTars, reseal, tarBytes, writeDirectory, type Member } from './corpus.js';
import {
  FuzzFailure, anyMutationArb, applyAnyMutation, applyByteMutations, applyJsonMutations, byteMutationsArb, expectClean, jsonMutationsArb,
  type AnyMutation, type ByteMutation,
} from './harness.js';
import { gnuTarArb, paxTarArb, randomTarArb } from './tar-inputs.js';

export interface Target<T = unknown> {
  readonly name: string;
  readonly what: string;
  /** Cases per run of the short mode (inside `npm test`). */
  readonly shortRuns: number;
  /** Builds the arbitrary (loads the corpus). */
  arbitrary(): Promise<fc.Arbitrary<T>>;
  run(input: T): Promise<void>;
}

function target<T>(t: Target<T>): Target<unknown> {
  return t as Target<unknown>;
}

// ---------------------------------------------------------------------------------------------
// Workspace for targets that need files: one temp dir per process, in /dev/shm when there is one.

let workspace: Promise<string> | undefined;
let caseNumber = 0;

/** Makes the targets put their files in `dir` (which the caller removes). */
export function useFuzzWorkspace(dir: string): void {
  workspace = Promise.resolve(dir);
}

export function fuzzWorkspace(): Promise<string> {
  workspace ??= mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'berth-fuzz-'));
  return workspace;
}

export async function removeFuzzWorkspace(): Promise<void> {
  if (workspace === undefined) return;
  const dir = await workspace;
  workspace = undefined;
  await rm(dir, { recursive: true, force: true });
}

async function scratch(suffix: string): Promise<string> {
  return path.join(await fuzzWorkspace(), `case-${process.pid}-${++caseNumber}${suffix}`);
}

// ---------------------------------------------------------------------------------------------
// Tar.

/** Reads a whole tar stream the way consumers do: some bodies read, some skipped, all padding. */
async function consumeTar(bytes: Uint8Array, skipMask: number, chunk: number): Promise<void> {
  let i = 0;
  const src = (async function* () {
    for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
  })();
  for await (const e of readTar(src, { maxEntries: 1000, maxTrailerBytes: 1 << 20, onTrailer: () => undefined })) {
    if (((skipMask >>> (i++ % 31)) & 1) === 0) await drain(e.body());
    void e.header.name;
  }
}

async function runTarBytes(bytes: Uint8Array, skipMask: number, chunk: number): Promise<void> {
  await expectClean('readTar', () => consumeTar(bytes, skipMask, chunkFor(bytes, chunk)));
  for (let at = 0; at + 512 <= bytes.length && at < 8 * 512; at += 512) {
    await expectClean(`decodeBlock at ${at}`, () => decodeBlock(bytes.subarray(at, at + 512)));
  }
}

const readOptionsArb = fc.record({ skipMask: fc.nat(), chunk: fc.constantFrom(1, 7, 512, 513, 4096, 1 << 20) });

/** Chunk sizes of 1 and 7 bytes are for small inputs only (a 200 KiB tar in 1-byte chunks is slow, not interesting). */
function chunkFor(bytes: Uint8Array, chunk: number): number {
  return chunk < 512 && bytes.length > 16 * 1024 ? 4096 : chunk;
}

const tarRandomHeaders = target({
  name: 'tar-random-headers',
  what: 'readTar and decodeBlock on archives of random header blocks (any type flag, octal/base-256/garbage numbers, any magic, good and bad checksums)',
  shortRuns: 150,
  arbitrary: async () => fc.record({ tar: randomTarArb, read: readOptionsArb }),
  run: async ({ tar, read }: { tar: Uint8Array; read: { skipMask: number; chunk: number } }) => runTarBytes(tar, read.skipMask, read.chunk),
});

const tarPax = target({
  name: 'tar-pax',
  what: 'PAX x/g headers with records whose length fields lie, odd keys and values, lying header sizes; parsePaxRecords on the raw record bytes',
  shortRuns: 120,
  arbitrary: async () => fc.record({ tar: paxTarArb, read: readOptionsArb }),
  run: async ({ tar, read }: { tar: Uint8Array; read: { skipMask: number; chunk: number } }) => {
    await runTarBytes(tar, read.skipMask, read.chunk);
    const size = tar.length >= 512 ? Number.parseInt(Buffer.from(tar.subarray(124, 135)).toString('latin1'), 8) : 0;
    if (Number.isSafeInteger(size) && size >= 0) await expectClean('parsePaxRecords', () => parsePaxRecords(tar.subarray(512, 512 + size)));
  },
});

const tarGnu = target({
  name: 'tar-gnu-longname',
  what: 'GNU L/K long-name and long-link chains (with and without NUL, lying sizes, not followed by a member)',
  shortRuns: 100,
  arbitrary: async () => fc.record({ tar: gnuTarArb, read: readOptionsArb }),
  run: async ({ tar, read }: { tar: Uint8Array; read: { skipMask: number; chunk: number } }) => runTarBytes(tar, read.skipMask, read.chunk),
});

const tarMutated = target({
  name: 'tar-mutated',
  what: 'readTar on real archives and layer tars after bit flips, byte sets, truncation, insertion, deletion and duplication',
  shortRuns: 60,
  arbitrary: async () => {
    const tars = await loadTars();
    return fc.record({ pick: fc.nat(), muts: byteMutationsArb, read: readOptionsArb }).map(({ pick, muts, read }) => {
      const t = tars[pick % tars.length]!;
      return { label: t.label, tar: applyByteMutations(t.bytes, muts), read };
    });
  },
  run: async ({ tar, read }: { tar: Uint8Array; read: { skipMask: number; chunk: number } }) => runTarBytes(tar, read.skipMask, read.chunk),
});

const tarArchiveFile = target({
  name: 'tar-archive-index',
  what: 'openTarArchive (the file index behind every archive transport) on mutated real archives written to disk, then resolve and read every member',
  shortRuns: 80,
  arbitrary: async () => {
    const tars = await loadTars();
    return fc.record({ pick: fc.nat(), muts: byteMutationsArb, gzip: fc.boolean() }).map(({ pick, muts, gzip }) => {
      const t = tars[pick % tars.length]!;
      const bytes = applyByteMutations(t.bytes, muts);
      return { label: t.label, bytes: gzip ? new Uint8Array(gzipSync(bytes)) : bytes };
    });
  },
  run: async ({ bytes }: { bytes: Uint8Array }) => {
    const file = await scratch('.tar');
    await writeFile(file, bytes);
    try {
      const opened = await expectClean('openTarArchive', () => openTarArchive(file, { tempDir: path.dirname(file) }));
      if (!opened.ok) return;
      const archive = opened.value;
      try {
        for (const e of archive.entries.slice(0, 64)) {
          const r = await expectClean(`resolve ${JSON.stringify(e.name)}`, () => archive.resolve(e.name));
          if (r.ok && r.value.type === 'file') await expectClean(`readBytes ${JSON.stringify(e.name)}`, () => archive.readBytes(r.value, 1 << 20));
        }
      } finally {
        await archive.close();
      }
    } finally {
      await rm(file, { force: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// tar-split.

async function splitCorpus(): Promise<Array<{ lines: string[]; files: Map<string, Uint8Array> }>> {
  const out: Array<{ lines: string[]; files: Map<string, Uint8Array> }> = [];
  for (const t of (await loadTars()).slice(0, 24)) {
    const records: TarSplitRecord[] = [];
    const files = new Map<string, Uint8Array>();
    try {
      for await (const chunk of disassembleTar(fromBytes(t.bytes), { onRecord: (r) => void records.push(r) })) void chunk;
      for await (const e of readTar(fromBytes(t.bytes))) files.set(e.header.name, await toBytes(e.body()));
    } catch {
      continue; // a corpus tar that tar-split refuses (duplicate names) is no seed
    }
    out.push({ lines: records.map(encodeTarSplitRecord), files });
  }
  return out;
}

const tarSplit = target({
  name: 'tar-split',
  what: 'readTarSplit on tar-split metadata of real tars (mutated lines, JSON-aware and bytewise, plain or gzip), then assembleTar with the original file data',
  shortRuns: 150,
  arbitrary: async () => {
    const corpus = await splitCorpus();
    return fc.record({
      pick: fc.nat(), line: fc.nat(), how: fc.constantFrom('json', 'bytes', 'whole'), json: jsonMutationsArb, bytes: byteMutationsArb, gzip: fc.boolean(),
    }).map(({ pick, line, how, json, bytes, gzip }) => {
      const c = corpus[pick % corpus.length]!;
      const lines = [...c.lines];
      const i = line % lines.length;
      const enc = new TextEncoder();
      let text: Uint8Array;
      if (how === 'whole') {
        text = applyByteMutations(enc.encode(`${lines.join('\n')}\n`), bytes);
      } else {
        const one = enc.encode(lines[i]!);
        lines[i] = Buffer.from(how === 'json' ? (applyJsonMutations(one, json) ?? one) : applyByteMutations(one, bytes)).toString('utf8');
        text = enc.encode(`${lines.join('\n')}\n`);
      }
      return { text: gzip ? new Uint8Array(gzipSync(text)) : text, files: c.files };
    });
  },
  run: async ({ text, files }: { text: Uint8Array; files: Map<string, Uint8Array> }) => {
    const got = await expectClean('readTarSplit', async () => {
      const records: TarSplitRecord[] = [];
      for await (const r of readTarSplit(fromBytes(text))) if (records.push(r) > 100_000) break;
      return records;
    });
    if (!got.ok) return;
    await expectClean('assembleTar', async () => drain(assembleTar(got.value, async (f) => fromBytes(files.get(f.name) ?? new Uint8Array(f.size % 4096)))));
  },
});

// ---------------------------------------------------------------------------------------------
// JSON documents.

const PARSERS = ['manifest-or-index', 'manifest', 'index', 'config', 'manifest.json', 'descriptor', 'platform', 'json', 'json-locate'] as const;
type Parser = (typeof PARSERS)[number];

const MEDIA_TYPES = [
  undefined, 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'text/plain', '', 'x',
];

function runParser(parser: Parser, bytes: Uint8Array, mediaType: string | undefined): unknown {
  const what = 'fuzzed document';
  const opts = { what, ...(mediaType === undefined ? {} : { mediaType }) };
  switch (parser) {
    case 'manifest-or-index': return parseManifestOrIndex(bytes, opts);
    case 'manifest': return parseImageManifest(bytes, opts);
    case 'index': return parseImageIndex(bytes, opts);
    case 'config': return parseImageConfig(bytes, { what });
    case 'manifest.json': return parseManifestJson(bytes);
    case 'descriptor': return parseDescriptor(parseJsonBytes(bytes, what), '');
    case 'platform': return platformFromJson(parseJsonBytes(bytes, what), 'platform');
    case 'json': return parseJsonBytes(bytes, what);
    case 'json-locate': return findJsonSyntaxError(Buffer.from(bytes).toString('utf8'));
  }
}

const documents = target({
  name: 'json-documents',
  what: 'manifest, index, config, manifest.json, descriptor and platform parsers on mutated real documents (JSON-aware and bytewise), random JSON values and random bytes',
  shortRuns: 250,
  arbitrary: async () => {
    const docs = await loadJsonDocs();
    const enc = new TextEncoder();
    const source = fc.oneof(
      { weight: 6, arbitrary: fc.record({ pick: fc.nat(), m: anyMutationArb }).map(({ pick, m }) => applyAnyMutation(docs[pick % docs.length]!.bytes, m)) },
      { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => enc.encode(JSON.stringify(v))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => enc.encode(s)) },
      { weight: 1, arbitrary: fc.nat({ max: 30_000 }).map((depth) => enc.encode(`${'['.repeat(depth)}${']'.repeat(depth % 3 === 0 ? depth : 0)}`)) },
    );
    return fc.record({ bytes: source, parser: fc.constantFrom(...PARSERS), mediaType: fc.constantFrom(...MEDIA_TYPES) });
  },
  run: async ({ bytes, parser, mediaType }: { bytes: Uint8Array; parser: Parser; mediaType: string | undefined }) => {
    await expectClean(`parse ${parser}`, () => runParser(parser, bytes, mediaType));
  },
});

// ---------------------------------------------------------------------------------------------
// References, digests, platforms.

const REF_PIECES = [
  'oci:', 'oci-archive:', 'docker-archive:', 'docker://', 'docker:', 'store:', 'path:', 'dir:', '', 'localhost:5000/', 'registry.example/', '/', './', '../',
  '..', ':', '::', '@', '@sha256:', 'sha256:', 'a'.repeat(64), 'ABC', 'x/y/z', 'latest', 'v1.0', '[::1]:5000/', '%', '\\', '\0', ' ', '\u00e9', '#', '?',
];

const referenceArb = fc.oneof(
  fc.array(fc.oneof(fc.constantFrom(...REF_PIECES), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 8 }).map((p) => p.join('')),
  fc.string({ maxLength: 300 }),
  fc.constantFrom('a'.repeat(300), `${'a/'.repeat(200)}b`, `docker://${'x'.repeat(260)}/y:z`, `oci:/nonexistent-berth-fuzz-dir:${'t'.repeat(200)}`),
);

/** A store root that must never be created: parseImageName may look for a local store, never make one. */
export function referenceStoreRoot(): string {
  return path.join(os.tmpdir(), `berth-fuzz-no-store-${process.pid}`);
}

const references = target({
  name: 'reference',
  what: 'parseImageName (every transport prefix, bare paths, selectors) and parseDockerReference on random strings; nothing is opened and no file is created',
  shortRuns: 500,
  arbitrary: async () => referenceArb,
  run: async (text: string) => {
    await expectClean('parseDockerReference', () => parseDockerReference(text));
    const saved = process.env.BERTH_ROOT;
    process.env.BERTH_ROOT = referenceStoreRoot();
    try {
      const r = await expectClean('parseImageName', () => parseImageName(text));
      if (r.ok) await expectClean('reference toString', () => String(r.value));
      if (existsSync(referenceStoreRoot())) throw new FuzzFailure('property', `parseImageName(${JSON.stringify(text)}) created the store root`);
    } finally {
      if (saved === undefined) delete process.env.BERTH_ROOT;
      else process.env.BERTH_ROOT = saved;
    }
  },
});

const digestsAndPlatforms = target({
  name: 'digest-platform',
  what: 'parseDigest / digestProblem on random strings and values; parsePlatform on random strings, whose result must format and parse back to itself; platformFromJson on random JSON',
  shortRuns: 800,
  arbitrary: async () => fc.record({
    digest: fc.oneof(
      fc.string({ maxLength: 140 }),
      fc.tuple(fc.constantFrom('sha256', 'sha512', 'blake3', 'md5', 'SHA256', 'sha256+b64', ''), fc.constantFrom(':', '', '::'), fc.stringMatching(/^[0-9a-fA-F=_-]{0,130}$/)).map((p) => p.join('')),
      fc.anything({ maxDepth: 1 }),
    ),
    platform: fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.array(fc.constantFrom('linux', 'windows', 'darwin', 'macos', 'amd64', 'x86_64', 'x86-64', 'arm', 'arm64', 'aarch64', 'armhf', 'armel', 'v5', 'v6', 'v7', 'v8', 'v1', 'V7', '8', 'i386', '386', 'riscv64', '(10.0.17763)', '()', '', 'A.b_c-d'), { minLength: 1, maxLength: 4 }).map((p) => p.join('/')),
    ),
    json: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record({ os: fc.jsonValue({ maxDepth: 1 }), architecture: fc.jsonValue({ maxDepth: 1 }), variant: fc.jsonValue({ maxDepth: 1 }), 'os.features': fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }),
      fc.record({
        os: fc.constantFrom('linux', 'windows', 'Linux', 'macos', ''), architecture: fc.constantFrom('amd64', 'x86_64', 'arm', 'ARM64', 'aarch64', ''),
        variant: fc.constantFrom('v7', 'v8', 'V6', '', 'v1'), 'os.version': fc.constantFrom('10.0.17763.1', ''), 'os.features': fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
      }, { requiredKeys: ['os', 'architecture'] }),
    ),
  }),
  run: async ({ digest, platform, json }: { digest: unknown; platform: string; json: unknown }) => {
    await expectClean('digestProblem', () => digestProblem(digest));
    await expectClean('parseDigest', () => parseDigest(digest, 'field'));
    const p = await expectClean('parsePlatform', () => parsePlatform(platform));
    if (p.ok) {
      const text = formatPlatform(p.value);
      const again = await expectClean('parsePlatform(formatPlatform(p))', () => parsePlatform(text));
      if (!again.ok) throw new FuzzFailure('property', `parsePlatform(${JSON.stringify(platform)}) formats as ${JSON.stringify(text)}, which does not parse: ${(again.error as Error).message}`);
      if (formatPlatform(again.value) !== text) throw new FuzzFailure('property', `platform ${JSON.stringify(platform)} does not round-trip (${text} → ${formatPlatform(again.value)})`);
    }
    const j = await expectClean('platformFromJson', () => platformFromJson(json, 'platform'));
    if (j.ok) await expectClean('normalizePlatform', () => normalizePlatform(j.value));
  },
});

// ---------------------------------------------------------------------------------------------
// End to end: damaged copies of real archives and layouts through tree, inspect and verify.

interface E2eInput {
  readonly place: number;
  readonly mode: 'member' | 'reseal' | 'raw';
  readonly member: number;
  readonly metadataOnly: boolean;
  readonly mutation: AnyMutation;
  readonly rawMuts: readonly ByteMutation[];
  readonly form: number;
}

const e2eArb = (kinds: ReadonlyArray<'directory' | 'archive'>): fc.Arbitrary<E2eInput> => fc.record({
  place: fc.nat(),
  mode: kinds.includes('archive') ? fc.constantFrom('member' as const, 'reseal' as const, 'reseal' as const, 'raw' as const) : fc.constantFrom('member' as const, 'reseal' as const, 'reseal' as const),
  member: fc.nat(),
  metadataOnly: fc.boolean(),
  mutation: anyMutationArb,
  rawMuts: byteMutationsArb,
  form: fc.nat({ max: 5 }),
});

function isMetadata(m: Member): boolean {
  if (m.type !== 'file') return false;
  const base = m.name.split('/').pop() ?? '';
  if (['index.json', 'manifest.json', 'oci-layout', 'repositories', 'json', 'VERSION'].includes(base)) return true;
  return m.body.length < 64 * 1024 && (m.body[0] === 0x7b || m.body[0] === 0x5b);
}

/** The reference forms a place can be named by. */
function referenceFor(kind: 'directory' | 'archive', p: string, form: number): string {
  const forms = kind === 'directory' ? [p, `oci:${p}`, `${p}:0`] : [p, `oci-archive:${p}`, `docker-archive:${p}`, `${p}:0`];
  return forms[form % forms.length]!;
}

async function runE2e(kind: 'directory' | 'archive', input: E2eInput): Promise<void> {
  const places = (await loadPlaces()).filter((p) => p.kind === kind);
  if (places.length === 0) return;
  const place = places[input.place % places.length]!;
  const at = await scratch(kind === 'archive' ? '.tar' : '');
  try {
    if (input.mode === 'raw' && place.bytes !== undefined) {
      await writeFile(at, applyByteMutations(place.bytes, input.rawMuts));
    } else {
      const candidates = place.members.map((m, i) => ({ m, i })).filter(({ m }) => m.type === 'file' && (!input.metadataOnly || isMetadata(m)));
      const pool = candidates.length > 0 ? candidates : place.members.map((m, i) => ({ m, i })).filter(({ m }) => m.type === 'file');
      let members: Member[] = [...place.members];
      if (pool.length > 0) {
        const { m, i } = pool[input.member % pool.length]!;
        const body = applyAnyMutation(m.body, input.mutation);
        members = input.mode === 'reseal' ? reseal(members, i, body) : members.map((x, j) => (j === i ? { ...x, body } : x));
      }
      if (kind === 'archive') await writeFile(at, await tarBytes(members));
      else await writeDirectory(at, members);
    }
    const ref = referenceFor(kind, at, input.form);
    await expectClean(`treeOf ${place.label}`, () => treeOf(ref));
    const platform = input.form % 2 === 1 ? { platform: { os: 'linux', architecture: input.form % 4 === 1 ? 'amd64' : 'arm64' } } : {};
    await expectClean(`inspectReference ${place.label}`, () => inspectReference(ref, platform));
    await expectClean(`rawConfigOf ${place.label}`, () => rawConfigOf(ref, platform));
    await expectClean(`platformsOf ${place.label}`, () => platformsOf(ref));
    await expectClean(`verifyReference ${place.label}`, () => verifyReference(ref));
  } finally {
    await rm(at, { recursive: true, force: true });
  }
}

const e2eLayouts = target({
  name: 'e2e-layout',
  what: 'copies of real OCI layout directories and examples/sample with one mutated member (index.json, oci-layout, a manifest, config or layer blob; resealed up the chain or not), through treeOf, inspectReference, platformsOf and verifyReference',
  shortRuns: 20,
  arbitrary: async () => e2eArb(['directory']),
  run: async (input: E2eInput) => runE2e('directory', input),
});

const e2eArchives = target({
  name: 'e2e-archive',
  what: 'copies of real docker-archive, Docker 25, OCI and ggcr tarballs with a mutated member (manifest.json, index.json, blobs; resealed or not) or mutated archive bytes, through treeOf, inspectReference, platformsOf and verifyReference',
  shortRuns: 30,
  arbitrary: async () => e2eArb(['archive']),
  run: async (input: E2eInput) => runE2e('archive', input),
});

/**
 * Targets that check the runner itself, present only with BERTH_FUZZ_SELF_TEST=1: one throws a
 * TypeError, one never returns (a synchronous loop, which only the watchdog can stop).
 */
const selfTests: Target[] = process.env.BERTH_FUZZ_SELF_TEST === '1' ? [
  target({
    name: 'self-test-crash', what: 'always fails with a TypeError', shortRuns: 1,
    arbitrary: async () => fc.nat(), run: async (n: number) => void (await expectClean('self-test', () => (null as unknown as { x: number }).x + n)),
  }),
  target({
    name: 'self-test-hang', what: 'never returns', shortRuns: 1,
    arbitrary: async () => fc.nat(),
    run: async () => {
      for (;;) {
        // spin
      }
    },
  }),
] : [];

export const TARGETS: readonly Target[] = [
  tarRandomHeaders, tarPax, tarGnu, tarMutated, tarArchiveFile, tarSplit, documents, references, digestsAndPlatforms, e2eLayouts, e2eArchives, ...selfTests,
];

export function findTarget(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new BerthError('BERTH_USAGE', `no fuzz target ${JSON.stringify(name)} (targets: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}

/** The property fast-check checks for a target; `onCase` is told before each case runs (the long runner's watchdog). */
export async function propertyOf(t: Target, onCase?: () => void): Promise<fc.IAsyncProperty<[unknown]>> {
  const arb = await t.arbitrary();
  return fc.asyncProperty(arb, async (input) => {
    onCase?.();
    await t.run(input);
  });
}
