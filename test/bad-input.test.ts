/**
 * Bad input, built in temp dirs: each case must give one `berth: …` line (or verify's report)
 * naming the file or blob and the field at fault, exit 1 (2 for usage errors), and no stack
 * trace unless --debug asks for one.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, berth, fixture, STACK_LINE, short, type CliResult } from './support/cli.js';
import { packTar, removeDir, sha256, tarMembers, tempDir } from './support/tamper.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}

/** Writes blobs, manifests and index.json of an OCI layout; every method returns descriptors. */
class Layout {
  constructor(readonly dir: string) {}

  static async create(dir: string): Promise<Layout> {
    await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
    await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    return new Layout(dir);
  }

  blobFile(digest: string): string {
    return path.join(this.dir, 'blobs/sha256', digest.slice('sha256:'.length));
  }

  async blob(bytes: Uint8Array | string, mediaType: string): Promise<Desc> {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
    const digest = sha256(b);
    await writeFile(this.blobFile(digest), b);
    return { mediaType, digest, size: b.length };
  }

  json(value: unknown, mediaType: string): Promise<Desc> {
    return this.blob(JSON.stringify(value), mediaType);
  }

  async index(manifests: readonly Desc[]): Promise<void> {
    await writeFile(path.join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  }
}

/** The pieces of one small valid image, for rows to break. */
interface Image {
  layout: Layout;
  layer: Desc;
  layerBytes: Buffer;
  config: Desc;
  configValue: Record<string, unknown>;
  manifestValue: Record<string, unknown>;
}

let tmp: string;
let layerTar: Buffer;

before(async () => {
  tmp = await tempDir('berth-bad-');
  const src = path.join(tmp, 'layer-src');
  await mkdir(path.join(src, 'etc'), { recursive: true });
  await writeFile(path.join(src, 'etc/greeting'), 'hello from berth\n');
  packTar(src, path.join(tmp, 'layer.tar'), ['etc']);
  layerTar = await readFile(path.join(tmp, 'layer.tar'));
});
after(async () => {
  await removeDir(tmp);
});

let counter = 0;
async function freshDir(name: string): Promise<string> {
  const dir = path.join(tmp, `${++counter}-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A layout with one valid image (tag v1) whose manifest is not yet written. */
async function image(dir: string): Promise<Image> {
  const layout = await Layout.create(dir);
  const layer = await layout.blob(layerTar, OCI_LAYER);
  const configValue = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
  const config = await layout.json(configValue, OCI_CONFIG);
  const manifestValue = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
  return { layout, layer, layerBytes: layerTar, config, configValue, manifestValue };
}

/** Writes `manifest` as a blob and index.json naming it as tag v1. */
async function publish(img: Image, manifest: unknown = img.manifestValue): Promise<Desc> {
  const m = await img.layout.json(manifest, OCI_MANIFEST);
  await img.layout.index([{ ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]);
  return m;
}

function assertExit(r: CliResult, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, want ${code}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr}`);
}

/** The expected failure of one command: exit code and fragments that must all appear in its one error line. */
interface Expect {
  readonly cmd: readonly string[];
  readonly code: number;
  /** fragments of the `berth: …` line (or, for verify, of an `error:`/`warning:` report line) */
  readonly says: readonly string[];
  /** verify reports: the line must start with this severity */
  readonly severity?: 'error' | 'warning';
  /** arguments after the reference (the DIGEST of `blob`) */
  readonly extra?: readonly string[];
}

interface Case {
  readonly name: string;
  readonly todo?: string;
  /** builds the input under `dir` and returns the reference plus what each command must do */
  readonly build: (dir: string) => Promise<{ ref: string; expect: readonly Expect[] }>;
}

async function check(ref: string, e: Expect, what: string): Promise<void> {
  const r = await berth(...e.cmd, ref, ...(e.extra ?? []));
  assertExit(r, e.code, `${what}: berth ${e.cmd.join(' ')}`);
  assert.doesNotMatch(r.stderr, STACK_LINE, `${what}: stack trace without --debug`);
  if (e.severity) {
    // verify: a report line of that severity carrying every fragment
    const lines = r.stdout.split('\n').filter((l) => l.startsWith(`${e.severity}: `));
    const hit = lines.find((l) => e.says.every((s) => l.includes(s)));
    assert.ok(hit, `${what}: want a "${e.severity}:" line with ${JSON.stringify(e.says)}, got:\n${r.stdout}${r.stderr}`);
    return;
  }
  if (e.code === 0) return;
  assertCleanError(r, what);
  const line = r.stderr.split('\n').find((l) => l.startsWith('berth: '))!;
  for (const s of e.says) assert.ok(line.includes(s), `${what}: want "${s}" in: ${line}`);
}

const TREE = ['tree'];
const INSPECT = ['inspect'];
const VERIFY = ['verify'];

const CASES: readonly Case[] = [
  {
    name: 'missing layer blob',
    async build(dir) {
      const img = await image(dir);
      await publish(img);
      await rm(img.layout.blobFile(img.layer.digest));
      return {
        ref: dir,
        expect: [
          { cmd: VERIFY, code: 1, severity: 'error', says: [`layer 0 ${short(img.layer.digest)}`, 'is missing'] },
          { cmd: ['blob'], extra: [img.layer.digest], code: 1, says: [img.layer.digest, 'missing'] },
        ],
      };
    },
  },
  {
    name: 'missing config blob',
    async build(dir) {
      const img = await image(dir);
      await publish(img);
      await rm(img.layout.blobFile(img.config.digest));
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [img.config.digest, 'missing'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [`config ${short(img.config.digest)}`, 'is missing'] },
        ],
      };
    },
  },
  {
    name: 'missing manifest blob',
    async build(dir) {
      const img = await image(dir);
      const m = await publish(img);
      await rm(img.layout.blobFile(m.digest));
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [m.digest, 'missing'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [short(m.digest), 'is missing'] },
        ],
      };
    },
  },
  {
    name: 'wrong digest: the layer blob does not hash to its name',
    async build(dir) {
      const img = await image(dir);
      await publish(img);
      const bad = Buffer.from(img.layerBytes);
      bad[600] = bad[600]! ^ 0x20;
      await writeFile(img.layout.blobFile(img.layer.digest), bad);
      return { ref: dir, expect: [{ cmd: VERIFY, code: 1, severity: 'error', says: [`layer 0 ${short(img.layer.digest)}`, 'digest'] }] };
    },
  },
  {
    name: 'malformed digest in a layer descriptor',
    async build(dir) {
      const img = await image(dir);
      await publish(img, { ...img.manifestValue, layers: [{ ...img.layer, digest: 'sha256:NOTHEX' }] });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: ['layers[0].digest', '"sha256:NOTHEX" is not a valid digest'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: ['layers[0].digest', '"sha256:NOTHEX" is not a valid digest'] },
        ],
      };
    },
  },
  {
    name: 'wrong size in a layer descriptor (too big)',
    async build(dir) {
      const img = await image(dir);
      await publish(img, { ...img.manifestValue, layers: [{ ...img.layer, size: img.layer.size + 1 }] });
      return { ref: dir, expect: [{ cmd: VERIFY, code: 1, severity: 'error', says: [`layer 0 ${short(img.layer.digest)}`, 'size', `want ${img.layer.size + 1}`] }] };
    },
  },
  {
    name: 'wrong size in a config descriptor (too small)',
    async build(dir) {
      const img = await image(dir);
      await publish(img, { ...img.manifestValue, config: { ...img.config, size: img.config.size - 1 } });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [short(img.config.digest), 'size'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [`config ${short(img.config.digest)}`, 'size'] },
        ],
      };
    },
  },
  {
    name: 'negative size in a descriptor',
    async build(dir) {
      const img = await image(dir);
      await publish(img, { ...img.manifestValue, layers: [{ ...img.layer, size: -5 }] });
      return { ref: dir, expect: [{ cmd: VERIFY, code: 1, severity: 'error', says: ['layers[0].size'] }] };
    },
  },
  {
    name: 'invalid JSON in index.json',
    async build(dir) {
      const img = await image(dir);
      await publish(img);
      await writeFile(path.join(dir, 'index.json'), '{"schemaVersion": 2,\n "manifests": [ }');
      return {
        ref: dir,
        expect: [TREE, INSPECT, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['index.json', 'invalid JSON at line 2'] })),
      };
    },
  },
  {
    name: 'index.json: manifests is not a list',
    async build(dir) {
      await Layout.create(dir);
      await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: { a: 1 } }));
      return { ref: dir, expect: [TREE, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['index.json', 'manifests'] })) };
    },
  },
  {
    name: 'invalid JSON in a manifest',
    async build(dir) {
      const img = await image(dir);
      const m = await img.layout.blob('{"schemaVersion": 2, "config": ', OCI_MANIFEST);
      await img.layout.index([m]);
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [short(m.digest), 'invalid JSON'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [short(m.digest), 'invalid JSON'] },
        ],
      };
    },
  },
  {
    name: 'invalid JSON in a config',
    async build(dir) {
      const img = await image(dir);
      const config = await img.layout.blob('{"architecture": "amd64", "os": linux}', OCI_CONFIG);
      await publish(img, { ...img.manifestValue, config });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [short(config.digest), 'invalid JSON'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [`config ${short(config.digest)}`, 'invalid JSON'] },
        ],
      };
    },
  },
  {
    name: 'invalid JSON in manifest.json of a docker-archive',
    async build(dir) {
      const src = path.join(dir, 'src');
      await mkdir(src);
      await writeFile(path.join(src, 'manifest.json'), '[{"Config": "x.json",\n  "Layers": [}]');
      packTar(src, path.join(dir, 'bad.tar'), ['manifest.json']);
      const ref = path.join(dir, 'bad.tar');
      return { ref, expect: [TREE, INSPECT, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['manifest.json', 'invalid JSON at line 2'] })) };
    },
  },
  {
    name: 'manifest.json names a layer the archive does not hold',
    async build(dir) {
      const src = path.join(dir, 'src');
      await mkdir(src);
      const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } });
      const hex = sha256(Buffer.from(config)).slice(7);
      await writeFile(path.join(src, `${hex}.json`), config);
      await writeFile(path.join(src, 'manifest.json'), JSON.stringify([{ Config: `${hex}.json`, RepoTags: ['x:1'], Layers: ['abc/layer.tar'] }]));
      packTar(src, path.join(dir, 'missing-layer.tar'), ['manifest.json', `${hex}.json`]);
      return { ref: path.join(dir, 'missing-layer.tar'), expect: [{ cmd: VERIFY, code: 1, severity: 'warning', says: ['manifest.json[0].Layers[0]', '"abc/layer.tar" is missing'] }] };
    },
  },
  {
    name: 'a manifest over 4 MiB',
    async build(dir) {
      const img = await image(dir);
      const m = await publish(img, { ...img.manifestValue, annotations: { padding: 'x'.repeat(4 * 1024 * 1024 + 10) } });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [`manifest ${short(m.digest)}`, `size ${m.size} is over the limit of 4194304 bytes`] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [`manifest ${short(m.digest)}`, 'over the limit'] },
        ],
      };
    },
  },
  {
    name: 'an unknown media type in index.json: not fatal for tree, a warning from verify',
    async build(dir) {
      const { odd } = await imageWithOddEntry(dir);
      return {
        ref: dir,
        expect: [
          { cmd: TREE, code: 0, says: [] },
          { cmd: VERIFY, code: 0, severity: 'warning', says: [short(odd.digest), 'application/vnd.example.thing.v1'] },
        ],
      };
    },
  },
  {
    name: 'an unknown media type in index.json does not make the layout ambiguous for inspect',
    async build(dir) {
      await imageWithOddEntry(dir);
      return { ref: dir, expect: [{ cmd: INSPECT, code: 0, says: [] }] };
    },
  },
  {
    name: 'schemaVersion 1 manifest (Docker schema1): inspect says it is unsupported',
    async build(dir) {
      const m = await schema1Layout(dir);
      return {
        ref: dir,
        expect: [
          { cmd: TREE, code: 0, says: [] },
          { cmd: INSPECT, code: 1, says: [short(m.digest), 'schema 1', 'want schemaVersion 2, got 1'] },
        ],
      };
    },
  },
  {
    name: 'schemaVersion 1 manifest (Docker schema1): verify fails with the same reason',
    async build(dir) {
      const m = await schema1Layout(dir);
      return { ref: dir, expect: [{ cmd: VERIFY, code: 1, severity: 'error', says: [short(m.digest), 'schema 1'] }] };
    },
  },
  {
    name: 'schemaVersion 1 inside an OCI manifest descriptor',
    async build(dir) {
      const img = await image(dir);
      const m = await publish(img, { ...img.manifestValue, schemaVersion: 1 });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [short(m.digest), 'schemaVersion'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [short(m.digest), 'schemaVersion'] },
        ],
      };
    },
  },
  {
    name: 'unknown schemaVersion (3)',
    async build(dir) {
      const img = await image(dir);
      const m = await publish(img, { ...img.manifestValue, schemaVersion: 3 });
      return {
        ref: dir,
        expect: [
          { cmd: INSPECT, code: 1, says: [short(m.digest), 'schemaVersion'] },
          { cmd: VERIFY, code: 1, severity: 'error', says: [short(m.digest), 'schemaVersion'] },
        ],
      };
    },
  },
  {
    name: 'oci-archive with a ../ member name',
    async build(dir) {
      const img = await image(path.join(dir, 'layout'));
      await publish(img);
      const out = path.join(dir, 'dotdot.tar');
      await writeFile(path.join(dir, 'evil'), 'x');
      // --transform puts "../" in front of one member's name
      packTar(path.join(dir, 'layout'), out, ['oci-layout', 'index.json', 'blobs'], []);
      packTar(dir, path.join(dir, 'evil.tar'), ['evil'], ['--transform=s,^evil,../evil,']);
      await concatTars(out, path.join(dir, 'evil.tar'));
      return { ref: `oci-archive:${out}`, expect: [TREE, INSPECT, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['../evil', '..'] })) };
    },
  },
  {
    name: 'oci-archive with an absolute member name',
    async build(dir) {
      const img = await image(path.join(dir, 'layout'));
      await publish(img);
      const out = path.join(dir, 'abs.tar');
      await writeFile(path.join(dir, 'evil'), 'x');
      packTar(path.join(dir, 'layout'), out, ['oci-layout', 'index.json', 'blobs'], []);
      packTar(dir, path.join(dir, 'evil.tar'), ['evil'], ['--absolute-names', '--transform=s,^evil,/tmp/evil,']);
      await concatTars(out, path.join(dir, 'evil.tar'));
      return { ref: out, expect: [TREE, INSPECT, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['/tmp/evil', 'absolute'] })) };
    },
  },
  {
    name: 'a layout whose layer blob is a symlink pointing outside the layout',
    async build(dir) {
      const img = await image(path.join(dir, 'layout'));
      await publish(img);
      const outside = path.join(dir, 'outside-layer.tar');
      await writeFile(outside, img.layerBytes);
      await rm(img.layout.blobFile(img.layer.digest));
      await symlink(outside, img.layout.blobFile(img.layer.digest));
      const hex = img.layer.digest.slice('sha256:'.length);
      return {
        ref: path.join(dir, 'layout'),
        expect: [
          { cmd: VERIFY, code: 1, says: [`blobs/sha256/${hex}`, 'symlink', 'outside the layout'] },
          { cmd: ['blob'], extra: [img.layer.digest], code: 1, says: [hex, 'symlink'] },
        ],
      };
    },
  },
  {
    name: 'a layout whose index.json is a symlink pointing outside the layout',
    async build(dir) {
      const img = await image(path.join(dir, 'layout'));
      await publish(img);
      const outside = path.join(dir, 'index-outside.json');
      await writeFile(outside, await readFile(path.join(dir, 'layout/index.json')));
      await rm(path.join(dir, 'layout/index.json'));
      await symlink(outside, path.join(dir, 'layout/index.json'));
      return { ref: path.join(dir, 'layout'), expect: [TREE, VERIFY].map((cmd) => ({ cmd, code: 1, says: ['index.json', 'symlink'] })) };
    },
  },
];

/** A layout whose only entry is a real Docker schema1 manifest (from containers/image). */
async function schema1Layout(dir: string): Promise<Desc> {
  const layout = await Layout.create(dir);
  const bytes = await readFile(fixture('containers__image/internal/manifest/testdata/v2s1.manifest.json'));
  const m = await layout.blob(bytes, 'application/vnd.docker.distribution.manifest.v1+prettyjws');
  await layout.index([m]);
  return m;
}

/** A layout with image v1 plus an index.json entry of an unknown media type. */
async function imageWithOddEntry(dir: string): Promise<{ img: Image; odd: Desc }> {
  const img = await image(dir);
  const m = await publish(img);
  const odd = await img.layout.blob('just some bytes\n', 'application/vnd.example.thing.v1');
  await img.layout.index([{ ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }, odd]);
  return { img, odd };
}

/** Appends the members of tar `b` to tar `a` (dropping a's end-of-archive blocks). */
async function concatTars(a: string, b: string): Promise<void> {
  const ab = await readFile(a);
  const members = tarMembers(ab);
  const lastM = members.at(-1)!;
  const end = lastM.dataOffset + Math.ceil(lastM.size / 512) * 512;
  await writeFile(a, Buffer.concat([ab.subarray(0, end), await readFile(b)]));
}

describe('bad input gives one clear line, the right exit code, and no stack trace', () => {
  for (const c of CASES) {
    test(c.name, c.todo ? { todo: c.todo } : {}, async () => {
      const dir = await freshDir(c.name);
      const { ref, expect } = await c.build(dir);
      for (const e of expect) {
        await check(ref, e, c.name);
      }
    });
  }
});

describe('usage errors exit 2', () => {
  const MP = fixture('anchore__stereoscope/pkg/image/oci/testdata/multiplatform_oci_dir');
  const rows: ReadonlyArray<{ name: string; argv: readonly string[]; says: string; todo?: string }> = [
    { name: 'unknown option', argv: ['inspect', '--bogus', MP], says: "unknown option '--bogus'" },
    { name: 'unknown command', argv: ['frobnicate', MP], says: "unknown command 'frobnicate'" },
    { name: 'missing reference', argv: ['tree'], says: "missing required argument 'ref'" },
    { name: 'bad --format', argv: ['tree', '--format', 'yaml', MP], says: '--format must be "text" or "json"' },
    { name: 'empty path after a transport', argv: ['inspect', 'oci:'], says: 'a path is required' },
    { name: 'bad @selector', argv: ['inspect', `${MP}:@x`], says: 'is neither an index' },
    {
      name: 'bad --platform (empty architecture)',
      argv: ['inspect', '--platform', 'linux/', MP],
      says: 'architecture',
    },
    {
      name: 'bad --platform (too many parts)',
      argv: ['inspect', '--platform', 'linux/arm/v7/extra', MP],
      says: 'linux/arm/v7/extra',
    },
  ];
  for (const row of rows) {
    test(row.name, row.todo ? { todo: row.todo } : {}, async () => {
      const r = await berth(...row.argv);
      assertExit(r, 2, `berth ${row.argv.join(' ')}`);
      assert.doesNotMatch(r.stderr, STACK_LINE);
      assert.ok(r.stderr.includes(row.says), `want "${row.says}" in: ${r.stderr}`);
      assert.equal(r.stdout, '', 'nothing on stdout');
    });
  }
});

describe('--debug', () => {
  test('without --debug an error has no stack; with --debug the stack and the error code follow the line', async () => {
    const missing = path.join(tmp, 'no-such-layout');
    const plain = await berth('inspect', `oci:${missing}`);
    assertExit(plain, 1, 'inspect of a missing dir');
    assertCleanError(plain, 'inspect of a missing dir');
    assert.ok(plain.stderr.includes(missing), plain.stderr);

    const debug = await berth('--debug', 'inspect', `oci:${missing}`);
    assertExit(debug, 1, 'inspect --debug of a missing dir');
    const lines = debug.stderr.split('\n');
    assert.ok(lines[0]!.startsWith('berth: ') && lines[0]!.includes(missing), `first line is the error: ${debug.stderr}`);
    assert.match(debug.stderr, STACK_LINE, `--debug prints the stack:\n${debug.stderr}`);
    assert.match(debug.stderr, /^code: BERTH_[A-Z_]+/m, 'and the error code');
  });

  test('--debug on a corrupt input prints the stack too', async () => {
    const dir = await freshDir('debug-bad-json');
    const img = await image(dir);
    await publish(img);
    await writeFile(path.join(dir, 'index.json'), '{');
    const r = await berth('--debug', 'tree', dir);
    assertExit(r, 1, 'tree --debug');
    assert.ok(r.stderr.startsWith('berth: '), r.stderr);
    assert.match(r.stderr, STACK_LINE);
  });
});
