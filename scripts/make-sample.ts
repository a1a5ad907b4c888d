/**
 * Builds examples/sample: a small OCI image layout with berth's own code (tar writer, gzip
 * codec, digests), byte for byte the same on every run. `npm run make-sample` regenerates it;
 * test/sample.test.ts fails when the committed copy drifts from what this script writes.
 *
 *   node dist/scripts/make-sample.js OUT_DIR
 *
 * Content: an image index for linux/amd64 and linux/arm64/v8, three gzip layers each (a base
 * tree; a hard link, a symlink and a changed file; a whiteout and an opaque directory), OCI
 * image configs with history, and one BuildKit-style attestation manifest per platform (legacy
 * image-config form) holding an in-toto v1 SLSA v1 provenance and an SPDX 2.3 SBOM statement.
 * The statements are synthetic: nothing was built by BuildKit.
 *
 * Determinism: fixed mtimes, uid/gid 0, entries in dockerd's order (bytewise-sorted depth-first
 * walk), Go-style ustar headers from src/tar/writer.ts, gzip level 9 with the header's mtime and
 * OS bytes fixed, JSON written from literals with a fixed key order. The output is built in a
 * temp directory beside OUT_DIR and renamed into place.
 */
import { chmod, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Descriptor } from '../src/core/descriptor.js';
import { digestHex, digestOf, type Digest } from '../src/core/digest.js';
import { BerthError, toBerthError } from '../src/core/errors.js';
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_CREATED,
  ANNOTATION_DOCKER_REFERENCE_DIGEST,
  ANNOTATION_DOCKER_REFERENCE_TYPE,
  ANNOTATION_IN_TOTO_PREDICATE_TYPE,
  ANNOTATION_REF_NAME,
  IN_TOTO,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  REFERENCE_TYPE_ATTESTATION_MANIFEST,
} from '../src/core/media-types.js';
import type { Platform } from '../src/core/platform.js';
import { makeTempSibling } from '../src/io/atomic-file.js';
import { compress } from '../src/io/codec.js';
import { fromBytes, toBytes } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';

/** Name and tag the sample is published under (ref.name, containerd name, subject purls). */
export const SAMPLE_NAME = 'berth-sample';
export const SAMPLE_TAG = 'latest';
export const SAMPLE_PLATFORMS: readonly Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

/** 2024-06-01T12:00:00Z: every time in the sample is this plus a few minutes. */
const T0 = Date.UTC(2024, 5, 1, 12, 0, 0) / 1000;
const LAYER_TIMES = [T0, T0 + 60, T0 + 120] as const;
const CREATED = rfc3339(T0 + 180);
const BUILD_STARTED = rfc3339(T0 - 5);
const BUILD_FINISHED = rfc3339(T0 + 185);
const SOURCE_REPO = 'https://example.com/berth/sample.git';
const SOURCE_REVISION = '3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b';
const GREETING = 'hello from berth';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const GZIP_LEVEL = 9;
const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** BuildKit's byte forms: manifests and indexes indented by two spaces, configs and statements compact. */
function indented(value: unknown): Uint8Array {
  return text(JSON.stringify(value, null, 2));
}

function compact(value: unknown): Uint8Array {
  return text(JSON.stringify(value));
}

function platformSlug(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

/** `pkg:docker/berth-sample@latest?platform=linux%2Farm64%2Fv8`, as BuildKit names subjects. */
function subjectName(p: Platform): string {
  return `pkg:docker/${SAMPLE_NAME}@${SAMPLE_TAG}?platform=${encodeURIComponent(platformSlug(p))}`;
}

/** Content-addressed blobs in memory, written out at the end. */
class Blobs {
  readonly byHex = new Map<string, Uint8Array>();

  add(mediaType: string, bytes: Uint8Array, extra: Partial<Descriptor> = {}): Descriptor {
    const digest = digestOf(bytes);
    this.byHex.set(digestHex(digest), bytes);
    return { mediaType, digest, size: bytes.length, ...extra };
  }
}

// ---------------------------------------------------------------- layers

type Entry = TarWriteEntry['header'] & { readonly body?: Uint8Array };

function dir(name: string, mtime: number): Entry {
  return { name, type: 'directory', mode: 0o755, mtime };
}

function file(name: string, body: string, mtime: number, mode = 0o644): Entry {
  return { name, type: 'file', mode, mtime, body: text(body) };
}

/** Entries in dockerd's order: a bytewise-sorted depth-first walk, each directory before its children. */
function layerEntries(p: Platform, n: 0 | 1 | 2): Entry[] {
  const t = LAYER_TIMES[n];
  const arch = platformSlug(p);
  switch (n) {
    case 0:
      return [
        dir('bin/', t),
        file('bin/hello', [
          '#!/bin/sh',
          '# berth sample: greets whoever is named on the command line',
          'printf \'%s, %s!\\n\' "${GREETING:-$(cat /etc/greeting)}" "${1:-world}"',
          '',
        ].join('\n'), t, 0o755),
        dir('data/', t),
        dir('data/old/', t),
        file('data/old/a.txt', 'a: hidden by the opaque directory in layer 2\n', t),
        file('data/old/b.txt', 'b: hidden by the opaque directory in layer 2\n', t),
        file('data/remove-me.txt', 'deleted by a whiteout in layer 2\n', t),
        dir('etc/', t),
        file('etc/greeting', 'hello\n', t),
        file('etc/os-release', [
          'NAME="berth sample"',
          'ID=berth-sample',
          'VERSION_ID=1.0',
          `PRETTY_NAME="berth sample 1.0 (${arch})"`,
          `BERTH_PLATFORM=${arch}`,
          '',
        ].join('\n'), t),
      ];
    case 1:
      return [
        dir('etc/', t),
        file('etc/greeting', `${GREETING}\n`, t),
        dir('usr/', t),
        dir('usr/bin/', t),
        { name: 'usr/bin/hello', type: 'symlink', mode: 0o777, mtime: t, linkname: '../../bin/hello' },
        dir('usr/share/', t),
        dir('usr/share/doc/', t),
        dir('usr/share/doc/berth/', t),
        file('usr/share/doc/berth/README', [
          `berth sample image (${arch})`,
          '',
          'Layer 1 of 3. usr/share/doc/hello/README is a hard link to this file and',
          'usr/bin/hello a symbolic link to ../../bin/hello.',
          '',
        ].join('\n'), t),
        dir('usr/share/doc/hello/', t),
        // A hard link: the first path in tar order holds the content, later ones point at it.
        { name: 'usr/share/doc/hello/README', type: 'link', mode: 0o644, mtime: t, linkname: 'usr/share/doc/berth/README' },
      ];
    case 2:
      return [
        dir('data/', t),
        dir('data/old/', t),
        // Opaque directory as overlay2 writes it: right after the directory, its mode, mtime 0.
        { name: 'data/old/.wh..wh..opq', type: 'file', mode: 0o755, mtime: 0 },
        file('data/old/new.txt', 'new: the only child of data/old/ after layer 2\n', t),
        // A whiteout sits at the sort position of the name it deletes.
        { name: 'data/.wh.remove-me.txt', type: 'file', mode: 0o600, mtime: t },
      ];
  }
}

async function tarOf(entries: readonly Entry[]): Promise<Uint8Array> {
  const items: TarWriteEntry[] = entries.map(({ body, ...header }) => ({
    header: { uid: 0, gid: 0, uname: 'root', gname: 'root', ...header },
    ...(body !== undefined ? { body } : {}),
  }));
  return toBytes(writeTar(items));
}

/**
 * gzip with a fixed header: mtime 0 and OS 255 ("unknown", as Go's compress/gzip writes), so
 * the bytes do not depend on the clock or on the OS zlib was built for.
 */
async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const out = await toBytes(compress(fromBytes(bytes), 'gzip', { level: GZIP_LEVEL }));
  if (out.length < 10 || out[0] !== 0x1f || out[1] !== 0x8b || out[3] !== 0) {
    throw new BerthError('BERTH_COMPRESSION', 'making the sample: gzip output does not start with a plain 10-byte header');
  }
  out.fill(0, 4, 8);
  out[9] = 0xff;
  return out;
}

// ---------------------------------------------------------------- image

const HISTORY = [
  { created_by: 'ADD rootfs/ / # buildkit', comment: 'buildkit.dockerfile.v0' },
  { created_by: 'COPY docs/README /usr/share/doc/berth/README # buildkit', comment: 'buildkit.dockerfile.v0' },
  { created_by: 'RUN /bin/sh -c rm /data/remove-me.txt && rm -rf /data/old && mkdir /data/old && echo new > /data/old/new.txt # buildkit', comment: 'buildkit.dockerfile.v0' },
] as const;

interface BuiltImage {
  readonly platform: Platform;
  readonly manifest: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly diffIds: readonly Digest[];
}

async function buildImage(blobs: Blobs, p: Platform): Promise<BuiltImage> {
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const n of [0, 1, 2] as const) {
    const tar = await tarOf(layerEntries(p, n));
    diffIds.push(digestOf(tar));
    layers.push(blobs.add(OCI_LAYER_GZIP, await gzip(tar)));
  }
  const config = {
    architecture: p.architecture,
    config: {
      User: '1000:1000',
      ExposedPorts: { '8080/tcp': {} },
      Env: [PATH_ENV, `GREETING=${GREETING}`],
      Entrypoint: ['/bin/hello'],
      Cmd: ['world'],
      WorkingDir: '/data',
      Labels: {
        'org.opencontainers.image.description': 'the berth sample image: three layers with a whiteout, an opaque directory, a hard link and a symlink',
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.revision': SOURCE_REVISION,
        'org.opencontainers.image.source': SOURCE_REPO,
        'org.opencontainers.image.title': SAMPLE_NAME,
        'org.opencontainers.image.version': '1.0.0',
      },
    },
    created: CREATED,
    history: [
      ...HISTORY.map((h, i) => ({ created: rfc3339(LAYER_TIMES[i]!), ...h })),
      { created: CREATED, created_by: 'ENTRYPOINT ["/bin/hello"]', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    ],
    os: p.os,
    rootfs: { type: 'layers', diff_ids: diffIds },
    ...(p.variant !== undefined ? { variant: p.variant } : {}),
  };
  const configDesc = blobs.add(OCI_CONFIG, compact(config));
  const manifest = blobs.add(OCI_MANIFEST, indented({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers,
  }), { platform: p });
  return { platform: p, manifest, layers, diffIds };
}

// ---------------------------------------------------------------- attestations

function provenanceStatement(image: BuiltImage): unknown {
  const arch = platformSlug(image.platform);
  const archQuery = encodeURIComponent(arch);
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: subjectName(image.platform), digest: { sha256: digestHex(image.manifest.digest) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://mobyproject.org/buildkit@v1',
        externalParameters: {
          configSource: { uri: `${SOURCE_REPO}#main`, digest: { sha1: SOURCE_REVISION }, path: 'Dockerfile' },
          request: {
            frontend: 'dockerfile.v0',
            args: {
              'build-arg:GREETING': GREETING,
              'label:org.opencontainers.image.title': SAMPLE_NAME,
              platform: arch,
              source: 'docker/dockerfile:1',
            },
            locals: [{ name: 'context' }, { name: 'dockerfile' }],
          },
        },
        internalParameters: { builderPlatform: 'linux/amd64' },
        resolvedDependencies: [
          {
            uri: 'pkg:docker/docker/dockerfile@1',
            digest: { sha256: digestHex(digestOf('berth sample: docker/dockerfile:1 frontend image')) },
          },
          {
            uri: `pkg:docker/busybox@1.36?platform=${archQuery}`,
            digest: { sha256: digestHex(digestOf(`berth sample: busybox 1.36 for ${arch}`)) },
          },
          {
            uri: `${SOURCE_REPO}#main`,
            digest: { sha1: SOURCE_REVISION },
          },
        ],
      },
      runDetails: {
        builder: { id: 'https://example.com/berth/builders/sample' },
        metadata: {
          invocationID: 'berthsample0invocation0001',
          startedOn: BUILD_STARTED,
          finishedOn: BUILD_FINISHED,
          buildkit_completeness: { request: true, resolvedDependencies: true },
          buildkit_hermetic: false,
          buildkit_metadata: { vcs: { revision: SOURCE_REVISION, source: SOURCE_REPO } },
          buildkit_reproducible: false,
        },
      },
    },
  };
}

function sbomStatement(image: BuiltImage): unknown {
  const p = image.platform;
  const apkArch = p.architecture === 'arm64' ? 'aarch64' : 'x86_64';
  const slug = platformSlug(p).replaceAll('/', '-');
  const packages = [
    { name: 'berth-sample', version: '1.0.0', license: 'Apache-2.0', purl: `pkg:generic/berth-sample@1.0.0?arch=${p.architecture}` },
    { name: 'busybox', version: '1.36.1-r29', license: 'GPL-2.0-only', purl: `pkg:apk/alpine/busybox@1.36.1-r29?arch=${apkArch}&distro=alpine-3.20.0` },
    { name: 'ca-certificates-bundle', version: '20240226-r0', license: 'MPL-2.0 AND MIT', purl: `pkg:apk/alpine/ca-certificates-bundle@20240226-r0?arch=${apkArch}&distro=alpine-3.20.0` },
    { name: 'musl', version: '1.2.5-r0', license: 'MIT', purl: `pkg:apk/alpine/musl@1.2.5-r0?arch=${apkArch}&distro=alpine-3.20.0` },
    { name: 'zlib', version: '1.3.1-r1', license: 'Zlib', purl: `pkg:apk/alpine/zlib@1.3.1-r1?arch=${apkArch}&distro=alpine-3.20.0` },
  ];
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: subjectName(p), digest: { sha256: digestHex(image.manifest.digest) } }],
    predicateType: 'https://spdx.dev/Document',
    predicate: {
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: `sbom-${SAMPLE_NAME}-${slug}`,
      documentNamespace: `https://example.com/berth/sample/sbom/${slug}`,
      creationInfo: {
        creators: ['Organization: berth', 'Tool: berth-make-sample-1.0', 'Tool: buildkit-v0.14.0'],
        created: BUILD_FINISHED,
      },
      packages: packages.map((pkg, i) => ({
        name: pkg.name,
        SPDXID: `SPDXRef-Package-${i + 1}-${pkg.name}`,
        versionInfo: pkg.version,
        supplier: 'NOASSERTION',
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: pkg.license,
        copyrightText: 'NOASSERTION',
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: pkg.purl }],
      })),
      relationships: packages.map((pkg, i) => ({
        spdxElementId: 'SPDXRef-DOCUMENT',
        relationshipType: 'DESCRIBES',
        relatedSpdxElement: `SPDXRef-Package-${i + 1}-${pkg.name}`,
      })),
    },
  };
}

/** BuildKit's legacy attestation manifest: an image config for unknown/unknown whose diff_ids are the statements. */
function buildAttestation(blobs: Blobs, image: BuiltImage): Descriptor {
  const layers = [
    blobs.add(IN_TOTO, compact(provenanceStatement(image)), { annotations: { [ANNOTATION_IN_TOTO_PREDICATE_TYPE]: 'https://slsa.dev/provenance/v1' } }),
    blobs.add(IN_TOTO, compact(sbomStatement(image)), { annotations: { [ANNOTATION_IN_TOTO_PREDICATE_TYPE]: 'https://spdx.dev/Document' } }),
  ];
  const config = blobs.add(OCI_CONFIG, compact({
    architecture: 'unknown',
    os: 'unknown',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  }));
  return blobs.add(OCI_MANIFEST, indented({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }), {
    annotations: {
      [ANNOTATION_DOCKER_REFERENCE_DIGEST]: image.manifest.digest,
      [ANNOTATION_DOCKER_REFERENCE_TYPE]: REFERENCE_TYPE_ATTESTATION_MANIFEST,
    },
    platform: { architecture: 'unknown', os: 'unknown' },
  });
}

// ---------------------------------------------------------------- layout

export interface SampleFiles {
  /** Relative path (with `/`) → bytes, everything the layout directory holds. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly index: Descriptor;
  readonly images: readonly BuiltImage[];
  readonly attestations: readonly Descriptor[];
}

/** Builds the whole sample in memory. */
export async function buildSample(): Promise<SampleFiles> {
  const blobs = new Blobs();
  const images: BuiltImage[] = [];
  for (const p of SAMPLE_PLATFORMS) images.push(await buildImage(blobs, p));
  const attestations = images.map((image) => buildAttestation(blobs, image));
  const index = blobs.add(OCI_INDEX, indented({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [...images.map((i) => i.manifest), ...attestations],
  }), {
    annotations: {
      [ANNOTATION_CREATED]: CREATED,
      [ANNOTATION_CONTAINERD_IMAGE_NAME]: `docker.io/library/${SAMPLE_NAME}:${SAMPLE_TAG}`,
      [ANNOTATION_REF_NAME]: SAMPLE_TAG,
    },
  });
  const files = new Map<string, Uint8Array>();
  files.set('oci-layout', text(OCI_LAYOUT));
  files.set('index.json', compact({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [index] }));
  for (const hex of [...blobs.byHex.keys()].sort()) files.set(`blobs/sha256/${hex}`, blobs.byHex.get(hex)!);
  files.set('README.md', text(readme(index, images, attestations)));
  return { files, index, images, attestations };
}

function readme(index: Descriptor, images: readonly BuiltImage[], attestations: readonly Descriptor[]): string {
  const rows = images.flatMap((img, i) => [
    `| ${platformSlug(img.platform)} | image manifest | \`${img.manifest.digest}\` |`,
    ...img.layers.map((l, n) => `| ${platformSlug(img.platform)} | layer ${n} (gzip) | \`${l.digest}\` |`),
    `| ${platformSlug(img.platform)} | attestation manifest | \`${attestations[i]!.digest}\` |`,
  ]);
  return [
    '# examples/sample: the berth sample image',
    '',
    'A small OCI image layout, generated by `npm run make-sample` (scripts/make-sample.ts) with',
    "berth's own tar writer, gzip codec and digests. Do not edit it by hand: regenerate it, and",
    'commit the result. Every run writes the same bytes (fixed mtimes, uid/gid 0, sorted entries,',
    'gzip with a fixed header); test/sample.test.ts regenerates it into a temp directory and fails',
    'when the committed copy differs.',
    '',
    '```',
    'npm run make-sample               # = npm run build && node dist/scripts/make-sample.js examples/sample',
    'bin/berth tree examples/sample',
    'bin/berth inspect --platform linux/arm64 examples/sample',
    'bin/berth attestations examples/sample',
    'bin/berth verify examples/sample',
    '```',
    '',
    '## What it holds',
    '',
    `\`index.json\` has one entry, tagged \`${SAMPLE_TAG}\` (\`org.opencontainers.image.ref.name\`, plus`,
    `\`io.containerd.image.name: docker.io/library/${SAMPLE_NAME}:${SAMPLE_TAG}\`), pointing at an OCI image index`,
    `(\`${index.digest}\`) that lists, in order: the linux/amd64 image, the linux/arm64/v8`,
    'image, then one BuildKit attestation manifest per image (platform `unknown/unknown`,',
    '`vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest` = the image',
    'manifest it describes).',
    '',
    'Each image has three gzip layers (`application/vnd.oci.image.layer.v1.tar+gzip`):',
    '',
    '0. a base tree: `bin/hello` (a shell script, mode 0755), `data/old/a.txt`, `data/old/b.txt`,',
    '   `data/remove-me.txt`, `etc/greeting`, `etc/os-release` (names the platform);',
    '1. `usr/share/doc/berth/README` and a hard link to it, `usr/share/doc/hello/README`; a symlink',
    '   `usr/bin/hello -> ../../bin/hello`; a changed `etc/greeting`;',
    '2. a whiteout `data/.wh.remove-me.txt`, and an opaque directory: `data/old/` followed by',
    '   `data/old/.wh..wh..opq`, with the new child `data/old/new.txt`. Its bytes are the same for',
    '   both platforms, so both manifests name one blob.',
    '',
    'Flattened, the root file system holds `bin/hello`, `data/old/new.txt` (no `a.txt`, `b.txt` or',
    '`remove-me.txt`), `etc/greeting` (`hello from berth`), `etc/os-release`, `usr/bin/hello` and the two',
    'READMEs (`umoci unpack` of the arm64 image gives exactly that, the READMEs sharing one inode).',
    '',
    `The OCI image configs set \`Env\` (\`PATH\`, \`GREETING\`), \`Entrypoint ["/bin/hello"]\`, \`Cmd ["world"]\`,`,
    '`WorkingDir /data`, `User 1000:1000`, `ExposedPorts 8080/tcp`, `org.opencontainers.image.*` labels,',
    `\`created ${CREATED}\`, and a history of four entries (one per layer, then an \`empty_layer\``,
    'ENTRYPOINT step).',
    '',
    'Each attestation manifest has the legacy BuildKit form (an image config with architecture and',
    'os `unknown`, `rootfs.diff_ids` = the statement digests) and two `application/vnd.in-toto+json`',
    'layers, each annotated with `in-toto.io/predicate-type`:',
    '',
    '* an in-toto v1 statement with SLSA provenance v1 (builder, buildType',
    '  `https://mobyproject.org/buildkit@v1`, configSource, `dockerfile.v0` request with build args,',
    '  resolved dependencies with digests, invocation ID and start/finish times);',
    '* an in-toto v1 statement with an SPDX 2.3 SBOM of five packages.',
    '',
    'Both name the image manifest as their subject',
    `(\`${subjectName(SAMPLE_PLATFORMS[0]!)}\`). They are synthetic: the sample was not built`,
    'by BuildKit, and the source repository, builder and dependency digests are made up.',
    '',
    'Peers that read it: `skopeo inspect oci:examples/sample` (and `skopeo copy --all`), `umoci ls',
    "--layout examples/sample` (lists `latest`). Git must keep these files byte for byte: they are",
    'marked `-text` in examples/.gitattributes.',
    '',
    '## Digests',
    '',
    '| platform | object | digest |',
    '|---|---|---|',
    `| - | image index | \`${index.digest}\` |`,
    ...rows,
    '',
  ].join('\n');
}

/**
 * Writes the sample to `outDir`: built in a temp directory beside it, then renamed into place
 * (an existing `outDir` is moved aside first and removed after).
 */
export async function writeSample(outDir: string): Promise<SampleFiles> {
  const sample = await buildSample();
  const target = path.resolve(outDir);
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = await makeTempSibling(target);
  await chmod(tmp, 0o755);
  try {
    for (const [rel, bytes] of sample.files) {
      const file = path.join(tmp, ...rel.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
    }
    const existing = await stat(target).catch(() => undefined);
    if (existing === undefined) {
      await rename(tmp, target);
    } else {
      if (!existing.isDirectory()) throw new BerthError('BERTH_EXISTS', `writing the sample: ${outDir} exists and is not a directory`, { subject: outDir });
      const old = await makeTempSibling(target);
      await rename(target, path.join(old, 'previous'));
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return sample;
}

async function cli(argv: readonly string[]): Promise<number> {
  if (argv.length !== 1 || argv[0] === '' || argv[0]!.startsWith('-')) {
    process.stderr.write('usage: node dist/scripts/make-sample.js OUT_DIR\n');
    return 2;
  }
  try {
    const sample = await writeSample(argv[0]!);
    process.stdout.write(`wrote ${argv[0]}: ${sample.files.size} files, index ${sample.index.digest}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`make-sample: ${toBerthError(err).message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await cli(process.argv.slice(2));
}
